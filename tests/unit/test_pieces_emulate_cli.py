"""The `emulate pieces` command: options parse, bad fault values are refused."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from pieces_integration.entrypoints.cli.emulate_pieces import pieces


def test_help_lists_the_fault_flags() -> None:
    app = typer.Typer()
    app.command()(pieces)
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for flag in ("--port", "--assets", "--seed", "--error-rate", "--hang", "--refuse-for"):
        assert flag in result.output


def test_an_invalid_error_status_is_refused() -> None:
    app = typer.Typer()
    app.command()(pieces)
    result = CliRunner().invoke(app, ["--error-status", "418", "--port", "0"])
    assert result.exit_code != 0
    assert "error_status" in str(result.exception)
