"""Run inside the "laptop" namespace of the bridge tests, where Pieces OS is reachable only
on loopback: `python -m tests.e2e.netns_pieces names URL` prints the library's names;
`... edit URL MARKER` changes the first asset's text the way Pieces does it, through its
format (GET /format/{id}, POST /format/update/value), and prints that asset's name."""

from __future__ import annotations

import json
import sys

import httpx


def names(url: str) -> list[str]:
    snapshot = httpx.get(f"{url}/assets", params={"transferables": "true"}, timeout=30).json()
    return [str(asset.get("name")) for asset in snapshot["iterable"]]


def edit(url: str, marker: str) -> str:
    snapshot = httpx.get(f"{url}/assets", params={"transferables": "true"}, timeout=30).json()
    asset = snapshot["iterable"][0]
    format_id = asset["original"]["id"]
    fmt = httpx.get(f"{url}/format/{format_id}", params={"transferable": "true"}, timeout=10)
    body = fmt.json()
    body.setdefault("fragment", {}).setdefault("string", {})["raw"] = f"# {marker}\nprint(1)\n"
    httpx.post(
        f"{url}/format/update/value", params={"transferable": "false"}, json=body, timeout=10
    ).raise_for_status()
    return str(asset.get("name"))


if __name__ == "__main__":
    command, target = sys.argv[1], sys.argv[2]
    if command == "names":
        print(json.dumps(names(target)))  # noqa: T201 - the test reads stdout
    else:
        print(json.dumps(edit(target, sys.argv[3])))  # noqa: T201
