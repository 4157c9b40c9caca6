"""Helpers of the bridge tests (issue 13): pair through the API, run an agent, wait."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pieces_integration.adapters.bridge.agent import AgentError, AgentSettings, BridgeAgent

BRIDGES = "/api/v1/integrations/pieces/bridges"
STATUS = "/api/v1/integrations/pieces/status"


@dataclass(frozen=True)
class Paired:
    bridge_id: str
    credential: str
    device_id: str


async def pair(http: httpx.AsyncClient, headers: dict[str, str], name: str = "laptop") -> Paired:
    created = await http.post(BRIDGES, json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    device_id = secrets.token_urlsafe(24)
    paired = await http.post(
        BRIDGES + "/pair",
        json={"code": created.json()["pairing_code"], "device_id": device_id},
    )
    assert paired.status_code == 200, paired.text
    body = paired.json()
    return Paired(body["bridge_id"], body["credential"], device_id)


def settings_for(
    paired: Paired, servers: tuple[str, ...], pieces_url: str, heartbeat: float = 0.5
) -> AgentSettings:
    return AgentSettings(
        servers=servers,
        pieces_url=pieces_url,
        credential=paired.credential,
        device_id=paired.device_id,
        agent_version="test-agent",
        heartbeat=heartbeat,
        backoff_base=0.05,
        backoff_cap=0.5,
    )


@asynccontextmanager
async def running_agent(settings: AgentSettings) -> AsyncIterator[BridgeAgent]:
    agent = BridgeAgent(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        with contextlib.suppress(AgentError):  # revoked: the agent ends itself
            await asyncio.wait_for(task, 15)


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, within: float = 30.0, step: float = 0.1
) -> Any:
    """Polls `check` until it returns something truthy; fails after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met in {within} s (last: {last!r})")


async def asset_count(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await http.get("/api/v1/assets", params={"limit": 1}, headers=headers)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


def wait_until(check: Callable[[], Any], *, within: float = 30.0, step: float = 0.1) -> Any:
    """The blocking twin of `wait_for`, for tests that drive processes."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"condition not met in {within} s (last: {last!r})")
