"""Three replicas of the installed wheel behind HAProxy, under restarts and kill -9 (issue 14).

Rolling restart: while API users and WebSocket subscribers run through HAProxy, each replica
in turn gets SIGTERM (it drains: /ready 503, then `reconnect` + 1012, in-flight requests
finish) and comes back. No client request fails; whatever HAProxy retried is counted and
reported; every subscriber hears of every acknowledged asset exactly once.

Soak (short here, long in bench/bench_cluster.py): every user also has an emulated Pieces
library changing underneath, while one replica is killed with -9 at a fixed period. At the
end, after a final sync of everyone, the store, Pieces and AIWFE hold the same assets, none
twice; every acknowledged write is there; no two runs of one user's sync overlapped in time
(a run cut by a kill ends at that kill at the latest).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.domain.model import content_hash
from tests.conftest import POSTGRES_URL
from tests.deploy.cluster import LocalCluster, bearer
from tests.deploy.load import Subscriber, Traffic, api_user, caught_up, subscriber
from tests.deploy.wheel_install import Installed

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(400)]

USERS = ["ann", "ben", "cat"]
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def cluster(
    installed_wheel: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    running = LocalCluster(installed_wheel, tmp_path_factory.mktemp("cluster"), USERS)
    try:
        running.start()
        running.connect_users()
        yield running
    finally:
        running.stop()


async def _under_load(
    cluster: LocalCluster, chaos: object, subscribers_per_user: int = 2
) -> tuple[Traffic, list[Subscriber]]:
    traffic = Traffic()
    # Two stops: subscribers must keep listening after the writers stop (one shared event,
    # set then cleared, let them return early and miss the last acknowledged writes).
    stop_writers, stop_listening = asyncio.Event(), asyncio.Event()
    subs = [Subscriber(u) for u in USERS for _ in range(subscribers_per_user)]
    listening = [asyncio.create_task(subscriber(cluster.url, s, stop_listening)) for s in subs]
    await asyncio.wait_for(asyncio.gather(*(s.subscribed.wait() for s in subs)), 30)
    users = [asyncio.create_task(api_user(cluster.url, u, traffic, stop_writers)) for u in USERS]
    try:
        await chaos()  # type: ignore[operator]
    finally:
        stop_writers.set()
        await asyncio.gather(*users)
    # Subscribers keep listening until they have heard of every acknowledged asset.
    try:
        await caught_up(subs, traffic, limit=30)
    finally:
        stop_listening.set()
        await asyncio.gather(*listening)
    return traffic, subs


def test_rolling_restart_under_load_loses_no_request_and_no_event(cluster: LocalCluster) -> None:
    codes: list[int | None] = []

    async def roll() -> None:
        await asyncio.sleep(1.5)
        for index in range(len(cluster.nodes)):
            codes.append(await asyncio.to_thread(cluster.restart, index))
            await asyncio.sleep(1.0)

    before = cluster.retried()
    traffic, subs = asyncio.run(_under_load(cluster, roll))
    after = cluster.retried()
    retried = {k: after[k] - before[k] for k in after}
    log.warning("rolling restart: %d requests, HAProxy retried %s", traffic.requests, retried)

    assert all(code in (0, -15) for code in codes), codes  # each drained and exited cleanly
    assert traffic.failures == [], Counter(traffic.failures)
    assert sum(len(v) for v in traffic.acked.values()) > 20
    missed = {}
    for sub in subs:
        assert sub.duplicates == 0 and sub.resets == 0, sub
        assert sub.connects >= 2 and sub.closes[1012] >= 1, sub  # moved, and resumed
        if lost := set(traffic.acked[sub.user]) - sub.asset_ids:
            missed[f"{sub.user}#{subs.index(sub)}"] = (len(lost), dict(sub.closes))
    assert not missed, f"missed events after resume: {missed} of {len(subs)} subscribers"


def _overlaps(rows: list[tuple[str, datetime, datetime | None]], kills: list[float]) -> list[str]:
    """Runs of one user that overlapped. A run with no end was cut by a kill: it ended at
    the first kill after its start, at the latest."""
    found = []
    by_user = itertools.groupby(sorted(rows, key=lambda r: (r[0], r[1])), key=lambda r: r[0])
    for user, runs in by_user:
        previous_end: float | None = None
        for _, started, completed in runs:
            start = started.replace(tzinfo=started.tzinfo or UTC).timestamp()
            if previous_end is not None and start < previous_end:
                found.append(f"{user}: a run at {started} began before the previous one ended")
            if completed is not None:
                previous_end = completed.replace(tzinfo=completed.tzinfo or UTC).timestamp()
            else:
                after = [k for k in kills if k >= start]
                previous_end = min(after) if after else float("inf")
    return found


async def _store(cluster: LocalCluster) -> tuple[dict[str, Counter[str]], set[str], list]:  # type: ignore[type-arg]
    engine = create_engine(POSTGRES_URL, schema=cluster.schema)
    try:
        async with engine.connect() as conn:
            assets = (
                await conn.execute(
                    sa.text(f'SELECT id, user_id, content FROM "{cluster.schema}".assets')
                )
            ).all()
            runs = (
                await conn.execute(
                    sa.text(
                        "SELECT user_id, started_at, completed_at "
                        f'FROM "{cluster.schema}".sync_runs'
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    contents: dict[str, Counter[str]] = {u: Counter() for u in USERS}
    for _, user, content in assets:
        contents[user][content_hash(content)] += 1
    return contents, {row[0] for row in assets}, [tuple(r) for r in runs]


def _sides(cluster: LocalCluster) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    async def read() -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
        assert cluster.aiwfe is not None
        pieces = {
            u: Counter(content_hash(r.content) for r in cluster.pieces[u].state.assets.values())
            for u in USERS
        }
        aiwfe = {
            u: Counter(content_hash(a["content"]) for a in cluster.aiwfe.state.assets[u].values())
            for u in USERS
        }
        return pieces, aiwfe

    return cluster.run(read())


def _pieces_side_create(cluster: LocalCluster, user: str, n: int) -> None:
    raw = f"def from_pieces_{n}():\n    return '{user} {n} {time.time_ns()}'\n"
    seed = {
        "asset": {
            "format": {"fragment": {"string": {"raw": raw}, "metadata": {"ext": "py"}}},
            "metadata": {"name": f"pieces {user} {n}"},
        }
    }

    async def create() -> None:
        cluster.pieces[user].state.create_from_seed(seed)

    cluster.run(create())


def _converge(cluster: LocalCluster, limit: float = 90) -> tuple[object, ...]:
    deadline = time.monotonic() + limit
    while True:
        with httpx.Client(base_url=cluster.url, timeout=60) as http:
            for user in USERS:
                http.post(f"/api/v1/context/{user}/sync", headers=bearer(user))
        store, ids, runs = asyncio.run(_store(cluster))
        pieces, aiwfe = _sides(cluster)
        if (store == pieces == aiwfe) or time.monotonic() > deadline:
            return store, ids, runs, pieces, aiwfe
        time.sleep(1)


def test_soak_kill_9_loses_and_duplicates_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    period, kills = 7.0, 2

    async def chaos() -> None:
        for n in range(kills):
            for step in range(int(period / 0.5)):
                await asyncio.sleep(0.5)
                if step % 4 == 0:
                    for user in USERS:
                        await asyncio.to_thread(_pieces_side_create, cluster, user, n * 100 + step)
            index = n % len(cluster.nodes)
            await asyncio.to_thread(cluster.kill, index)
            await asyncio.to_thread(cluster.revive, index)
        await asyncio.sleep(2)

    soak_started = time.time()
    traffic, subs = asyncio.run(_under_load(cluster, chaos, subscribers_per_user=1))
    store, ids, runs, pieces, aiwfe = _converge(cluster)
    log.warning(
        "soak: %d requests, %d kills, %d writes unanswered, failures %s",
        traffic.requests,
        len(cluster.kills),
        traffic.unacked_writes,
        Counter(traffic.failures),
    )
    acked = {i for ids_ in traffic.acked.values() for i in ids_}
    assert acked and acked <= ids  # every acknowledged write is in the store
    for user in USERS:
        assert store[user] == pieces[user], user  # nothing lost or doubled toward Pieces
        assert store[user] == aiwfe[user], user  # nor toward AIWFE
    # Runs the rolling restart's SIGTERM cancelled have no end either, and no kill ended
    # them: an unfinished run counts only from the soak on.
    checked = [
        r
        for r in runs  # type: ignore[attr-defined]
        if r[2] is not None or r[1].replace(tzinfo=r[1].tzinfo or UTC).timestamp() >= soak_started
    ]
    assert _overlaps(checked, cluster.kills) == []
    for sub in subs:
        assert set(traffic.acked[sub.user]) <= sub.asset_ids, sub.user
        assert sub.duplicates == 0 and sub.resets == 0
