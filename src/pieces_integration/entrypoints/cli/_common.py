"""Helpers every command shares: load settings or fail with one clear line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from pieces_integration.config import ConfigError, Settings, load_settings
from pieces_integration.domain.errors import PiecesIntegrationError

# The composition root pulls in every adapter (SDKs, ONNX Runtime, SQLAlchemy): commands import
# it when they run, so `--help` and the light commands (bridge, emulators) start at once.
if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container, Overrides

T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"pieces-integration: error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}")


def is_interactive() -> bool:
    return sys.stdin.isatty()


def ensure_schema(settings: Settings) -> None:
    """The embedded database migrates itself; PostgreSQL is migrated explicitly."""
    if settings.embedded:
        from pieces_integration.adapters.sql import migrate

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(settings.sqlalchemy_url)


def run_with_container(
    settings: Settings,
    work: Callable[[Container], Awaitable[T]],
    overrides: Overrides | None = None,
) -> T:
    """Run one async job against a container built from `settings`, then close it."""

    from pieces_integration.bootstrap import bootstrap

    async def runner() -> T:
        container = bootstrap(settings, overrides)
        try:
            return await work(container)
        finally:
            await container.aclose()

    try:
        return asyncio.run(runner())
    except PiecesIntegrationError as exc:
        fail(exc.message)
