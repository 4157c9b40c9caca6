"""The service under uvicorn on its own thread and event loop, for a real browser to use
(Playwright's sync API runs in the test's thread). Not a test module."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from tests.e2e.sync_harness import free_port

T = TypeVar("T")


class ServiceThread:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        )
        self._serving: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self._serving = asyncio.run_coroutine_threadsafe(self._server.serve(), self.loop)
        deadline = time.monotonic() + 60
        while not self._server.started:
            if self._serving.done():
                self._serving.result()  # raises what stopped it
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 60 s")
            time.sleep(0.05)

    def call(self, work: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run `work()` on the service's loop (where its container lives)."""

        async def run() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._serving is not None:
            self._serving.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
