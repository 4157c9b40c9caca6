"""Run the AIWFE emulator with uvicorn: in-process for tests, or as a command for demos."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn

from pieces_integration.emulators.aiwfe.app import build_app
from pieces_integration.emulators.aiwfe.state import AIWFEState


class _Server(uvicorn.Server):
    """Signals belong to whoever runs the event loop (pytest, typer), not to the emulator."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AIWFEEmulator:
    """Owns the uvicorn server task; `start()`/`stop()` or `running_aiwfe_emulator()`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        webhook_url: str | None = None,
        webhook_secrets: list[str] | None = None,
        state: AIWFEState | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.state = state or AIWFEState()
        self.app = build_app(
            self.state, api_key=api_key, webhook_url=webhook_url, webhook_secrets=webhook_secrets
        )
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, lifespan="off", log_level=self._log_level, access_log=False,
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        server = _Server(config)
        self._server = server
        # Owned task: awaited in stop(), never left running.
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("AIWFE emulator exited during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        server, task, sock = self._server, self._task, self._socket
        self._server = self._task = self._socket = None
        if server is not None and task is not None:
            server.should_exit = True
            await task
        if sock is not None:
            sock.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()  # until cancelled (Ctrl-C)
        finally:
            await self.stop()

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0) as client:
            response = await client.request(method, f"/_emulator{path}", json=payload)
            response.raise_for_status()
            return response.json()


@contextlib.asynccontextmanager
async def running_aiwfe_emulator(**options: Any) -> AsyncIterator[AIWFEEmulator]:
    """An emulator on a free port (unless `port=` is given) for the duration of the block."""
    emulator = AIWFEEmulator(**options)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()
