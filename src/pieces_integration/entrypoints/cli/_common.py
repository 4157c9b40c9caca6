"""Helpers every command shares: load settings or fail with one clear line."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer

from pieces_integration.config import ConfigError, Settings, load_settings


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
