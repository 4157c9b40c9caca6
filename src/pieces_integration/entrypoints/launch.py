"""The `pieces-integration` executable. `bridge ...` runs the agent without loading the
service (a developer's laptop needs none of it, and it starts in a fraction of the time);
every other command goes to the full command line in `entrypoints/cli`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["bridge"]:
        from pieces_integration.entrypoints.bridge_cli import app

        app(args=sys.argv[2:], prog_name="pieces-integration bridge")
        return
    from pieces_integration.entrypoints.cli import main as full

    full()
