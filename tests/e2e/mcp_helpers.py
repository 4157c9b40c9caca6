"""MCP clients for the tests (the SDK's own ClientSession), not tests themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import Role

# Every request of a test session is bounded; a hung session fails the test instead.
READ_SECONDS = 20.0


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Container]:
    """The app's lifespan (the MCP session manager included), without a server."""
    async with app.router.lifespan_context(app):
        container: Container = app.state.container
        yield container


def bearer(container: Container, user_id: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {container.jwt.issue(user_id, role, ttl_seconds=600)}"}


def in_process(
    app: FastAPI, headers: dict[str, str], host: str = "127.0.0.1"
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app),
        base_url=f"http://{host}",
        headers=headers,
        timeout=READ_SECONDS,
    )


@asynccontextmanager
async def session(http: httpx2.AsyncClient, url: str) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=READ_SECONDS) as client,
    ):
        await client.initialize()
        yield client


@asynccontextmanager
async def mcp_session(
    app: FastAPI, headers: dict[str, str], host: str = "127.0.0.1"
) -> AsyncIterator[ClientSession]:
    """A ClientSession over streamable HTTP to the app, in process."""
    async with in_process(app, headers, host) as http, session(http, f"http://{host}/mcp") as c:
        yield c


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] = result.structured_content
    return content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content)


class SlowEmbedder:
    """An embedder that takes `delay` seconds per call (for the time bound of a tool call)."""

    dimension = 384
    model_name = "slow-test"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def embed(self, texts: Any) -> list[list[float]]:
        await asyncio.sleep(self.delay)
        return [[1.0] + [0.0] * (self.dimension - 1) for _ in texts]
