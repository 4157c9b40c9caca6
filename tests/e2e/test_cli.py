"""The command line: start-up errors are one clear line; `serve` really serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLI = [sys.executable, "-m", "pieces_integration"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIECES_INTEGRATION_")}
    env.update(PIECES_INTEGRATION_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("DATABASE_URL", "postgresql//oops", "database_url"),
        ("LOG_LEVEL", "chatty", "monitoring.log_level"),
    ],
)
def test_bad_configuration_is_one_line_and_non_zero(
    tmp_path: Path, name: str, value: str, needle: str
) -> None:
    result = subprocess.run(
        [*CLI, "serve"], env=_env(tmp_path, **{name: value}), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_migrates_and_answers_health(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200
        assert (tmp_path / "data" / "pieces-integration.db").is_file()
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
