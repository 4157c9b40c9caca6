"""Command registry: each topic lives in its own module."""

from __future__ import annotations

import typer

from pieces_integration import __version__
from pieces_integration.entrypoints import bridge_cli
from pieces_integration.entrypoints.cli import credentials, indexer, keys, mcp, server, sync

app = typer.Typer(
    name="pieces-integration",
    help="Pieces OS <-> AIWFE integration service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(server.serve)
app.command()(server.migrate)
app.add_typer(credentials.token_app, name="token")
app.add_typer(credentials.apikey_app, name="apikey")
app.add_typer(keys.app, name="keys")
app.command()(sync.sync)
app.command("index-worker")(indexer.index_worker)
app.add_typer(bridge_cli.app, name="bridge")
app.command("mcp")(mcp.mcp)

emulate = typer.Typer(help="Run an emulator of Pieces OS or AIWFE (demos and tests).")
app.add_typer(emulate, name="emulate")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _register_emulators() -> None:
    # Emulators ship with the package; imported lazily so `serve` never pays for them.
    from pieces_integration.entrypoints.cli import emulate_aiwfe, emulate_pieces

    emulate.command("pieces")(emulate_pieces.pieces)
    emulate.command("aiwfe")(emulate_aiwfe.aiwfe)
    emulate.command("aiwfe-webhook")(emulate_aiwfe.send_webhook)


def main() -> None:
    _register_emulators()
    app()
