"""The wheel is complete (issue 14, item 1): built offline from the locked backend, installed
outside the source tree with the locked runtime set, it migrates and serves on PostgreSQL.

The serving process runs in its own mount namespace where the install, its working directory
and HOME are read-only bind mounts: only the data directory and /tmp (the image's declared
volumes) can be written, as under the chart's `readOnlyRootFilesystem: true`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from tests.conftest import POSTGRES_URL, drop_postgres_schema, new_postgres_schema
from tests.deploy.wheel_install import (
    ROOT,
    Installed,
    packaged_data_files,
    wheel_names,
)
from tests.e2e.sync_harness import free_port, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SECRET = "wheel-test-secret-" + "w" * 24


def test_every_non_python_file_of_the_package_is_in_the_wheel(installed_wheel: Installed) -> None:
    names = wheel_names(installed_wheel.wheel)
    data = packaged_data_files()
    assert "pieces_integration/adapters/sql/migrations/script.py.mako" in data
    assert [name for name in data if name not in names] == []
    migrations = sorted(
        (ROOT / "src/pieces_integration/adapters/sql/migrations/versions").glob("*.py")
    )
    assert migrations
    missing = [
        p.name
        for p in migrations
        if f"pieces_integration/adapters/sql/migrations/versions/{p.name}" not in names
    ]
    assert missing == []
    assert not any(name.startswith(("tests/", "bench/", "deploy/")) for name in names)


def test_the_install_imports_from_itself_and_finds_the_model(installed_wheel: Installed) -> None:
    probe = (
        "import pieces_integration, sys;"
        "from pieces_integration.adapters.embeddings.minilm_numpy import packaged_model_dir;"
        "print(pieces_integration.__file__); print(packaged_model_dir())"
    )
    out = subprocess.run(
        [str(installed_wheel.python), "-I", "-c", probe],
        env=installed_wheel.env(),
        cwd=installed_wheel.venv,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    venv = str(installed_wheel.venv.resolve())
    assert all(line.startswith(venv) for line in out), out


def _read_only(paths: list[Path], command: list[str]) -> list[str]:
    """`command` in a private mount namespace where each of `paths` is mounted read-only."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    script = "".join(
        f'mount --bind "{p}" "{p}" && mount -o remount,bind,ro "{p}" "{p}" && ' for p in paths
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script + 'exec "$@"',
        "sh",
        *command,
    ]


def test_installed_wheel_migrates_then_serves_on_postgres_read_only(
    installed_wheel: Installed, tmp_path: Path
) -> None:
    schema = new_postgres_schema("wheel" + uuid.uuid4().hex[:6])
    work, home, data, tmp = (tmp_path / n for n in ("work", "home", "data", "tmp"))
    for directory in (work, home, data, tmp):
        directory.mkdir()
    port = free_port()
    env = installed_wheel.env(
        HOME=str(home),
        TMPDIR=str(tmp),
        APP_ENV="production",
        DATABASE_URL=POSTGRES_URL,
        DATABASE_SCHEMA=schema,
        JWT_SECRET=SECRET,
        ENCRYPTION_KEY="cd" * 32,
        PIECES_INTEGRATION_DATA_DIR=str(data),
        PORT=str(port),
        LOG_LEVEL="warning",
    )
    cli = str(installed_wheel.cli)
    ro = [installed_wheel.venv, installed_wheel.model_cache, work, home]
    process = None
    try:
        migrated = subprocess.run(
            _read_only(ro, [cli, "migrate"]),
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        with (tmp_path / "serve.log").open("wb") as log:
            process = subprocess.Popen(
                _read_only(ro, [cli, "serve", "--host", "127.0.0.1"]),
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/ready", process, tmp_path / "serve.log")
        assert httpx.get(base + "/health", timeout=5).json() == {"status": "ok"}
        token = JwtCodec(
            issuer="pieces-integration",
            audience="pieces-integration",
            secret=SECRET,
            public_key=None,
            jwks_url=None,
        ).issue("wendy", Role.USER, ttl_seconds=600)
        headers = {"Authorization": f"Bearer {token}"}
        body = {"name": "wheel check", "content": "print('from the wheel')\n", "language": "python"}
        created = httpx.post(base + "/api/v1/assets", json=body, headers=headers, timeout=30)
        assert created.status_code == 201, created.text
        asset_id = created.json()["id"]
        read = httpx.get(f"{base}/api/v1/assets/{asset_id}", headers=headers, timeout=30)
        assert read.status_code == 200 and read.json()["content"] == body["content"]
        assert list(work.iterdir()) == [] and list(home.iterdir()) == []
    finally:
        if process is not None:
            stop(process)
        drop_postgres_schema(schema)


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready: {log.read_text()[-3000:]}")
