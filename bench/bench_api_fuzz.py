"""The schemathesis run of tests/e2e/test_api_fuzz.py, long (issue 20).

    .venv/bin/python bench/bench_api_fuzz.py [--examples 200] [--stateful 100]

Runs the whole OpenAPI as a user, an admin and a guest with `--examples` cases per operation,
then the stateful machine with `--stateful` sequences, and prints a table of cases and
failures (server errors, responses breaking their own schema) per role.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--stateful", type=int, default=100)
    args = parser.parse_args()
    env = {
        **os.environ,
        "FUZZ_EXAMPLES": str(args.examples),
        "FUZZ_STATEFUL_EXAMPLES": str(args.stateful),
    }
    rows = []
    for role in ("user", "admin", "guest", "statefully"):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", role,
             "tests/e2e/test_api_fuzz.py"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "?"
        rows.append((role, summary, time.perf_counter() - started, result.returncode))
        if result.returncode:
            print(result.stdout[-6000:])
    print(f"{'role':<12}{'seconds':>9}  result")
    for role, summary, seconds, _ in rows:
        print(f"{role:<12}{seconds:>9.1f}  {summary}")
    sys.exit(1 if any(code for *_, code in rows) else 0)


if __name__ == "__main__":
    main()
