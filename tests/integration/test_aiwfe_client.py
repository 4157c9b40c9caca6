"""The AIWFE client against the emulator, every request and response checked against the
OpenAPI contract; plus timeouts, retries, the circuit breaker and failure mapping."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from pieces_integration.adapters.aiwfe import AIWFEHttpClient, CircuitBreaker, RetryPolicy
from pieces_integration.adapters.aiwfe.sync_side import AIWFESyncSide
from pieces_integration.domain.code_findings import Finding, FindingKind, suggestion_for
from pieces_integration.domain.errors import AIPlatformError, NotFound, UpstreamTimeout
from pieces_integration.domain.merge import Snapshot
from pieces_integration.emulators.aiwfe import AIWFEEmulator, running_aiwfe_emulator
from pieces_integration.ports.aiwfe import AIWFEAssetWrite, AIWFEContextUpdate
from tests.aiwfe_contract import ContractCheckingTransport

pytestmark = pytest.mark.anyio
API_KEY = "test-aiwfe-key"
USER = "demo-user"


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingSleep:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def emulator() -> AsyncIterator[AIWFEEmulator]:
    async with running_aiwfe_emulator(api_key=API_KEY) as emu:
        emu.state.seed_demo(USER)
        yield emu


@pytest.fixture
async def transport() -> AsyncIterator[ContractCheckingTransport]:
    checking = ContractCheckingTransport()
    yield checking
    await checking.aclose()


@dataclass
class Rig:
    client: AIWFEHttpClient
    sleep: RecordingSleep
    clock: FakeClock
    transport: ContractCheckingTransport


@pytest.fixture
async def rig(emulator: AIWFEEmulator, transport: ContractCheckingTransport) -> AsyncIterator[Rig]:
    sleep, clock = RecordingSleep(), FakeClock()
    async with httpx.AsyncClient(transport=transport) as http:
        client = AIWFEHttpClient(
            http,
            base_url=emulator.url,
            api_key=API_KEY,
            timeout=httpx.Timeout(2.0),
            retry=RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0),
            breaker=CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=clock),
            sleep=sleep,
        )
        yield Rig(client, sleep, clock, transport)
    assert transport.checked, "no traffic was checked against the contract"


def _suggestion(line: int, text: str = "cache it") -> object:
    return suggestion_for("asset-1", "utils.py", Finding(FindingKind.TODO, line, text))


# --- the contract, call by call ---------------------------------------------------------


async def test_health(rig: Rig) -> None:
    health = await rig.client.health_check()
    assert health.healthy and health.version == "emulator-1.0"


async def test_get_user_context(rig: Rig) -> None:
    context = await rig.client.get_user_context(USER)
    assert context.user_id == USER
    assert context.current_task is not None
    assert context.current_task.title == "Add pagination to the assets API"
    assert context.active_opportunity is not None
    assert context.active_opportunity.name == "pieces-integration"
    assert [c.id for c in context.recent_chats] == ["chat_demo"]


async def test_update_user_context_is_idempotent(rig: Rig) -> None:
    before = await rig.client.get_user_context(USER)
    update = AIWFEContextUpdate(current_task="Write the webhook", keywords=("hmac", "webhook"))
    first = await rig.client.update_user_context(USER, update)
    second = await rig.client.update_user_context(USER, update)
    assert first.current_task is not None and first.current_task.title == "Write the webhook"
    assert first.keywords == ("hmac", "webhook")
    assert first.version == before.version + 1
    assert second.version == first.version  # same patch again changes nothing


async def test_update_can_clear_a_field(rig: Rig) -> None:
    cleared = await rig.client.update_user_context(
        USER, AIWFEContextUpdate(clear=("current_task",))
    )
    assert cleared.current_task is None


async def test_create_suggestions_deduplicates_by_key_and_fingerprint(
    rig: Rig, emulator: AIWFEEmulator
) -> None:
    s1, s2 = _suggestion(3), _suggestion(9, "other")
    first = await rig.client.create_suggestions(
        USER,
        asset_id="asset-1",
        suggestions=[s1],
        idempotency_key="k1",  # type: ignore[list-item]
    )
    again = await rig.client.create_suggestions(
        USER,
        asset_id="asset-1",
        suggestions=[s1],
        idempotency_key="k1",  # type: ignore[list-item]
    )
    other_key = await rig.client.create_suggestions(
        USER,
        asset_id="asset-1",
        suggestions=[s1, s2],
        idempotency_key="k2",  # type: ignore[list-item]
    )
    assert len(first.created) == 1 and first == again
    assert other_key.duplicates == (s1.fingerprint,)  # type: ignore[attr-defined]
    assert len(other_key.created) == 1
    assert len(emulator.state.suggestions[USER]) == 2


async def test_get_chat(rig: Rig) -> None:
    chat = await rig.client.get_chat("chat_demo")
    assert [m.role for m in chat.messages] == ["user", "assistant"]
    assert "```python" in chat.messages[1].content


async def test_unknown_chat_and_user_are_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.client.get_chat("chat_missing")
    with pytest.raises(NotFound):
        await rig.client.get_user_context("nobody")
    assert rig.sleep.delays == []  # a 404 is an answer, not a failure to retry


async def test_task_templates_rank_by_keywords(rig: Rig) -> None:
    templates = await rig.client.get_task_templates(
        USER, keywords=["fastapi", "pagination"], current_task="API", limit=5
    )
    assert [t.id for t in templates] == ["tpl_api"]
    assert templates[0].variables == ("path",)


async def test_search_documentation(rig: Rig) -> None:
    docs = await rig.client.search_documentation("keyset pagination postgres", limit=5)
    assert [d.id for d in docs] == ["doc_pagination"]
    assert await rig.client.search_documentation("   ") == []


async def test_frequent_items_filtered_by_type(rig: Rig) -> None:
    items = await rig.client.get_user_frequent_items(
        USER, types=["code_snippet", "template"], limit=10
    )
    assert [(i.id, i.type) for i in items] == [("fi_1", "code_snippet"), ("fi_2", "template")]


# --- failure behaviour (spec 8.4) --------------------------------------------------------


async def test_wrong_api_key_is_an_upstream_error_not_retried(emulator: AIWFEEmulator) -> None:
    sleep = RecordingSleep()
    async with httpx.AsyncClient(transport=ContractCheckingTransport()) as http:
        client = AIWFEHttpClient(http, base_url=emulator.url, api_key="wrong", sleep=sleep)
        with pytest.raises(AIPlatformError) as info:
            await client.get_user_context(USER)
    assert info.value.details["status"] == 401
    assert sleep.delays == []


async def test_transient_5xx_is_retried_with_backoff(rig: Rig, emulator: AIWFEEmulator) -> None:
    emulator.state.faults.fail_next, emulator.state.faults.status = 2, 503
    context = await rig.client.get_user_context(USER)
    assert context.user_id == USER
    assert len(rig.sleep.delays) == 2
    assert 0 <= rig.sleep.delays[0] <= 0.1 and 0 <= rig.sleep.delays[1] <= 0.2


async def test_retry_after_is_honoured(rig: Rig, emulator: AIWFEEmulator) -> None:
    emulator.state.faults.fail_next, emulator.state.faults.status = 1, 429
    emulator.state.faults.retry_after = 0.5
    await rig.client.get_chat("chat_demo")
    assert rig.sleep.delays == [0.5]


async def test_post_without_idempotency_key_is_never_retried(
    rig: Rig, emulator: AIWFEEmulator
) -> None:
    emulator.state.faults.fail_next, emulator.state.faults.status = 1, 503
    with pytest.raises(AIPlatformError):
        await rig.client.create_suggestions(
            USER,
            asset_id="a",
            suggestions=[_suggestion(1)],
            idempotency_key=None,  # type: ignore[list-item]
        )
    assert rig.sleep.delays == []
    assert emulator.state.suggestions[USER] == []


async def test_post_with_idempotency_key_is_retried_once_created(
    rig: Rig, emulator: AIWFEEmulator
) -> None:
    emulator.state.faults.fail_next, emulator.state.faults.status = 1, 502
    receipt = await rig.client.create_suggestions(
        USER,
        asset_id="a",
        suggestions=[_suggestion(1)],
        idempotency_key="k",  # type: ignore[list-item]
    )
    assert len(receipt.created) == 1 and len(emulator.state.suggestions[USER]) == 1


async def test_circuit_opens_fails_fast_then_recovers(rig: Rig, emulator: AIWFEEmulator) -> None:
    emulator.state.faults.fail_next, emulator.state.faults.status = 3, 503
    with pytest.raises(AIPlatformError):
        await rig.client.get_user_context(USER)  # 3 attempts, 3 failures: the breaker opens
    requests = emulator.state.requests
    with pytest.raises(AIPlatformError) as info:
        await rig.client.get_user_context(USER)
    assert info.value.details["circuit"] == "open"
    assert emulator.state.requests == requests  # failed fast, AIWFE was not called
    rig.clock.now += 31  # half-open: one trial call goes through and closes the circuit
    assert (await rig.client.get_user_context(USER)).user_id == USER
    assert rig.client.breaker.state.value == "closed"


async def test_slow_upstream_times_out(emulator: AIWFEEmulator) -> None:
    emulator.state.faults.delay = 0.5
    sleep = RecordingSleep()
    async with httpx.AsyncClient() as http:
        client = AIWFEHttpClient(
            http,
            base_url=emulator.url,
            api_key=API_KEY,
            timeout=httpx.Timeout(0.1),
            retry=RetryPolicy(attempts=2),
            sleep=sleep,
        )
        with pytest.raises(UpstreamTimeout) as info:
            await client.get_chat("chat_demo")
    assert info.value.upstream == "aiwfe"
    assert len(sleep.delays) == 1


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_aiwfe_fails_fast_and_health_says_unhealthy() -> None:
    url = f"http://127.0.0.1:{_unused_port()}"
    async with httpx.AsyncClient() as http:
        client = AIWFEHttpClient(
            http, base_url=url, api_key=API_KEY, sleep=RecordingSleep(),
            timeout=httpx.Timeout(1.0),
        )  # fmt: skip
        with pytest.raises(AIPlatformError):
            await client.get_user_context(USER)
        health = await client.health_check()
    assert not health.healthy and health.details["error"] == "ConnectError"


async def test_invalid_payload_from_upstream_is_a_platform_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"user_id": "u"})  # missing required fields

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = AIWFEHttpClient(http, base_url="http://aiwfe", api_key=None)
        with pytest.raises(AIPlatformError, match="contract"):
            await client.get_user_context("u")


# --- assets: the sync engine's AIWFE side ------------------------------------------------


async def test_asset_put_is_idempotent_and_versions_real_changes(rig: Rig) -> None:
    write = AIWFEAssetWrite(name="fib", content="def fib(n): ...", language="python", tags=("a",))
    created = await rig.client.put_asset(USER, "asset-1", write)
    again = await rig.client.put_asset(USER, "asset-1", write)
    assert (created.version, again.version) == (1, 1)
    changed = await rig.client.put_asset(
        USER, "asset-1", AIWFEAssetWrite(name="fib", content="def fib(n): return n")
    )
    assert changed.version == 2 and changed.tags == () and changed.language is None
    fetched = await rig.client.get_asset(USER, "asset-1")
    assert fetched == changed
    assert await rig.client.get_asset(USER, "missing") is None


async def test_list_assets_follows_cursors(rig: Rig, emulator: AIWFEEmulator) -> None:
    for i in range(450):  # more than two pages of 200
        emulator.state.put_asset(USER, f"a{i:03d}", {"name": f"n{i}", "content": "x" * 12})
    assets = await rig.client.list_assets(USER)
    assert [a.id for a in assets] == [f"a{i:03d}" for i in range(450)]
    assert sum("/assets ->" in c for c in rig.transport.checked) == 3


async def test_delete_asset_is_idempotent(rig: Rig) -> None:
    await rig.client.put_asset(USER, "gone", AIWFEAssetWrite(name="n", content="c"))
    await rig.client.delete_asset(USER, "gone")
    await rig.client.delete_asset(USER, "gone")  # already gone: still fine
    assert await rig.client.get_asset(USER, "gone") is None


async def test_sync_side_round_trip(rig: Rig) -> None:
    side = AIWFESyncSide(rig.client, USER)
    snapshot = Snapshot(name="q", content="SELECT 1;", language="sql", tags=("db",))
    created = await side.create_asset("our-id", snapshot)
    retried = await side.create_asset("our-id", snapshot)  # a retried create: same asset
    assert created.remote_id == retried.remote_id == "our-id"
    assert created.snapshot == snapshot and created.version == "1"
    updated = await side.update_asset("our-id", Snapshot(name="q", content="SELECT 2;"))
    assert updated.version == "2"
    assert [r.remote_id for r in await side.list_assets()] == ["our-id"]
    await side.delete_asset("our-id")
    assert await side.get_asset("our-id") is None


async def test_a_skewed_clock_shows_in_the_timestamps_the_emulator_writes(
    emulator: AIWFEEmulator,
) -> None:
    """The fault simulation's clock skew (#20) is real: AIWFE's own timestamps move."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"name": "n", "content": "x = 1", "language": "python", "tags": []}
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as http:
        set_skew = await http.post("/_emulator/faults", json={"clock_skew": -7200})
        assert set_skew.status_code == 200
        behind = (await http.put(f"/v1/users/{USER}/assets/skewed", json=body)).json()
        await http.post("/_emulator/faults", json={"clock_skew": 0})
        on_time = (await http.put(f"/v1/users/{USER}/assets/on-time", json=body)).json()
    now = datetime.now(UTC)
    assert abs((now - datetime.fromisoformat(behind["updated_at"])).total_seconds() - 7200) < 60
    assert abs((now - datetime.fromisoformat(on_time["updated_at"])).total_seconds()) < 60
