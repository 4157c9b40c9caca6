"""The seeded fault simulation of tests/e2e/fault_simulation.py over many seeds (issue 20).

    .venv/bin/python bench/bench_fault_simulation.py [--seeds 200] [--first 1]
        [--backend sqlite|postgresql|both] [--users 3] [--steps 40] [--reports]

Prints one line per seed, then a table: runs, violations, faults injected by kind, what
became of the both-sides edits, and the run time (median, p95, p99). Any failing seed is
listed with its report; replay one with
`FAULT_SIM_SEEDS=<seed> .venv/bin/pytest tests/e2e/test_fault_simulation.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import POSTGRES_URL, drop_postgres_schema, new_postgres_schema
from tests.e2e.fault_simulation import Report, Simulation


def _run(seed: int, backend: str, users: int, steps: int) -> Report:
    with tempfile.TemporaryDirectory(prefix="pi-sim-") as scratch:
        if backend == "sqlite":
            return Simulation(Path(scratch), seed, users=users, steps=steps).run()
        schema = new_postgres_schema("simbench" + uuid.uuid4().hex[:6])
        try:
            return Simulation(
                Path(scratch), seed, users=users, steps=steps,
                database_url=POSTGRES_URL, schema=schema,
            ).run()  # fmt: skip
        finally:
            drop_postgres_schema(schema)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--reports", action="store_true", help="print every run's report")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    faults: Counter[str] = Counter()
    both_sides: Counter[str] = Counter()
    failed: list[Report] = []
    seconds: list[float] = []
    runs = 0
    for seed in range(args.first, args.first + args.seeds):
        for backend in backends:
            report = _run(seed, backend, args.users, args.steps)
            runs += 1
            faults.update(report.faults)
            both_sides.update(report.both_sides)
            seconds.append(report.timings.get("total", 0.0))
            state = "ok" if not report.violations else f"{len(report.violations)} VIOLATIONS"
            print(f"seed {seed:>6} {backend:<10} {report.timings.get('total', 0):6.1f}s {state}")
            if args.reports:
                print(report.text())
            if report.violations:
                failed.append(report)
    print()
    print(f"{'runs':<28}{runs}")
    print(f"{'runs with violations':<28}{len(failed)}")
    for kind, count in sorted(faults.items()):
        print(f"{'fault ' + kind:<28}{count}")
    for kind, count in sorted(both_sides.items()):
        print(f"{'both-sides ' + kind:<28}{count}")
    if seconds:
        print(
            f"{'seconds per run':<28}median {statistics.median(seconds):.1f}  "
            f"p95 {_quantile(seconds, 0.95):.1f}  p99 {_quantile(seconds, 0.99):.1f}"
        )
    for report in failed:
        print("\n" + report.text())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
