"""Running uvicorn for `serve`: a graceful WebSocket drain, and the optional second port.

uvicorn's own shutdown drops open WebSockets with a bare 1012. `DrainingServer` first stops
accepting, then lets the real-time hub send every client a `reconnect` message (with
jittered `retry_after_ms`) and close it, and only then hands over to uvicorn.

With WEBSOCKET_PORT set (the spec's deployment uses 8081), a second server on that port
serves the same app and container; only the first runs the lifespan. One set of signal
handlers stops both.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while the old ones are told to move
        container = getattr(self._app.state, "container", None)
        if container is not None:
            await container.realtime.hub.drain()
        await super().shutdown(sockets)


class _SharedSignals(DrainingServer):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config, app)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # installed once for both servers by `serve_with_websocket_port`


def serve_with_websocket_port(
    app: FastAPI, main: uvicorn.Config, websocket_port: int | None
) -> None:
    if websocket_port is None or websocket_port == main.port:
        DrainingServer(main, app).run()
        return
    second = uvicorn.Config(
        app,
        host=main.host,
        port=websocket_port,
        log_config=None,
        lifespan="off",  # the container belongs to the main server's lifespan
        proxy_headers=main.proxy_headers,
        timeout_graceful_shutdown=main.timeout_graceful_shutdown,
        ws_max_size=main.ws_max_size,
        ws_per_message_deflate=main.ws_per_message_deflate,
        ws=main.ws,
    )
    asyncio.run(_run_both(_SharedSignals(main, app), _SharedSignals(second, app)))


async def _run_both(main: _SharedSignals, second: _SharedSignals) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        main.should_exit = second.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    main_task = asyncio.create_task(main.serve())
    ready = asyncio.create_task(main.ready.wait())
    await asyncio.wait({main_task, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if main_task.done():
        await main_task  # startup failed: report it
        return
    second_task = asyncio.create_task(second.serve())
    await asyncio.wait({main_task, second_task}, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(main_task, second_task)
