"""Running uvicorn for `serve`: a graceful WebSocket drain, and the optional second port.

uvicorn's own shutdown drops open WebSockets with a bare 1012. `DrainingServer`, on SIGTERM:
1. marks the app draining: `/ready` answers 503 while everything else is still served, for
   `server.drain_seconds`, so the load balancer takes this replica out first;
2. stops accepting, then lets the real-time hub send every client a `reconnect` message
   (with jittered `retry_after_ms`) and close it with 1012;
3. hands over to uvicorn, which waits for in-flight requests (`timeout_graceful_shutdown`);
   the lifespan then stops the scheduler, whose cancelled runs release their sync locks.

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
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float = 0.0) -> None:
        super().__init__(config)
        self._app = app
        self._drain_seconds = drain_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.state.draining = True  # read by GET /ready
        if self._drain_seconds > 0:
            await asyncio.sleep(self._drain_seconds)
        for server in self.servers:
            server.close()  # no new connections while the old ones are told to move
        container = getattr(self._app.state, "container", None)
        if container is not None:
            await container.realtime.hub.drain()
            # Bridge agents too, before uvicorn drops their sockets: told to reconnect now,
            # they land on another replica (issue 13).
            await container.bridge.hub.shutdown()
        await super().shutdown(sockets)


class _SharedSignals(DrainingServer):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config, app, drain_seconds)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # installed once for both servers by `serve_with_websocket_port`


def serve_with_websocket_port(
    app: FastAPI, main: uvicorn.Config, websocket_port: int | None, drain_seconds: float = 0.0
) -> None:
    if websocket_port is None or websocket_port == main.port:
        DrainingServer(main, app, drain_seconds).run()
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
    asyncio.run(
        _run_both(
            _SharedSignals(main, app, drain_seconds), _SharedSignals(second, app, drain_seconds)
        )
    )


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
