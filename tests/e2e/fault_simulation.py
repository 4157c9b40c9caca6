"""One seeded fault simulation over every component (issue 20), Jepsen-style.

A `serve` process (on SQLite or a PostgreSQL schema, with a private `redis-server` of its
own) syncs several users, each with their own Pieces OS emulator, with one AIWFE emulator.
A `random.Random(seed)` schedule interleaves what users do on both sides with faults:
Pieces errors, latency, dropped streams and restarts (the emulator stops listening), AIWFE
errors, duplicated and out-of-order webhooks, a restart of the private Redis, PostgreSQL
connections of the service killed (`pg_terminate_backend`, only the service's own backends,
found by their client ports), `kill -9` of the service, and clock skew: one side's clock
(a user's Pieces OS or AIWFE) runs up to two hours ahead or behind for the rest of the run,
so every timestamp it writes is off. A WebSocket client per user
follows the live events throughout, resuming with `last_event_id` after every drop.
Most user steps touch one side's asset that nothing else touches; a `both_sides_edit` step
edits one synced asset on both sides before any sync, so the merge and conflict path runs
under the same faults.

At the end (faults lifted, a few clean syncs) the invariants are checked: every
acknowledged write is current (or kept as a backup), both sides converge with us, no asset
is duplicated (webhook redeliveries included), an asset edited on both sides has exactly one
descendant on every side holding each acknowledged edit (or the service backed it up), and
no event id was skipped for a resuming client. The same seed replays the same schedule;
the report names the seed.

Reuses `sync_harness` (emulator processes, the service's connect use case, read-backs).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from pieces_integration.ports.pieces import AssetChanges, AssetDraft
from tests.e2e.sync_harness import (
    Service,
    aiwfe_contents,
    cli,
    emulator_processes,
    free_port,
    pieces_client,
    pieces_contents,
    stop,
)

SECRET = "fault-sim-secret-" + "s" * 32
WEBHOOK_SECRET = "whsec_fault_simulation"
ADMIN = "sim-admin"
WEBHOOK_MARK = "# webhook "
BOTH_MARK = "# both-sides "


@dataclass
class Report:
    seed: int
    backend: str
    steps: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    invariants: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # both_sides_edit steps (skipped, raced, refused) and their acknowledged edits: current
    # in a merge (edits_merged) or only in a backup (edits_backup)
    both_sides: Counter[str] = field(default_factory=Counter)

    def text(self) -> str:
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())) or "none"
        both = ", ".join(f"{k}={v}" for k, v in sorted(self.both_sides.items())) or "none"
        lines = [
            f"fault simulation seed={self.seed} backend={self.backend}: "
            f"{len(self.steps)} steps; faults: {faults}",
            f"one-sided writes: {self._one_sided()}; both-sides edits: {both}",
            f"invariants checked: {', '.join(self.invariants)}",
            f"violations: {len(self.violations)}",
            "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()),
            *[f"  - {v}" for v in self.violations],
            f"replay: FAULT_SIM_SEEDS={self.seed} (backend {self.backend})",
        ]
        return "\n".join(lines)

    def _one_sided(self) -> str:
        kinds: Counter[str] = Counter()
        for step in self.steps:
            side, _, rest = step.partition("_write(")
            if rest:
                refused = " refused" in rest  # before choosing (no kind) or on the write
                kind = next((k for k in ("edit", "delete") if f" {k}" in rest), None)
                kind = kind or ("create" if not refused else "write")
                kinds[f"{side}_{kind}" + ("_refused" if refused else "")] += 1
        return ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))


# --- processes -------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test alone (never the machine's shared one), persisted with
    an fsync per write so a restart loses nothing acknowledged."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always"]
        args += ["--save", "", "--protected-mode", "no"]
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


class ServeProcess:
    def __init__(self, service: Service, folder: Path) -> None:
        self.service = service
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = cli("serve", "--host", "127.0.0.1", "--port", str(self.port))
        with (self.folder / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                args, env=self.service.env(), cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.folder / "serve.log").read_text()[-2000:]
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError("serve did not become healthy")

    def kill9(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def database_ports(self) -> list[int]:
        """Local ports of the service's own TCP connections to PostgreSQL (from /proc)."""
        if self.process is None:
            return []
        pid = self.process.pid
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        ports = []
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/tcp") as table:
            for row in list(table)[1:]:
                cols = row.split()
                local, remote, inode = cols[1], cols[2], cols[9]
                if inode in inodes and int(remote.split(":")[1], 16) == 5432:
                    ports.append(int(local.split(":")[1], 16))
        return ports

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


