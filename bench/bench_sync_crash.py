"""The kill -9 crash scenario of tests/e2e/test_sync_crash.py on a full-size library.

    .venv/bin/python bench/bench_sync_crash.py [--assets 10000] [--seed 1] [--postgres]

Prints the kill log, the time it took, and whether every side converged (it raises if not).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import POSTGRES_URL, drop_postgres_schema, new_postgres_schema
from tests.e2e.sync_harness import Service
from tests.e2e.test_sync_crash import crash_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    schema = new_postgres_schema("crashbench" + uuid.uuid4().hex[:6]) if args.postgres else None
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch)

            def service(aiwfe_url: str) -> Service:
                if schema is None:
                    return Service(tmp / "data", aiwfe_url)
                return Service(tmp / "data", aiwfe_url, POSTGRES_URL, schema)

            expected = crash_scenario(
                tmp, service, args.assets, args.seed, import_kills=4, burst_rounds=3
            )
    finally:
        if schema is not None:
            drop_postgres_schema(schema)
    print(f"{args.assets} assets, {'PostgreSQL' if schema else 'SQLite'}:")
    for kill in expected.kills:
        print("  " + kill)
    total = expected.contents.total()
    print(f"converged: {total} assets on Pieces, AIWFE and here, none missing or duplicated")
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
