"""The `emulate aiwfe` commands' argument handling (serving itself is tested in-process)."""

from __future__ import annotations

import socket

import typer
from typer.testing import CliRunner

from pieces_integration.entrypoints.cli.emulate_aiwfe import aiwfe, send_webhook

app = typer.Typer()
app.command("aiwfe")(aiwfe)
app.command("send-webhook")(send_webhook)
runner = CliRunner()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_send_webhook_needs_a_secret() -> None:
    result = runner.invoke(
        app, ["send-webhook", "http://127.0.0.1:9/x", "--type", "task_created", "--user-id", "u"]
    )
    assert result.exit_code == 2
    assert "webhook-secret" in result.output


def test_send_webhook_rejects_non_object_data() -> None:
    args = ["send-webhook", "http://127.0.0.1:9/x", "--type", "t", "--user-id", "u",
            "--webhook-secret", "s", "--data", "[1]"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "JSON object" in result.output


def test_send_webhook_reports_unreachable_receiver() -> None:
    url = f"http://127.0.0.1:{_unused_port()}/hook"
    args = ["send-webhook", url, "--type", "task_created", "--user-id", "u",
            "--webhook-secret", "s", "--data", '{"task": {"id": "t", "title": "x"}}']  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "delivery failed" in result.output


def test_aiwfe_help_lists_options() -> None:
    result = runner.invoke(app, ["aiwfe", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--webhook-url", "--webhook-secret", "--api-key"):
        assert option in result.output