# --- the WebSocket follower ------------------------------------------------------------------


class Follower:
    """One user's live events, resumed with `last_event_id` after every drop."""

    def __init__(self, ws_url: str, headers: dict[str, str]) -> None:
        self.ws_url = ws_url
        self.headers = headers
        self.ids: list[int] = []
        self.resets = 0
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with websockets.connect(
                    self.ws_url, additional_headers=self.headers, open_timeout=5
                ) as ws:
                    payload: dict[str, Any] = {}
                    if self.ids:
                        payload["last_event_id"] = self.ids[-1]
                    await ws.send(json.dumps({"type": "subscribe", "payload": payload}))
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["type"] == "reset":
                            self.resets += 1
                        elif isinstance(message.get("id"), int):
                            self.ids.append(message["id"])
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.2)

    def gaps(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in zip(self.ids, self.ids[1:], strict=False) if b != a + 1]


# --- expectations ----------------------------------------------------------------------------


@dataclass
class BothEdit:
    """One synced asset edited on both sides before a sync. Every descendant keeps the
    original's first line (`origin`); `lines` are the acknowledged edits' stamp lines."""

    user: str
    origin: str
    lines: list[str] = field(default_factory=list)

    def descends(self, content: str) -> bool:
        return self.origin in content.splitlines()


@dataclass
class Expected:
    """Per user, the multiset of contents every side must end with (tracked writes).

    `used` holds contents a step replaced or deleted: never picked again, so a one-sided
    step never touches what the other side changed (only `both_sides_edit` does, on
    purpose). A content just written stays free for a later edit or delete."""

    contents: dict[str, Counter[str]]
    used: set[str] = field(default_factory=set)
    webhook_stamps: dict[str, set[str]] = field(default_factory=dict)
    both: list[BothEdit] = field(default_factory=list)

    def add(self, user: str, new: str) -> None:
        self.contents[user][new] += 1

    def replace(self, user: str, old: str, new: str | None) -> None:
        self.contents[user][old] -= 1
        self.used.add(old)
        if new is not None:
            self.add(user, new)


def _tracked(text: str) -> bool:
    """A content other steps may pick and the multiset comparison counts."""
    return WEBHOOK_MARK not in text and BOTH_MARK not in text


