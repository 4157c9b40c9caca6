"""The app under a real uvicorn server in the test's event loop, for what the in-memory test
client cannot show: TCP backpressure, uvicorn's WebSocket protocols, socket writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from tests.e2e.sync_harness import free_port


@asynccontextmanager
async def live_server(app: FastAPI, **config: Any) -> AsyncIterator[int]:
    """Serve `app` (lifespan on) on a free loopback port; yields the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", **config)
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(400):  # uvicorn offers no start event
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            await serving  # raises what stopped it
            raise RuntimeError("uvicorn did not start")
        yield port
    finally:
        server.should_exit = True
        await serving
