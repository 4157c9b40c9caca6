"""`serve` and `migrate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from pieces_integration.config import ConfigError, Settings
from pieces_integration.entrypoints.cli._common import fail, run_with_container, settings_or_exit
from pieces_integration.observability.logs import configure_logging

# uvicorn, Alembic and the composition root load when a command runs (see _common).
if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container
    from pieces_integration.service_layer.local_admin import SignInCodes


def _migrate(settings: Settings, revision: str = "head") -> None:
    from pieces_integration.adapters.sql import migrate as migrations

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        migrations.upgrade(settings.sqlalchemy_url, revision, schema=settings.database_schema)
    except Exception as exc:  # surface one clear line; the log has the detail
        fail(f"database migration failed: {type(exc).__name__}: {exc}".splitlines()[0])


def _preflight(settings: Settings) -> None:
    """Fail before serving, with one line, on what only shows when adapters are built."""
    from pieces_integration.adapters.crypto import build_secret_box

    try:
        build_secret_box(
            settings.encryption_key.get_secret_value() if settings.encryption_key else None,
            env=settings.env,
            data_dir=settings.data_dir,
        )
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}")


def _local_sign_in(settings: Settings) -> SignInCodes:
    from pieces_integration.service_layer.local_admin import (
        SignInCodes,
        create_local_admin,
        key_file,
        write_key_file,
    )

    if not key_file(settings.data_dir).exists():

        async def work(container: Container) -> str:
            return await create_local_admin(container.uow)

        path = write_key_file(settings.data_dir, run_with_container(settings, work))
        typer.echo(f"Created the local admin; its API key is in {path}")
    codes = SignInCodes()
    # bandit B104: compares against the wildcard to avoid binding it.
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host  # nosec B104
    typer.echo(
        "Sign in (one-time link, valid 15 minutes):\n"
        f"    http://{host}:{settings.server.port}/api/v1/auth/local-signin?code={codes.issue()}"
    )
    return codes


def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default from config)."),
    port: int | None = typer.Option(None, help="Port (default from config / PORT, 8080)."),
    migrate: bool | None = typer.Option(
        None,
        "--migrate/--no-migrate",
        help="Apply migrations first (default: yes on the embedded SQLite, no on PostgreSQL).",
    ),
) -> None:
    """Run the service."""
    overrides = {}
    if port is not None:
        overrides["server"] = {"port": port}
    settings = settings_or_exit(**overrides)
    if host is not None:
        settings.server.host = host
    configure_logging(settings.monitoring.log_level, settings.log_format)
    _preflight(settings)
    if migrate if migrate is not None else settings.embedded:
        _migrate(settings)
    import uvicorn

    from pieces_integration.entrypoints.api.app import create_app
    from pieces_integration.entrypoints.api.ws_transport import websocket_protocol
    from pieces_integration.entrypoints.cli._uvicorn import serve_with_websocket_port

    codes = _local_sign_in(settings) if settings.embedded else None
    app = create_app(settings, signin_codes=codes)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        lifespan="on",
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        ws_max_size=1024 * 1024,
        # Compressing each event once per connection costs more CPU than fan-out itself
        # (and ~80 KiB of zlib state per socket); events are small JSON.
        ws_per_message_deflate=False,
        # uvicorn's sans-I/O WebSocket protocol, plus a direct frame writer for fan-out.
        ws=websocket_protocol(settings.server),
    )
    serve_with_websocket_port(
        app, config, settings.server.websocket_port, settings.server.drain_seconds
    )


def migrate(
    revision: str = typer.Argument("head", help="Target revision (default: head)."),
) -> None:
    """Apply database migrations up to REVISION."""
    settings = settings_or_exit()
    configure_logging(settings.monitoring.log_level, settings.log_format)
    _migrate(settings, revision)
    typer.echo(f"database at {revision}")
