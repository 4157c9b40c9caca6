"""Where a collection's shard lives on disk, and the copies an optimisation makes.

`<directory>/<collection>/` is the original shard; an optimisation writes its copy to
`<collection>.opt-<id>/` and, once that is complete, names it in `<collection>.current`
(written and fsynced atomically). Whatever the pointer does not name is a leftover.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

GENERATION_MARK = ".opt-"

_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)


def copy_shard(source: Path, target: Path) -> None:
    """Copy a shard directory, keeping holes: the engine preallocates its WAL files (32 MB
    each, sparse on disk), and a plain copy would write every one of those zeros."""
    for root, _dirs, files in os.walk(source):
        relative = Path(root).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            with open(Path(root) / name, "rb") as src, open(target / relative / name, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    if chunk == _ZEROS[: len(chunk)]:
                        dst.seek(len(chunk), os.SEEK_CUR)
                    else:
                        dst.write(chunk)
                dst.truncate()


def new_generation(directory: Path, collection: str, suffix: str) -> Path:
    return directory / f"{collection}{GENERATION_MARK}{suffix}"


def _pointer(directory: Path, collection: str) -> Path:
    return directory / f"{collection}.current"


def current_path(directory: Path, collection: str) -> Path:
    """The live shard directory: the one `<collection>.current` names, else `<collection>`."""
    pointer = _pointer(directory, collection)
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        candidate = directory / name
        if (
            name.startswith(collection + GENERATION_MARK)
            and (candidate / "edge_config.json").is_file()
        ):
            return candidate
    return directory / collection


def remove_stale(directory: Path, collection: str, keep: Path) -> None:
    """Delete copies left by an optimisation that did not finish, or the replaced original."""
    for entry in directory.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name == collection or entry.name.startswith(collection + GENERATION_MARK):
            shutil.rmtree(entry, ignore_errors=True)


def write_pointer(directory: Path, collection: str, target: Path) -> None:
    pointer = _pointer(directory, collection)
    temporary = pointer.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(target.name)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, pointer)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
