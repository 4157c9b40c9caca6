"""Optimise one qdrant-edge shard directory in a child process (run as a script).

    python _edge_optimizer.py <shard directory>

`EdgeShard.optimize()` holds the GIL for its whole run (measured: seconds to minutes on
these 2 cores: 8,000 x 384-d took 4 s, 20,000 took 25 s on a loaded machine), so in the
serving process it would stop the event loop and every query with it. The adapter therefore
copies the shard and runs this script on the copy, at a lower CPU priority; only the
finished copy is swapped in. Imports nothing but the engine and the standard library, so
it starts quickly. Prints one JSON line: {"changed": bool, "seconds": float}.
"""

from __future__ import annotations

import json
import os
import sys
import time

import qdrant_edge as q


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: _edge_optimizer.py <shard directory>\n")
        return 2
    try:
        os.nice(10)  # the serving process comes first
    except OSError:
        pass
    started = time.perf_counter()
    shard = q.EdgeShard.load(argv[1])
    try:
        changed = bool(shard.optimize())
        shard.flush()
    finally:
        shard.close()
    report = {"changed": changed, "seconds": round(time.perf_counter() - started, 3)}
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
