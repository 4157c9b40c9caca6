"""Bring the local cluster up by hand and keep it running until Ctrl-C (or --seconds).

    .venv/bin/python deploy/local-cluster/up.py --users 3 [--venv /tmp/.../venv]

Builds the wheel and installs it outside the tree (unless --venv names an earlier install),
then starts PostgreSQL-backed replicas of it with Redis behind HAProxy, the AIWFE emulator
and one Pieces emulator per user (the harness of tests/deploy/cluster.py), connects each
user's Pieces, and prints the load balancer's URL, each replica's URL and a bearer token
per user. PostgreSQL (127.0.0.1:5432, db `test`) and Redis (127.0.0.1:6379) must be running;
HAProxy comes from `make install`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.deploy.cluster import LocalCluster, bearer
from tests.deploy.wheel_install import Installed, build_wheel, install


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the local cluster.")
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this long")
    parser.add_argument("--venv", type=Path, help="an installed wheel venv to reuse")
    args = parser.parse_args()
    if args.venv:
        installed = Installed(next((args.venv.parent / "dist").glob("*.whl")), args.venv)
    else:
        base = Path(tempfile.mkdtemp(prefix="local-cluster-wheel-"))
        installed = install(build_wheel(base / "dist"), base / "venv")
    users = [f"user{i}" for i in range(args.users)]
    with tempfile.TemporaryDirectory(prefix="local-cluster-") as work:
        cluster = LocalCluster(installed, Path(work), users, replicas=args.replicas)
        try:
            cluster.start()
            cluster.connect_users()
            say(f"load balancer: {cluster.url}   (HAProxy config: {work}/haproxy.cfg)")
            for node in cluster.nodes:
                say(f"  {node.name}: {node.url}   logs under {node.data}")
            for user in users:
                say(f"  {user}: {bearer(user)['Authorization']}")
            time.sleep(args.seconds)
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
