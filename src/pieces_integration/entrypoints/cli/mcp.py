"""`mcp`: the MCP server over stdio, for agents that launch a command (IDEs, desktop apps)."""

from __future__ import annotations

import asyncio

import structlog
import typer

from pieces_integration.config import Settings
from pieces_integration.entrypoints.cli._common import ensure_schema, fail, settings_or_exit
from pieces_integration.observability.logs import configure_logging
from pieces_integration.service_layer.local_admin import key_file

log = structlog.get_logger(__name__)


def _first_cause(exc: BaseException) -> BaseException:
    """The error inside the task groups' wrapping, for a one-line message."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _embedded(settings: Settings) -> tuple[str, str] | None:
    """Serve here; or, when `serve` holds the embedded store, the (URL, local key) to use."""
    from pieces_integration.entrypoints.mcp.stdio import StoreInUse, serve_stdio

    try:
        asyncio.run(serve_stdio(settings))
        return None
    except StoreInUse as exc:
        key = key_file(settings.data_dir)
        if not key.is_file():
            fail(f"{exc}; is another process using {settings.data_dir}?")
        url = f"http://127.0.0.1:{settings.server.port}"
        log.warning("the embedded store is in use; forwarding to the running service", url=url)
        return url, key.read_text(encoding="utf-8").strip()


def _proxy(server: str, api_key: str) -> None:
    from pieces_integration.entrypoints.mcp.proxy import RemoteRefused, endpoint, serve_proxy

    try:
        endpoint(server)
        asyncio.run(serve_proxy(server, api_key))
    except (ValueError, RemoteRefused) as exc:
        fail(str(exc))
    except Exception as exc:  # one line on stderr, not a traceback
        cause = _first_cause(exc)
        fail(f"MCP proxy to {server} stopped: {type(cause).__name__}: {cause}".splitlines()[0])


def mcp(
    server: str | None = typer.Option(
        None, "--server", help="Forward to this remote service (its /mcp) instead of running here."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="PIECES_INTEGRATION_API_KEY",
        help="With --server: an API key (pk_...) or a token for the remote service.",
    ),
) -> None:
    """Serve MCP over stdio: on the embedded default as the local user, or as a proxy."""
    if server is not None:
        if not api_key:
            fail("--server needs --api-key KEY (or PIECES_INTEGRATION_API_KEY)")
        configure_logging("warning", "console")  # to stderr
        _proxy(server, api_key)
        return
    if api_key:
        fail("--api-key goes with --server URL")
    settings = settings_or_exit()
    if not settings.embedded:
        fail("without --server, `mcp` runs on the embedded default; use --server URL --api-key")
    configure_logging(settings.monitoring.log_level, settings.log_format)  # to stderr
    ensure_schema(settings)
    local = _embedded(settings)
    if local is not None:
        _proxy(*local)
