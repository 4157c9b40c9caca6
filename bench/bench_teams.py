"""Team-scope vs own-scope search and suggestions in one run (issue 16's benchmark).

    .venv/bin/python bench/bench_teams.py --teams 20 --members 10 --assets 500

(20 teams of 10 users, 500 assets each = 100,000; the issue's size, about 15-25 minutes on 2
quiet cores, most of it seeding). A quick check: `--teams 4 --members 5 --assets 100`.

Seeding is `speed_service.seed` (the repositories' row mapping, the two index tiers' real
code, synthetic dense vectors), then teams, memberships and shares are written through the
project's tables: every user is in one team, and `--share` of each user's assets are shared
into it. The app runs in process behind an ASGI client; latency is server-side (request in
to last byte out, `speed_service.ServerTiming`). Query vectors are precomputed by the real
model before the run, so both scopes pay the same (zero) embedding cost and the difference
is the scope: its membership and share reads and the store's id filter.

`POST /api/v1/assets/search` and then `GET /api/v1/assets/suggestions`, each with
`scope=mine` and with `scope=team` alternating in rounds (mine, team, mine, team, ...) so
drift on a noisy host hits both alike; 1 and `--clients` concurrent clients. Every
suggestion context is distinct, so none is answered from the suggestion cache. The seeded
vectors are synthetic, so few candidates clear the relevance threshold: the suggestion times
are those of the whole path (team reach, retrieval, loading, scoring), not of large answers.
`scope=team` suggestions skip the caller's own assets, Pieces and AIWFE, so they do somewhat
less work than `mine` by design; the ratio says the team reach costs no more than that saves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pieces_integration.adapters.sql import migrate, tables
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.bootstrap import bootstrap
from pieces_integration.domain.model import Role, new_id, utcnow
from pieces_integration.domain.suggestion_context import SuggestContext
from pieces_integration.observability.logs import configure_logging
from speed_service import (
    SEARCH,
    SUGGESTIONS,
    PrecomputedQueries,
    ServerTiming,
    bench_settings,
    closed_loop,
    percentile,
    requests_for,
    seed,
)
from stdlib_corpus import build_task


async def make_teams(url: str, teams: int, members: int, share: float) -> int:
    """Teams of `members` consecutive users; the first `share` of each user's assets shared."""
    engine = create_engine(url)
    now = utcnow()
    shared = 0
    try:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(sa.select(tables.assets.c.id, tables.assets.c.user_id))
            ).all()
            by_user: dict[str, list[str]] = {}
            for asset_id, user_id in rows:
                by_user.setdefault(user_id, []).append(asset_id)
            for t in range(teams):
                team_id = new_id()
                await conn.execute(
                    sa.insert(tables.teams).values(
                        id=team_id,
                        name=f"team-{t}",
                        created_by=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
                users = [f"user-{t * members + m}" for m in range(members)]
                await conn.execute(
                    sa.insert(tables.team_members),
                    [
                        {"team_id": team_id, "user_id": u, "role": "owner" if m == 0 else "member",
                         "added_by": users[0], "added_at": now}
                        for m, u in enumerate(users)
                    ],
                )  # fmt: skip
                shares = [
                    {"asset_id": a, "team_id": team_id, "shared_by": u, "shared_at": now}
                    for u in users
                    for a in sorted(by_user.get(u, []))[: round(share * len(by_user.get(u, [])))]
                ]
                if shares:
                    await conn.execute(sa.insert(tables.asset_shares), shares)
                shared += len(shares)
    finally:
        await engine.dispose()
    return shared


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-teams-"))
    settings = bench_settings(directory)
    configure_logging(settings.monitoring.log_level, settings.log_format)
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    container = bootstrap(settings)
    users = args.teams * args.members
    print(f"seeding {users} users x {args.assets:,} assets = {users * args.assets:,}")
    await seed(container, users, args.assets, "synthetic")
    shared = await make_teams(settings.sqlalchemy_url, args.teams, args.members, args.share)
    print(f"  {args.teams} teams of {args.members}; {shared:,} assets shared")

    from pieces_integration.entrypoints.api.app import create_app

    app = create_app(settings, container=container)
    timing = ServerTiming(app)
    index = container.search.index
    real = index.embedder
    rng = random.Random(16)
    queries = build_task().corpus
    samples: dict[tuple[str, str, int], list[float]] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=timing), base_url="http://bench", timeout=600
        ) as client,
    ):
        tokens = [
            container.jwt.issue(f"user-{u}", Role.USER, ttl_seconds=7200) for u in range(users)
        ]
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        total = args.rounds * 2 * (args.single + args.clients * args.per_client) + 20
        searches, suggestions = requests_for(total, users, queries, rng)
        texts = sorted(
            {body["query"] for _, body in searches}
            | {SuggestContext.parse(json.loads(p["context"])).text() for _, p in suggestions}
        )
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 64):
            vectors.extend(await real.embed(texts[start : start + 64]))
        index.embedder = PrecomputedQueries(dict(zip(texts, vectors, strict=True)), real)
        work = {SEARCH: iter(searches), SUGGESTIONS: iter(suggestions)}

        def take(endpoint: str, count: int, scope: str) -> list[tuple[int, dict[str, Any]]]:
            pending = work[endpoint]
            return [
                (u, {**body, "scope": scope}) for u, body in (next(pending) for _ in range(count))
            ]

        for scope in ("mine", "team"):  # warm-up, and a check that each scope finds things
            await closed_loop(client, SEARCH, take(SEARCH, 5, scope), headers, 1)
            await closed_loop(client, SUGGESTIONS, take(SUGGESTIONS, 5, scope), headers, 1)
            user, body = take(SEARCH, 1, scope)[0]
            found = (await client.post(SEARCH, json=body, headers=headers[user])).json()
            user, params = take(SUGGESTIONS, 1, scope)[0]
            got = (await client.get(SUGGESTIONS, params=params, headers=headers[user])).json()
            print(f"  a {scope} search found {len(found['results'])} results, "
                  f"a {scope} suggestion request {len(got)} suggestions")  # fmt: skip
        for endpoint in (SEARCH, SUGGESTIONS):
            for _ in range(args.rounds):
                for scope in ("mine", "team"):
                    for clients, count in (
                        (1, args.single),
                        (args.clients, args.clients * args.per_client),
                    ):
                        timing.samples.clear()
                        batch = take(endpoint, count, scope)
                        await closed_loop(client, endpoint, batch, headers, clients)
                        key = (endpoint, scope, clients)
                        samples.setdefault(key, []).extend(timing.samples[endpoint])
        index.embedder = real
    await container.aclose()
    if timing.failures:
        print(f"non-2xx responses: {dict(timing.failures)}")

    for endpoint, label in ((SEARCH, "search"), (SUGGESTIONS, "suggestions")):
        print()
        print(f"{label}, server-side ms ({users * args.assets:,} assets, {shared:,} shared; "
              f"query and context vectors precomputed)")  # fmt: skip
        print(f"{'scope':6} {'clients':>7} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8}")
        for clients in (1, args.clients):
            for scope in ("mine", "team"):
                values = samples[(endpoint, scope, clients)]
                print(
                    f"{scope:6} {clients:7} {len(values):5} {percentile(values, 50):8.1f} "
                    f"{percentile(values, 95):8.1f} {percentile(values, 99):8.1f}"
                )
        for clients in (1, args.clients):
            mine, team = samples[(endpoint, "mine", clients)], samples[(endpoint, "team", clients)]
            print(
                f"{label} team / mine at {clients} clients: p50 "
                f"{percentile(team, 50) / percentile(mine, 50):.2f}x, p95 "
                f"{percentile(team, 95) / percentile(mine, 95):.2f}x (goal <= 1.2x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--assets", type=int, default=500, help="per user")
    parser.add_argument("--share", type=float, default=0.1, help="fraction of each user's assets")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=30, help="requests alone, per round")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--per-client", type=int, default=6, help="per round")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