class Simulation:
    def __init__(
        self,
        tmp: Path,
        seed: int,
        *,
        users: int = 3,
        steps: int = 24,
        database_url: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.users = [f"sim{seed % 10_000}-{i}" for i in range(users)]
        self.step_count = steps
        self.database_url, self.schema = database_url, schema
        self.report = Report(seed, "postgresql" if database_url else "sqlite")
        codec = JwtCodec(issuer="pieces-integration", audience="pieces-integration", secret=SECRET)
        self.admin = {"Authorization": "Bearer " + codec.issue(ADMIN, Role.ADMIN, ttl_seconds=3600)}
        self.user_headers = {
            u: {"Authorization": "Bearer " + codec.issue(u, Role.USER, ttl_seconds=3600)}
            for u in self.users
        }
        self.expected = Expected({u: Counter() for u in self.users})
        self.webhook_sent: list[dict[str, Any]] = []
        # Skewed clocks stay skewed (lifting the other faults does not fix a clock).
        self.pieces_skew: dict[str, float] = {}
        self.aiwfe_skew = 0.0

    # -- driving ------------------------------------------------------------------------

    def run(self) -> Report:
        """The whole simulation; the report lists violations rather than raising."""
        began = time.monotonic()
        try:
            return self._run()
        finally:
            self.report.timings["total"] = time.monotonic() - began

    def _run(self) -> Report:
        redis = PrivateRedis(self.tmp)
        redis.start()
        try:
            with emulator_processes(
                self.tmp, assets=0, seed=self.report.seed % 1000, pieces_count=len(self.users)
            ) as (pieces_urls, aiwfe_url):
                self.pieces = dict(zip(self.users, pieces_urls, strict=True))
                self.aiwfe = aiwfe_url
                service = Service(
                    data_dir=self.tmp / "data",
                    aiwfe_url=aiwfe_url,
                    database_url=self.database_url,
                    schema=self.schema,
                    extra={
                        "REDIS_URL": redis.url,
                        "REDIS_KEY_PREFIX": f"sim{self.report.seed}:",
                        "JWT_SECRET": SECRET,
                        "AIWFE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                        "RATE_LIMIT_PER_MINUTE": "0",
                    },
                )
                service.migrate()
                for user in self.users:
                    service.connect(user, self.pieces[user], aiwfe_url)
                serve = ServeProcess(service, self.tmp)
                serve.start()
                self.serve, self.redis = serve, redis
                try:
                    asyncio.run(self._scenario())
                finally:
                    serve.stop()
        finally:
            redis.stop()
        return self.report

    async def _scenario(self) -> None:
        ws_base = self.serve.url.replace("http", "ws") + "/ws"
        followers = {u: Follower(ws_base, self.user_headers[u]) for u in self.users}
        for follower in followers.values():
            follower.start()
        async with httpx.AsyncClient(timeout=30) as http:
            self.http = http
            await http.put(
                f"{self.aiwfe}/_emulator/webhooks/target",
                json={
                    "url": f"{self.serve.url}/api/v1/integrations/aiwfe/webhook",
                    "secrets": [WEBHOOK_SECRET],
                },
            )
            started = time.monotonic()
            for name, action in self._schedule():
                user = self.rng.choice(self.users)
                self.report.steps.append(f"{name}({user})")
                await action(user)
            self.report.timings["faults"] = time.monotonic() - started
            started = time.monotonic()
            await self._settle()
            self.report.timings["settle"] = time.monotonic() - started
            started = time.monotonic()
            await self._check(followers)
            self.report.timings["check"] = time.monotonic() - started

    def _schedule(self) -> list[tuple[str, Any]]:
        """`steps` random user actions and syncs, with every fault kind at least once, in a
        seeded random order (so a short run still exercises each failure)."""
        work = [
            (self._pieces_write, 4),
            (self._aiwfe_write, 4),
            (self._both_sides_edit, 2),
            (self._sync, 4),
            (self._lift, 1),
        ]
        actions, weights = zip(*work, strict=True)
        steps = [
            (f.__name__.strip("_"), f)
            for f in self.rng.choices(actions, weights, k=self.step_count)
        ]
        if not any(name == "both_sides_edit" for name, _ in steps):
            # At least one, in the second half (assets exist by then), replacing a step.
            at = self.rng.randrange(len(steps) // 2, len(steps))
            steps[at] = ("both_sides_edit", self._both_sides_edit)
        faults: list[tuple[str, Any]] = [
            (f"pieces_{kind}", functools.partial(self._pieces_fault, kind=kind))
            for kind in ("errors", "latency", "drop_streams", "restart")
        ]
        faults += [
            ("aiwfe_errors", self._aiwfe_fault),
            ("webhook_duplicate", functools.partial(self._webhook, mode="duplicate")),
            ("webhook_out_of_order", functools.partial(self._webhook, mode="out_of_order")),
            ("redis_restart", self._redis_restart),
            ("service_kill9", self._kill_service),
            ("clock_skew", self._clock_skew),
        ]
        if self.database_url:
            faults.append(("pg_terminate_backend", self._pg_terminate))
        # A webhook delivered once first, so an out-of-order one has an older one to replay.
        steps.insert(0, ("webhook_once", functools.partial(self._webhook, mode="once")))
        for fault in faults:
            steps.insert(self.rng.randint(1, len(steps)), fault)
        return steps

    # -- what users do --------------------------------------------------------------------

    def _fresh(self, where: str) -> str:
        return (
            f"# {where} {uuid.UUID(int=self.rng.getrandbits(128))}\nvalue = {self.rng.random()}\n"
        )

    async def _pieces_write(self, user: str) -> None:
        client = pieces_client(self.pieces[user], httpx.AsyncClient())
        try:
            await client.connect()
            now = await pieces_contents(self.pieces[user], user)
            free = [i for i in sorted(now) if now[i] not in self.expected.used and _tracked(now[i])]
            roll = self.rng.random()
            if free and roll < 0.5:
                asset_id = self.rng.choice(free)
                new = self._fresh("pieces edit") + now[asset_id]
                self.report.steps[-1] += " edit"
                await client.update_asset(user, asset_id, AssetChanges(content=new))
                self.expected.replace(user, now[asset_id], new)
            elif free and roll < 0.65:
                asset_id = self.rng.choice(free)
                self.report.steps[-1] += " delete"
                await client.delete_asset(asset_id)
                self.expected.replace(user, now[asset_id], None)
            else:
                new = self._fresh("pieces new")
                await client.create_asset(user, AssetDraft(content=new, language="py", name="n"))
                self.expected.add(user, new)
        except Exception as exc:  # a fault refused the write: not acknowledged, not expected
            self.report.steps[-1] += f" refused: {type(exc).__name__}"
        finally:
            await client.aclose()

    async def _aiwfe_write(self, user: str) -> None:
        base = f"{self.aiwfe}/v1/users/{user}/assets"
        try:
            now = await aiwfe_contents(self.aiwfe, user)
            free = [i for i in sorted(now) if now[i] not in self.expected.used and _tracked(now[i])]
            roll = self.rng.random()
            if free and roll < 0.5:
                asset_id = self.rng.choice(free)
                current = (await self.http.get(f"{base}/{asset_id}")).json()
                new = self._fresh("aiwfe edit") + now[asset_id]
                body = {k: current[k] for k in ("name", "description", "language", "tags")}
                self.report.steps[-1] += " edit"
                response = await self.http.put(f"{base}/{asset_id}", json={**body, "content": new})
                if response.status_code == 200:
                    self.expected.replace(user, now[asset_id], new)
            elif free and roll < 0.65:
                asset_id = self.rng.choice(free)
                self.report.steps[-1] += " delete"
                if (await self.http.delete(f"{base}/{asset_id}")).status_code == 204:
                    self.expected.replace(user, now[asset_id], None)
            else:
                new = self._fresh("aiwfe new")
                body = {"name": "a", "content": new, "language": "python", "tags": []}
                aid = f"aiwfe-{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
                if (await self.http.put(f"{base}/{aid}", json=body)).status_code == 201:
                    self.expected.add(user, new)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.report.steps[-1] += f" refused: {type(exc).__name__}"

    async def _both_sides_edit(self, user: str) -> None:
        """One synced asset edited in Pieces (a line prepended) and in AIWFE (a line
        appended) before any sync: a three-way merge keeps both, a conflict backs one up.

        Neither side has a conditional update and the service syncs in the background, so
        a sync writing a side between our read and our write of it would be overwritten by
        a stale copy (the user's doing, not the service's). Pieces goes first: nothing
        writes that asset there meanwhile, AIWFE still holding the original; AIWFE's version
        then shows whether a sync wrote it between our read and our write. Such a step is
        "raced" and the edits it overwrote are not expected (the no-duplicate check stays).
        """
        self.report.both_sides["steps"] += 1
        picked = await self._synced_original(user)
        if picked is None:
            self.report.steps[-1] += " skipped: no synced asset"
            self.report.both_sides["skipped"] += 1
            return
        pieces_id, aiwfe_id, original = picked
        edit = BothEdit(user, original.splitlines()[0])
        self.expected.both.append(edit)
        self.expected.replace(user, original, None)
        pieces_line, aiwfe_line = self._both_line("pieces"), self._both_line("aiwfe")
        pieces = await self._pieces_set(user, pieces_id, original, pieces_line + original)
        aiwfe = await self._aiwfe_set(user, aiwfe_id, original, original + aiwfe_line)
        self.report.steps[-1] += f" pieces {pieces}, aiwfe {aiwfe}"
        if pieces == "ok" and aiwfe != "overwrote":  # an overwrite undid the Pieces edit
            edit.lines.append(pieces_line.rstrip("\n"))
        if aiwfe == "ok":
            edit.lines.append(aiwfe_line.rstrip("\n"))
        for outcome in {pieces, aiwfe} - {"ok"}:
            kind = "refused" if outcome == "refused" else "raced"
            self.report.both_sides[kind] += 1
        self.report.both_sides["edits_acked"] += len(edit.lines)

    def _both_line(self, where: str) -> str:
        return f"{BOTH_MARK}{where} {uuid.UUID(int=self.rng.getrandbits(128)).hex}\n"

    async def _synced_original(self, user: str) -> tuple[str, str, str] | None:
        """(Pieces id, AIWFE id, content) of an asset identical on both sides that no step
        touched; if there is none, a new one in Pieces, one sync, and one more look."""
        for attempt in range(2):
            try:
                pieces = await pieces_contents(self.pieces[user], user)
                aiwfe = await aiwfe_contents(self.aiwfe, user)
            except Exception:  # a fault: no look this time
                return None
            on_pieces, on_aiwfe = Counter(pieces.values()), Counter(aiwfe.values())
            candidates = sorted(
                c
                for c, n in on_pieces.items()
                if n == 1
                and on_aiwfe[c] == 1
                and self.expected.contents[user][c] == 1  # written once, never replaced
                and _tracked(c)
            )
            if candidates:
                original = self.rng.choice(candidates)
                pieces_id = next(i for i, c in pieces.items() if c == original)
                aiwfe_id = next(i for i, c in aiwfe.items() if c == original)
                return pieces_id, aiwfe_id, original
            if attempt == 0:
                await self._seed_pieces_asset(user)
                await self._sync(user)
        return None

    async def _seed_pieces_asset(self, user: str) -> None:
        new = self._fresh("pieces new")
        client = pieces_client(self.pieces[user], httpx.AsyncClient())
        try:
            await client.connect()
            await client.create_asset(user, AssetDraft(content=new, language="py", name="n"))
            self.expected.add(user, new)
        except Exception:  # a fault refused it: not acknowledged, not expected
            self.report.steps[-1] += " seed refused"
        finally:
            await client.aclose()

    async def _pieces_set(self, user: str, asset_id: str, old: str, new: str) -> str:
        """ok, refused (a fault), stale (no longer OLD: not written) or overwrote (something
        else wrote it right after us)."""
        client = pieces_client(self.pieces[user], httpx.AsyncClient())
        try:
            await client.connect()
            if (await client.get_asset(user, asset_id)).content != old:
                return "stale"
            await client.update_asset(user, asset_id, AssetChanges(content=new))
            held = (await client.get_asset(user, asset_id)).content
        except Exception:  # a fault refused it: not acknowledged (maybe applied)
            return "refused"
        finally:
            await client.aclose()
        return "ok" if held == new else "overwrote"

    async def _aiwfe_set(self, user: str, asset_id: str, old: str, new: str) -> str:
        """As `_pieces_set`; overwrote when the version moved by more than our write."""
        url = f"{self.aiwfe}/v1/users/{user}/assets/{asset_id}"
        try:
            response = await self.http.get(url)
            if response.status_code != 200:
                return "refused"
            current = response.json()
            if current["content"] != old:
                return "stale"
            body = {k: current[k] for k in ("name", "description", "language", "tags")}
            response = await self.http.put(url, json={**body, "content": new})
            if response.status_code != 200:
                return "refused"
            written = response.json()
        except (httpx.HTTPError, ValueError, KeyError):
            return "refused"
        moved_once = written.get("version") == current["version"] + 1
        return "ok" if moved_once and written.get("content") == new else "overwrote"

    async def _sync(self, user: str) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the service may be restarting
            response = await self.http.post(
                f"{self.serve.url}/api/v1/context/{user}/sync", headers=self.admin
            )
            self.report.steps[-1] += f" -> {response.status_code}"
            if response.status_code >= 500 and response.status_code != 503:
                self.report.violations.append(f"sync answered {response.status_code}")

    async def _webhook(self, user: str, *, mode: str) -> None:
        """An agent solution with one code block (it becomes a Pieces asset), delivered
        once, twice (a redelivery) or after a newer one (out of order)."""
        stamp = f"{WEBHOOK_MARK}{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        event_id = f"evt_sim_{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        body = {
            "type": "agent_solution_generated",
            "user_id": user,
            "id": event_id,
            "data": {"solution_id": event_id, "content": f"```python\n{stamp}\nx = 1\n```\n"},
        }
        if mode != "once":
            self.report.faults[f"webhook_{mode}"] += 1
        deliveries = [body, body] if mode == "duplicate" else [body]
        if mode == "out_of_order" and self.webhook_sent:
            deliveries.append(self.rng.choice(self.webhook_sent))  # an older one, late
        for delivery in deliveries:
            with contextlib.suppress(httpx.HTTPError):
                response = await self.http.post(
                    f"{self.aiwfe}/_emulator/webhooks/send", json=delivery
                )
                status = (
                    response.json().get("delivery", {}).get("status")
                    if response.is_success
                    else None
                )
                if isinstance(status, int) and status >= 500 and status != 503:
                    self.report.violations.append(f"webhook answered {status}")
                if status in (200, 202, 409):
                    self.expected.webhook_stamps.setdefault(user, set()).add(stamp)
        self.webhook_sent.append(body)

    # -- faults -----------------------------------------------------------------------------

    async def _pieces_fault(self, user: str, *, kind: str) -> None:
        url = self.pieces[user]
        self.report.faults[f"pieces_{kind}"] += 1
        with contextlib.suppress(httpx.HTTPError):
            if kind == "errors":
                await self.http.post(f"{url}/_emulator/faults", json={"fail_next": 4})
            elif kind == "latency":
                await self.http.post(f"{url}/_emulator/faults", json={"latency_ms": 150})
            elif kind == "drop_streams":
                await self.http.post(f"{url}/_emulator/streams/drop")
            else:
                await self.http.post(f"{url}/_emulator/refuse", json={"seconds": 1.5})

    async def _aiwfe_fault(self, user: str) -> None:
        self.report.faults["aiwfe_errors"] += 1
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(f"{self.aiwfe}/_emulator/faults", json={"fail_next": 4})

    async def _clock_skew(self, user: str) -> None:
        """One side's clock jumps up to two hours ahead or behind, and stays there."""
        self.report.faults["clock_skew"] += 1
        seconds = self.rng.choice((-1, 1)) * self.rng.uniform(60, 7200)
        if self.rng.random() < 0.5:
            self.pieces_skew[self.pieces[user]] = seconds
            self.report.steps[-1] += f" pieces {seconds:+.0f}s"
        else:
            self.aiwfe_skew = seconds
            self.report.steps[-1] += f" aiwfe {seconds:+.0f}s"
        await self._apply_skews()

    async def _apply_skews(self) -> None:
        for url, seconds in self.pieces_skew.items():
            with contextlib.suppress(httpx.HTTPError):
                await self.http.post(
                    f"{url}/_emulator/faults", json={"clock_skew_seconds": seconds}
                )
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(
                f"{self.aiwfe}/_emulator/faults", json={"clock_skew": self.aiwfe_skew}
            )

    async def _lift(self, user: str) -> None:
        for url in self.pieces.values():
            with contextlib.suppress(httpx.HTTPError):
                await self.http.post(f"{url}/_emulator/faults/clear")
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(f"{self.aiwfe}/_emulator/faults", json={"fail_next": 0})
        await self._apply_skews()

    async def _redis_restart(self, user: str) -> None:
        self.report.faults["redis_restart"] += 1
        await asyncio.to_thread(self.redis.stop)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(self.redis.start)

    async def _kill_service(self, user: str) -> None:
        self.report.faults["service_kill9"] += 1
        await asyncio.to_thread(self.serve.kill9)
        await asyncio.to_thread(self.serve.start)

    async def _pg_terminate(self, user: str) -> None:
        import asyncpg

        from tests.conftest import POSTGRES_URL

        ports = self.serve.database_ports()
        if not ports:
            return
        self.report.faults["pg_terminate_backend"] += 1
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE client_addr = '127.0.0.1' AND client_port = ANY($1::int[])",
                ports,
            )
        finally:
            await conn.close()

    # -- the end ------------------------------------------------------------------------

    async def _settle(self) -> None:
        """Faults lifted, the service up; sync every user until clean, outbox delivered."""
        await self._lift(self.users[0])
        if self.serve.process is None or self.serve.process.poll() is not None:
            await asyncio.to_thread(self.serve.start)
        deadline = time.monotonic() + 90
        for user in self.users:
            clean = 0
            while clean < 2 and time.monotonic() < deadline:
                try:
                    response = await self.http.post(
                        f"{self.serve.url}/api/v1/context/{user}/sync", headers=self.admin
                    )
                    run = response.json() if response.status_code == 200 else {}
                except (httpx.HTTPError, ValueError):
                    run = {}
                ok = run.get("status") == "completed" and not run.get("errors")
                clean = clean + 1 if ok else 0
                if not ok:
                    await asyncio.sleep(0.5)
            if clean < 2:
                self.report.violations.append(f"{user}: no clean sync after the faults")

    async def _check(self, followers: dict[str, Follower]) -> None:
        report = self.report
        report.invariants = [
            "acknowledged writes current",
            "sides converge",
            "no duplicate assets",
            "webhook effects exactly once",
            "both-sides edits: one descendant per side, acknowledged edits current or backed up",
            "no event lost for a resuming WebSocket client",
        ]
        for user in self.users:
            deadline = time.monotonic() + 30
            while True:  # webhook assets reach Pieces through the outbox, a little later
                sides = {
                    "pieces": list((await pieces_contents(self.pieces[user], user)).values()),
                    "aiwfe": list((await aiwfe_contents(self.aiwfe, user)).values()),
                    "ours": [a.content for a in await self.serve.service.local_assets(user)],
                }
                backups = [
                    str(b.snapshot.get("content", ""))
                    for b in await self.serve.service.backups(user)
                ]
                problems = self._compare(user, sides) + self._compare_both(user, sides, backups)
                if not problems or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1.0)
                with contextlib.suppress(httpx.HTTPError):
                    await self.http.post(
                        f"{self.serve.url}/api/v1/context/{user}/sync", headers=self.admin
                    )
            report.violations.extend(problems)
            self._count_both_outcomes(user, sides["ours"], backups)
        await asyncio.sleep(1.0)  # the last events reach the followers
        for follower in followers.values():
            await follower.stop()
        for user in self.users:
            follower = followers[user]
            if follower.gaps():
                report.violations.append(f"{user}: event ids skipped {follower.gaps()[:3]}")
            if follower.resets:
                report.violations.append(f"{user}: {follower.resets} resets (history lost)")
            if len(follower.ids) != len(set(follower.ids)):
                report.violations.append(f"{user}: an event delivered twice")

    def _compare(self, user: str, sides: dict[str, list[str]]) -> list[str]:
        problems = []
        want = +self.expected.contents[user]
        both = [e for e in self.expected.both if e.user == user]
        for side, contents in sides.items():
            # A both-sides asset's descendant may be its untouched original (both writes
            # refused): `_compare_both` checks those.
            got = Counter(
                c for c in contents if _tracked(c) and not any(e.descends(c) for e in both)
            )
            missing, extra = want - got, got - want
            if missing:
                problems.append(f"{user}/{side}: {sum(missing.values())} acknowledged writes lost")
            if extra:
                problems.append(f"{user}/{side}: {sum(extra.values())} duplicated or unexpected")
            for stamp in self.expected.webhook_stamps.get(user, set()):
                count = sum(stamp in c for c in contents)
                if count != 1:
                    problems.append(f"{user}/{side}: webhook asset {stamp[-8:]} x{count}")
        return problems

    def _compare_both(
        self, user: str, sides: dict[str, list[str]], backups: list[str]
    ) -> list[str]:
        """Each both-sides asset: one descendant on every side, the same everywhere, and
        each acknowledged edit's line in it (merged) or in a backup (a conflict)."""
        problems = []
        for edit in (e for e in self.expected.both if e.user == user):
            name = f"{user}: both-sides asset {edit.origin[-8:]}"
            found = {side: [c for c in got if edit.descends(c)] for side, got in sides.items()}
            for side, descendants in found.items():
                if len(descendants) != 1:
                    problems.append(f"{name} x{len(descendants)} on {side}")
            currents = {d[0] for d in found.values() if len(d) == 1}
            if len(currents) > 1:
                problems.append(f"{name}: the sides hold different versions")
            kept = [line for c in [*currents, *backups] for line in c.splitlines()]
            for line in edit.lines:
                if line not in kept:
                    problems.append(f"{name}: acknowledged edit {line[-8:]} lost")
        return problems

    def _count_both_outcomes(self, user: str, ours: list[str], backups: list[str]) -> None:
        """What became of each acknowledged both-sides edit, for the report."""
        for edit in (e for e in self.expected.both if e.user == user):
            current = [line for c in ours if edit.descends(c) for line in c.splitlines()]
            kept = [line for c in backups for line in c.splitlines()]
            for line in edit.lines:
                if line in current:
                    self.report.both_sides["edits_merged"] += 1
                elif line in kept:
                    self.report.both_sides["edits_backup"] += 1
