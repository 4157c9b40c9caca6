"""Opt-in: the official `pieces` CLI (pieces-cli 1.20.x) against the emulator.

pieces-cli vendors its own SDK and pins its own dependencies, so it lives in its own virtual
environment; point PIECES_CLI_BIN at its `pieces` executable to run this test, e.g.
    python -m venv /tmp/pcli && /tmp/pcli/bin/pip install pieces-cli==1.20.1
    PIECES_CLI_BIN=/tmp/pcli/bin/pieces pytest tests/integration/test_pieces_cli_tool.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio
import pytest

from pieces_integration.adapters.pieces_os.discovery import SCAN_PORTS
from pieces_integration.emulators.pieces.server import running_emulator
from tests.net import free_port_in

CLI = os.environ.get("PIECES_CLI_BIN")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not CLI, reason="set PIECES_CLI_BIN to a pieces-cli executable"),
]


def run_cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert CLI is not None
    return subprocess.run(
        [CLI, "--ignore-onboarding", "--headless", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},
        check=False,
    )


async def test_pieces_cli_reads_and_writes_through_the_emulator(tmp_path: Path) -> None:
    port = free_port_in(SCAN_PORTS)
    async with running_emulator(port=port, assets=4, seed=3) as emulator:
        version = await anyio.to_thread.run_sync(run_cli, tmp_path, "version")
        assert json.loads(version.stdout)["data"]["pieces_os_version"] == "12.3.4"
        created = await anyio.to_thread.run_sync(
            lambda: run_cli(tmp_path, "create", "-c", stdin="print('from the cli')\n")
        )
        assert "successfully saved" in created.stdout, created.stdout + created.stderr
        contents = [a.content for a in emulator.state.assets.values()]
        assert any("from the cli" in c for c in contents)
