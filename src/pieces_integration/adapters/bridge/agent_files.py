"""Where the agent keeps what it knows: the credential (0600) and its last status.

Both live under the user's config directory (`platformdirs.user_config_dir`, e.g.
`~/.config/pieces-integration/`), or the directory given with `--config-dir`. The credential
file is created 0600 from the start (never written world-readable and tightened later).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

CREDENTIAL_FILE = "bridge.json"
STATUS_FILE = "bridge-status.json"


def config_dir(explicit: Path | None = None) -> Path:
    return explicit or Path(user_config_dir("pieces-integration"))


@dataclass(frozen=True, slots=True)
class Pairing:
    server: str
    bridge_id: str
    user_id: str
    name: str
    credential: str
    device_id: str


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    os.chmod(temp, 0o600)  # an existing temp file keeps its old mode through O_CREAT
    os.replace(temp, path)


def save_pairing(directory: Path, pairing: Pairing) -> Path:
    path = directory / CREDENTIAL_FILE
    _write_private(path, asdict(pairing))
    return path


def load_pairing(directory: Path) -> Pairing | None:
    path = directory / CREDENTIAL_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RuntimeError(f"{path} is not valid JSON; pair again") from exc
    return Pairing(**{key: str(raw[key]) for key in Pairing.__dataclass_fields__})


def save_status(directory: Path, status: dict[str, Any]) -> None:
    _write_private(directory / STATUS_FILE, status)


def load_status(directory: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads((directory / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None
