"""The MCP server over streamable HTTP at /mcp, in process, with the SDK's ClientSession:
the tools and their schemas, a snippet's round trip, isolation between users, auth,
read-only mode, bad arguments and the time bound (issue 17)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container, Overrides
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.service_layer.auth import create_api_key
from tests.e2e.mcp_helpers import (
    SlowEmbedder,
    bearer,
    error_text,
    in_process,
    mcp_session,
    running,
    structured,
)
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.anyio

READ_TOOLS = {
    "search_snippets",
    "get_snippets",
    "suggest_snippets",
    "get_context",
    "list_conflicts",
    "connection_status",
}
WRITE_TOOLS = {"save_snippet", "update_snippet", "delete_snippet", "update_context", "sync_now"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
RESTRICTED_HOST = "mcp.example.com"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    """One running app for the tests that need no settings of their own (each uses its own
    users, so they share it safely; a lifespan costs about a second)."""
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("mcp-shared"), api={"max_asset_bytes": 4096}
    )
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    app = create_app(settings, overrides=Overrides(embedder=HashingEmbedder()))
    async with running(app) as container:
        yield Shared(app, container)


@pytest.fixture(scope="module")
async def restricted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    """A read-only app behind one host name, whose calls may take 0.3 s, with an embedder
    that takes 3 s."""
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("mcp-restricted"),
        mcp={"read_only": True, "allowed_hosts": [RESTRICTED_HOST], "tool_timeout_seconds": 0.3},
    )
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    app = create_app(settings, overrides=Overrides(embedder=SlowEmbedder(delay=3.0)))
    async with running(app) as container:
        yield Shared(app, container)


@dataclass(frozen=True)
class Shared:
    app: FastAPI
    container: Container

    def user(self, name: str) -> tuple[str, dict[str, str]]:
        """A user no other test has, and their bearer header."""
        user_id = f"{name}-{uuid.uuid4().hex[:8]}"
        return user_id, bearer(self.container, user_id)


async def checked(client: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool; its structured result must match the tool's declared output schema."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    content = structured(await client.call_tool(name, arguments))
    schema = tools[name].output_schema
    assert schema is not None, name
    Draft202012Validator(schema).validate(content)
    return content


async def test_every_tool_has_valid_schemas_and_honest_annotations(shared: Shared) -> None:
    _, alice = shared.user("alice")
    async with mcp_session(shared.app, alice) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    for name, tool in tools.items():
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object", name
        assert tool.output_schema is not None, name
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.annotations is not None and tool.description, name
        assert tool.annotations.read_only_hint is (name in READ_TOOLS), name
    assert tools["delete_snippet"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert tools["save_snippet"].annotations.destructive_hint is False  # type: ignore[union-attr]
    assert tools["get_snippets"].input_schema["properties"]["ids"]["maxItems"] == 50


async def test_save_then_search_finds_it_then_get_returns_its_body(shared: Shared) -> None:
    app, (_, alice) = shared.app, shared.user("alice")
    body = "def retry_with_backoff(attempts):\n    return [2 ** n for n in range(attempts)]\n"
    async with mcp_session(app, alice) as client:
        saved = await checked(
            client,
            "save_snippet",
            {"content": body, "name": "retry with backoff", "tags": ["net", "net", "retry"]},
        )
        assert saved["tags"] == ["net", "retry"]  # the API's own normalisation
        found = await checked(client, "search_snippets", {"query": "retry backoff"})
        assert [hit["id"] for hit in found["results"]] == [saved["id"]]
        assert "content" not in found["results"][0]  # small first; bodies on request
        got = await checked(client, "get_snippets", {"ids": [saved["id"], "no-such-id"]})
        assert [s["content"] for s in got["snippets"]] == [body]
        assert got["missing"] == ["no-such-id"]
        resource = await client.read_resource(saved["uri"])
        assert resource.contents[0].text == body  # type: ignore[union-attr]
        changed = await checked(
            client, "update_snippet", {"id": saved["id"], "tags": ["py"], "expected_version": 1}
        )
        assert changed["version"] == 2
        stale = await client.call_tool("update_snippet", {"id": saved["id"], "expected_version": 1})
        assert "Conflict (409 conflict): asset is at version 2, not 1" in error_text(stale)
        assert (await checked(client, "delete_snippet", {"id": saved["id"]}))["deleted"]
        assert (await checked(client, "get_snippets", {"ids": [saved["id"]]}))["missing"]
        # The REST API sees what the MCP tools did, and the other way round.
        async with in_process(app, alice) as http:
            response = await http.post("/api/v1/assets", json={"name": "n", "content": "SELECT 1"})
            assert response.status_code == 201
        got = await checked(client, "get_snippets", {"ids": [response.json()["id"]]})
        assert got["snippets"][0]["content"] == "SELECT 1"


async def test_context_conflicts_sync_and_status_answer_their_schemas(shared: Shared) -> None:
    alice_id, alice = shared.user("alice")
    async with mcp_session(shared.app, alice) as client:
        await checked(client, "save_snippet", {"content": "kubectl rollout status", "name": "k8s"})
        context = await checked(
            client,
            "update_context",
            {"current_task": "deploy the api", "keywords": ["kubectl", "rollout"]},
        )
        assert context["keywords"] == ["kubectl", "rollout"]
        assert (await checked(client, "get_context", {}))["current_task"] == "deploy the api"
        await checked(client, "suggest_snippets", {})
        await checked(client, "suggest_snippets", {"task": "roll out", "language": "bash"})
        await checked(client, "search_snippets", {"query": "rollout", "scope": "context"})
        assert (await checked(client, "list_conflicts", {"status": "all"}))["conflicts"] == []
        synced = await checked(client, "sync_now", {})
        assert synced["result"]["user_id"] == alice_id
        status = await checked(client, "connection_status", {})
        assert status["connected"] is False


async def test_bob_never_sees_alice_snippets_through_any_tool(shared: Shared) -> None:
    app, (_, alice_headers), (_, bob_headers) = shared.app, shared.user("alice"), shared.user("bob")
    async with mcp_session(app, alice_headers) as alice:
        saved = structured(
            await alice.call_tool("save_snippet", {"content": "alice secret", "name": "a"})
        )
        await alice.call_tool("update_context", {"current_task": "alice's task"})
    async with mcp_session(app, bob_headers) as bob:
        found = structured(await bob.call_tool("search_snippets", {"query": "alice secret"}))
        assert found["results"] == []
        got = structured(await bob.call_tool("get_snippets", {"ids": [saved["id"]]}))
        assert got == {"snippets": [], "missing": [saved["id"]]}
        for name, arguments in [
            ("update_snippet", {"id": saved["id"], "content": "bob was here"}),
            ("delete_snippet", {"id": saved["id"]}),
        ]:
            assert "Not found (404 not_found)" in error_text(await bob.call_tool(name, arguments))
        with pytest.raises(Exception, match="not found"):
            await bob.read_resource(saved["uri"])
        assert structured(await bob.call_tool("get_context", {}))["current_task"] is None
        suggested = structured(await bob.call_tool("suggest_snippets", {"task": "alice"}))
        assert suggested["suggestions"] == []
    async with mcp_session(app, alice_headers) as alice:
        got = structured(await alice.call_tool("get_snippets", {"ids": [saved["id"]]}))
        assert got["snippets"][0]["content"] == "alice secret"


async def test_a_session_answers_only_the_credential_that_opened_it(shared: Shared) -> None:
    app, (_, alice), (_, bob) = shared.app, shared.user("alice"), shared.user("bob")
    async with in_process(app, {**alice, **MCP_HEADERS}) as http:
        opened = await http.post("/mcp", json=INITIALIZE)
        assert opened.status_code == 200
        session_id = opened.headers["mcp-session-id"]
    headers = {**bob, **MCP_HEADERS, "Mcp-Session-Id": session_id}
    async with in_process(app, headers) as http:
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert (await http.post("/mcp", json=listing)).status_code == 404


async def test_without_a_valid_credential_mcp_answers_401(shared: Shared) -> None:
    app, container = shared.app, shared.container
    carol_id = f"carol-{uuid.uuid4().hex[:8]}"
    for headers in [{}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "pk_bad"}]:
        async with in_process(app, {**headers, **MCP_HEADERS}) as http:
            response = await http.post("/mcp", json=INITIALIZE)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    _, key = await create_api_key(
        container.uow, user_id=carol_id, role=Role.USER, name="agent", actor_id=None
    )
    async with mcp_session(app, {"X-API-Key": key}) as carol:
        saved = structured(await carol.call_tool("save_snippet", {"content": "x=1", "name": "c"}))
    async with in_process(app, bearer(container, carol_id)) as http:
        asset = (await http.get(f"/api/v1/assets/{saved['id']}")).json()
    assert asset["user_id"] == carol_id


async def test_invalid_or_oversized_arguments_are_tool_errors_and_the_session_goes_on(
    shared: Shared,
) -> None:
    app, (_, alice) = shared.app, shared.user("alice")
    too_big = "x" * 5000  # over api.max_asset_bytes (4096), under the schema's own bound
    async with mcp_session(app, alice) as client:
        for name, arguments in [
            ("search_snippets", {"query": ""}),
            ("search_snippets", {"query": "q" * 2001}),
            ("search_snippets", {"query": "ok", "limit": 0}),
            ("search_snippets", {"query": 42}),
            ("search_snippets", {}),
            ("get_snippets", {"ids": []}),
            ("get_snippets", {"ids": [f"id-{n}" for n in range(51)]}),
            ("get_snippets", {"ids": ["x" * 65]}),
            ("save_snippet", {"content": "", "name": "n"}),
            ("save_snippet", {"content": "x", "name": "n", "tags": ["t"] * 51}),
            ("update_context", {"keywords": "not a list"}),
            ("no_such_tool", {}),
        ]:
            result = await client.call_tool(name, arguments)
            assert result.is_error, (name, arguments)
        oversized = await client.call_tool("save_snippet", {"content": too_big, "name": "big"})
        async with in_process(app, alice) as http:
            rest = await http.post("/api/v1/assets", json={"content": too_big, "name": "big"})
        # The same words as the REST API's problem detail.
        assert rest.status_code == 422
        expected = f"Invalid input (422 invalid_input): {rest.json()['detail']}"
        assert error_text(oversized).endswith(expected)
        blank = await client.call_tool("save_snippet", {"content": "   ", "name": "n"})
        assert "content must not be blank" in error_text(blank)
        assert len((await client.list_tools()).tools) == len(READ_TOOLS | WRITE_TOOLS)


async def test_a_body_over_the_limit_is_refused_before_the_mcp_server(shared: Shared) -> None:
    limit = 2 * 1024 * 1024  # server.max_body_bytes
    _, alice = shared.user("alice")
    async with in_process(shared.app, {**alice, **MCP_HEADERS}) as http:
        response = await http.post(
            "/mcp",
            content=b'{"pad": "' + b"x" * limit + b'"}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413


async def test_read_only_mode_lists_and_serves_no_write_tool(restricted: Shared) -> None:
    _, alice = restricted.user("alice")
    async with mcp_session(restricted.app, alice, host=RESTRICTED_HOST) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == READ_TOOLS
        refused = await client.call_tool("save_snippet", {"content": "x", "name": "y"})
        assert "save_snippet" in error_text(refused)
        assert structured(await client.call_tool("list_conflicts", {}))["conflicts"] == []


async def test_a_call_past_its_time_bound_is_a_tool_error(restricted: Shared) -> None:
    alice_id, alice = restricted.user("alice")
    async with mcp_session(restricted.app, alice, host=RESTRICTED_HOST) as client:
        slow = await client.call_tool("search_snippets", {"query": "anything"})  # 3 s embedding
        assert "took longer than 0.3 s" in error_text(slow)
        assert structured(await client.call_tool("get_context", {}))["user_id"] == alice_id


async def test_only_the_configured_host_names_are_served(restricted: Shared) -> None:
    _, alice = restricted.user("alice")
    headers = {**alice, **MCP_HEADERS}
    async with in_process(restricted.app, headers, host="127.0.0.1") as http:
        assert (await http.post("/mcp", json=INITIALIZE)).status_code == 421
    origin = {**headers, "Origin": "http://evil.example"}
    async with in_process(restricted.app, origin, RESTRICTED_HOST) as http:
        assert (await http.post("/mcp", json=INITIALIZE)).status_code == 403
    async with mcp_session(restricted.app, alice, host=RESTRICTED_HOST) as client:
        assert (await client.list_tools()).tools


async def test_the_2026_protocol_era_is_served_and_scoped_the_same(shared: Shared) -> None:
    """The SDK's high-level Client negotiates the newest era (per-request, no handshake)."""
    (_, alice), (_, bob) = shared.user("alice"), shared.user("bob")
    async with (
        in_process(shared.app, alice) as http,
        Client(streamable_http_client("http://127.0.0.1/mcp", http_client=http)) as client,
    ):
        assert client.session.protocol_version == "2026-07-28"
        saved = structured(
            await client.call_tool("save_snippet", {"content": "SELECT 42", "name": "q"})
        )
        found = structured(await client.call_tool("search_snippets", {"query": "SELECT"}))
        assert [hit["id"] for hit in found["results"]] == [saved["id"]]
    async with (
        in_process(shared.app, bob) as http,
        Client(streamable_http_client("http://127.0.0.1/mcp", http_client=http)) as client,
    ):
        assert (
            structured(await client.call_tool("search_snippets", {"query": "SELECT"}))["results"]
            == []
        )


async def test_a_guest_reads_but_every_write_is_refused_as_the_api_refuses_it(
    shared: Shared,
) -> None:
    guest = bearer(shared.container, f"guest-{uuid.uuid4().hex[:8]}", Role.GUEST)
    async with mcp_session(shared.app, guest) as client:
        assert structured(await client.call_tool("search_snippets", {"query": "x"}))["total"] == 0
        for name, arguments in [
            ("save_snippet", {"content": "x", "name": "y"}),
            ("update_context", {"current_task": "t"}),
            ("sync_now", {}),
        ]:
            refused = error_text(await client.call_tool(name, arguments))
            assert "Forbidden (403 forbidden): the guest role is read-only" in refused, name
