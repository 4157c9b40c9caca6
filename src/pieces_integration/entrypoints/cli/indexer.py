"""`index-worker`: drain the durable index queue into the vector store (semantic tier).

The API server runs one indexer in-process. Extra workers share the queue through leases,
which needs a shared store: a Qdrant server (QDRANT_URL). The embedded store belongs to one
process, so without QDRANT_URL only `--once` is allowed, while the server is stopped
(a backfill or a re-index after a restore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import typer

from pieces_integration.entrypoints.cli._common import (
    ensure_schema,
    fail,
    run_with_container,
    settings_or_exit,
)

if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container


def index_worker(
    once: bool = typer.Option(False, "--once", help="Index what is queued now, then exit."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=512),
) -> None:
    """Embed queued assets into the semantic index (runs until interrupted)."""
    settings = settings_or_exit()
    ensure_schema(settings)
    if not settings.qdrant_url and not once:
        fail(
            "the embedded vector store belongs to the server process; set QDRANT_URL to run "
            "separate index workers, or use --once while the server is stopped"
        )

    async def work(container: Container) -> int:
        indexer = container.search.indexer
        indexer.batch_size = batch_size
        if once:
            index = container.search.index
            await index.open()
            try:
                return await indexer.drain()
            finally:
                await index.close()
        async with container.search.running(serve=False):
            typer.echo("index worker running; Ctrl-C to stop", err=True)
            await anyio.sleep_forever()
        return 0

    done = run_with_container(settings, work)
    typer.echo(f"indexed {done} queued asset changes")
