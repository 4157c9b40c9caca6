"""MCP tool errors carry the REST API's problem detail; the stdio proxy's URL and key handling
(issue 17)."""

from __future__ import annotations

import asyncio
import json

import pytest
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from pieces_integration.domain import errors
from pieces_integration.entrypoints.api.errors import problem, status_for
from pieces_integration.entrypoints.mcp.errors import problem_text, resource_errors, tool_errors
from pieces_integration.entrypoints.mcp.proxy import credential_headers, endpoint

pytestmark = pytest.mark.anyio

PIECES_DOWN = errors.PiecesOSUnavailable(
    "Pieces OS is not running at http://localhost:39300. Start Pieces OS, then retry."
)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (errors.NotFound("asset", "a1"), "Not found (404 not_found): asset 'a1' not found"),
        (
            errors.InvalidInput("query must not be empty", field="query"),
            "Invalid input (422 invalid_input): query must not be empty",
        ),
        (
            errors.Forbidden("the guest role is read-only"),
            "Forbidden (403 forbidden): the guest role is read-only",
        ),
        (
            PIECES_DOWN,
            "Service unavailable (503 pieces_os_unavailable): Pieces OS is not running at "
            "http://localhost:39300. Start Pieces OS, then retry.",
        ),
    ],
)
def test_the_text_is_the_problem_detail_after_its_title_and_status(
    exc: errors.PiecesIntegrationError, text: str
) -> None:
    assert problem_text(exc) == text
    body = json.loads(bytes(problem(status_for(exc), exc.message, code=exc.code).body))
    assert text == f"{body['title']} ({body['status']} {exc.code}): {body['detail']}"


async def test_domain_errors_and_timeouts_become_tool_errors() -> None:
    with pytest.raises(ToolError, match="Start Pieces OS, then retry") as caught:
        async with tool_errors(5):
            raise PIECES_DOWN
    assert caught.value.__cause__ is PIECES_DOWN
    with pytest.raises(ToolError, match="took longer than 0.01 s"):
        async with tool_errors(0.01):
            await _forever()


async def test_an_unknown_snippet_is_resource_not_found() -> None:
    with pytest.raises(ResourceNotFoundError, match="asset 'x' not found"):
        async with resource_errors(5):
            raise errors.NotFound("asset", "x")
    with pytest.raises(ResourceError, match="503"):
        async with resource_errors(5):
            raise PIECES_DOWN


async def _forever() -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/mcp"),
        ("https://snippets.example.com/", "https://snippets.example.com/mcp"),
        ("https://example.com/pieces/mcp", "https://example.com/pieces/mcp"),
    ],
)
def test_the_proxy_finds_the_endpoint(given: str, url: str) -> None:
    assert endpoint(given) == url


@pytest.mark.parametrize("bad", ["127.0.0.1:8080", "ftp://example.com", "http://"])
def test_the_proxy_refuses_what_is_no_http_url(bad: str) -> None:
    with pytest.raises(ValueError, match="--server must be an http"):
        endpoint(bad)


def test_an_api_key_goes_as_x_api_key_and_anything_else_as_a_bearer_token() -> None:
    assert credential_headers("pk_0123456789ab_secret") == {"X-API-Key": "pk_0123456789ab_secret"}
    assert credential_headers("eyJhbGciOi.x.y") == {"Authorization": "Bearer eyJhbGciOi.x.y"}
