"""The lock (requirements/lock.txt) covers every dependency pyproject.toml declares.

`make` installs the lock and then the project with --no-deps, so a dependency added to
pyproject.toml without `make lock` would only show up as an ImportError somewhere. This
fails first, naming it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _pins(path: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(path.read_text())}


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(spec) for spec in names]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins(ROOT / "requirements" / "lock.txt")
    missing = [str(r) for r in _declared() if canonicalize_name(r.name) not in pins]
    outside = [
        f"{r} (locked {pins[canonicalize_name(r.name)]})"
        for r in _declared()
        if canonicalize_name(r.name) in pins
        and not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert missing == [], f"not in requirements/lock.txt; run `make lock`: {missing}"
    assert outside == [], f"locked outside pyproject's range; run `make lock`: {outside}"


def test_every_pin_carries_a_hash() -> None:
    for name in ("lock.txt", "build.txt", "model.txt"):
        text = (ROOT / "requirements" / name).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1] if text else "")
        pinned = [b for b in blocks if PIN.match(b)]
        assert pinned, name
        assert all("--hash=sha256:" in b for b in pinned), name
