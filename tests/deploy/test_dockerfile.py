"""What the image relies on, checked without a container runtime (issue 14, item 1).

Images cannot be built here (no base images), so this reads the Dockerfile: a build stage
and a runtime stage; hash-locked installs of exactly the files `make lock` writes; a numeric
non-root USER that nothing switches back; `serve` as the command and `migrate` reachable
through the same entrypoint; the data directory and /tmp declared as volumes (the only
writable places under a read-only root, as tests/deploy/test_wheel.py runs it). Every file
it copies exists and is not excluded by .dockerignore.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.wheel_install import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def dockerfile() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: the last match wins."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        if body == "**":
            hit = True
        elif body.endswith("/"):
            hit = path.startswith(body)
        elif body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in path.split("/"))
        else:
            hit = fnmatch.fnmatch(path, body)
        if hit:
            result = not negate
    return result


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_two_stages_and_the_runtime_runs_as_a_numeric_non_root_user() -> None:
    steps = dockerfile()
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS build") and stages[1].endswith("AS runtime")
    runtime = steps[[k for k, _ in steps].index("FROM", 1) :]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "runAsNonRoot needs a numeric non-root uid"
    last_user = max(i for i, (k, _) in enumerate(runtime) if k == "USER")
    assert all(k != "RUN" for k, _ in runtime[last_user:]), "nothing runs as root after USER"
    entry = {k: json.loads(rest) for k, rest in runtime if k in ("ENTRYPOINT", "CMD")}
    assert entry == {"ENTRYPOINT": ["pieces-integration"], "CMD": ["serve"]}


def test_installs_are_the_locked_files_and_the_backend_is_not_fetched() -> None:
    runs = " && ".join(rest for keyword, rest in dockerfile() if keyword == "RUN")
    commands = [shlex.split(part) for part in re.split(r"&&", runs)]
    installs = [c for c in commands if "pip" in " ".join(c[:4]) and "install" in c]
    for command in installs:
        if "-r" in command:
            assert "--require-hashes" in command, command
    files = {c[c.index("-r") + 1].rsplit("/", 1)[-1] for c in installs if "-r" in c}
    assert files == {"build.txt", "runtime.txt", "model.txt"}
    wheels = [c for c in commands if "wheel" in c]
    assert wheels and all("--no-build-isolation" in c and "--no-deps" in c for c in wheels)


def test_the_runtime_lock_is_the_lock_less_dev_tools_at_the_same_pins() -> None:
    lock = dict(PIN.findall((ROOT / "requirements/lock.txt").read_text()))
    runtime = dict(PIN.findall((ROOT / "requirements/runtime.txt").read_text()))
    assert "fastapi" in runtime and "pytest" not in runtime
    assert {name: v for name, v in runtime.items() if lock.get(name) != v} == {}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}
    pinned = {canonicalize_name(name) for name in runtime}
    assert sorted(declared - pinned) == [], "run `make lock`: runtime.txt misses these"


def test_writable_places_are_declared_volumes() -> None:
    steps = dockerfile()
    volumes = [json.loads(rest) for keyword, rest in steps if keyword == "VOLUME"]
    declared = {v for group in volumes for v in group}
    env = " ".join(rest for keyword, rest in steps if keyword == "ENV")
    data_dir = re.search(r"PIECES_INTEGRATION_DATA_DIR=(\S+)", env)
    home = re.search(r"\bHOME=(\S+)", env)
    assert data_dir and home
    assert {data_dir.group(1), "/tmp", home.group(1)} <= declared
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # no .pyc writes into the read-only install


def test_every_copied_file_exists_and_reaches_the_build_context() -> None:
    patterns = _dockerignore()
    copies = [rest for keyword, rest in dockerfile() if keyword == "COPY" and "--from" not in rest]
    sources = [src for rest in copies for src in shlex.split(rest)[:-1]]
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else list(path.rglob("*.py"))
        for file in files:
            relative = str(file.relative_to(ROOT))
            assert not ignored(relative, patterns), f"{relative} is excluded by .dockerignore"
    assert ignored(".venv/bin/python", patterns) and ignored("tests/conftest.py", patterns)
    assert ignored("src/pieces_integration/__pycache__/x.pyc", patterns)
