"""The `pieces-integration` command line: thin commands over bootstrap and the service layer."""

from __future__ import annotations

from pieces_integration.entrypoints.cli.main import app, main

__all__ = ["app", "main"]
