"""`pieces-integration emulate pieces`: run the Pieces OS emulator with optional faults."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from pieces_integration.emulators.pieces.faults import FaultConfig
from pieces_integration.emulators.pieces.server import EmulatorServer


def pieces(
    port: Annotated[
        int, typer.Option(help="Port to listen on; 39300–39333 is where Pieces tools look.")
    ] = 39300,
    assets: Annotated[int, typer.Option(help="Seed this many realistic snippets.")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed for the snippets and faults.")] = 0,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    version: Annotated[str, typer.Option(help="Pieces OS version to report.")] = "12.3.4",
    latency_ms: Annotated[float, typer.Option(help="Added latency per request.")] = 0.0,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests that fail.")
    ] = 0.0,
    error_status: Annotated[int, typer.Option(help="Status of injected failures (500/503).")] = 503,
    hang: Annotated[bool, typer.Option(help="Hang every request until lifted.")] = False,
    drop_websockets_after: Annotated[
        float | None, typer.Option(help="Cut each WebSocket after this many seconds.")
    ] = None,
    reject_websockets: Annotated[bool, typer.Option(help="Refuse stream handshakes.")] = False,
    refuse_for: Annotated[
        float, typer.Option(help="Start by refusing connections for this many seconds.")
    ] = 0.0,
    signed_out: Annotated[bool, typer.Option(help="Answer GET /user with no user.")] = False,
) -> None:
    """Serve the Pieces OS local API (health, connect, user, assets, search, identifier
    streams) with state until Ctrl-C.

    Faults can be changed while it runs: POST /_emulator/faults with a JSON object of the
    same names (latency_ms, error_rate, error_status, fail_next, hang, drop_websockets_after,
    reject_websockets, signed_out); POST /_emulator/faults/clear lifts them;
    POST /_emulator/streams/drop cuts the streams; POST /_emulator/refuse {"seconds": N}
    closes the port for N seconds.
    """
    faults = FaultConfig()
    faults.update(
        {
            "latency_ms": latency_ms,
            "error_rate": error_rate,
            "error_status": error_status,
            "hang": hang,
            "drop_websockets_after": drop_websockets_after,
            "reject_websockets": reject_websockets,
            "signed_out": signed_out,
        }
    )
    server = EmulatorServer(
        host=host,
        port=port,
        assets=assets,
        seed=seed,
        faults=faults,
        version=version,
        log_level="info",
    )

    async def run() -> None:
        if refuse_for > 0:
            typer.echo(f"refusing connections for {refuse_for:g}s")
            await asyncio.sleep(refuse_for)
        await server.start()
        typer.echo(
            f"Pieces OS emulator {version} on {server.base_url} with {len(server.state.assets)} "
            "assets (Ctrl-C to stop)"
        )
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
