"""Client load for the local cluster: API users and WebSocket subscribers that resume.

Every request is timed per endpoint; a failed client request is a transport error or a 5xx
that reached the client (what HAProxy retried and then answered is not a failure). A
WebSocket client follows `asset_created` for its user; on any close it reconnects through
the load balancer after the server's `retry_after_ms` and resubscribes from the last event
id it saw, so a missed event shows up as an acknowledged asset it never heard of (or as a
`reset`, the server's word that the history no longer reaches back).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from tests.deploy.cluster import bearer


@dataclass
class Traffic:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    acked: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unacked_writes: int = 0  # POSTs with no answer (a killed replica): never retried
    created_at: dict[str, float] = field(default_factory=dict)  # asset id -> ack time
    event_delays: list[float] = field(default_factory=list)  # ack -> WebSocket event

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


@dataclass
class Subscriber:
    user: str
    seen: dict[int, str] = field(default_factory=dict)  # event id -> asset id
    duplicates: int = 0
    resets: int = 0
    connects: int = 0
    closes: Counter[int | None] = field(default_factory=Counter)
    connect_failures: int = 0
    last_id: int | None = None
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def asset_ids(self) -> set[str]:
        return set(self.seen.values())


async def _timed(traffic: Traffic, name: str, request: Any, write: bool = False) -> Any:
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as exc:
        traffic.failures.append(f"{name}: {type(exc).__name__}")
        if write:
            traffic.unacked_writes += 1
        return None
    traffic.latencies[name].append(time.perf_counter() - started)
    if response.status_code >= 500:
        traffic.failures.append(f"{name}: {response.status_code}")
        if write:
            traffic.unacked_writes += 1
    return response


async def api_user(
    base: str, user: str, traffic: Traffic, stop: asyncio.Event, pace: float = 0.05
) -> None:
    headers = bearer(user)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        for n in range(1_000_000):
            if stop.is_set():
                return
            body = {
                "name": f"{user} note {n}",
                "content": f"print('{user} {n} {uuid.uuid4().hex}')\n",
                "language": "python",
            }
            created = await _timed(
                traffic, "POST /api/v1/assets", http.post("/api/v1/assets", json=body), True
            )
            if created is not None and created.status_code == 201:
                asset_id = created.json()["id"]
                traffic.acked[user].append(asset_id)
                traffic.created_at[asset_id] = time.perf_counter()
            await _timed(traffic, "GET /api/v1/assets", http.get("/api/v1/assets?limit=20"))
            if traffic.acked[user]:
                last = traffic.acked[user][-1]
                await _timed(traffic, "GET /api/v1/assets/{id}", http.get(f"/api/v1/assets/{last}"))
            await _timed(traffic, "GET /health", http.get("/health"))
            await asyncio.sleep(pace)


async def subscriber(
    base: str, sub: Subscriber, stop: asyncio.Event, traffic: Traffic | None = None
) -> None:
    url = base.replace("http", "ws", 1) + "/ws"
    headers = bearer(sub.user)
    for _ in range(100_000):
        if stop.is_set():
            return
        delay = 0.2
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
                sub.connects += 1
                payload: dict[str, Any] = {"events": ["asset_created"]}
                if sub.last_id is not None:
                    payload["last_event_id"] = sub.last_id
                await ws.send(json.dumps({"type": "subscribe", "payload": payload}))
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    delay = _handle(sub, json.loads(raw), delay, traffic)
                return
        except websockets.ConnectionClosed as exc:
            sub.closes[exc.rcvd.code if exc.rcvd else None] += 1
        except (OSError, TimeoutError, websockets.InvalidHandshake):
            sub.connect_failures += 1
        await asyncio.sleep(delay)


def _handle(
    sub: Subscriber, message: dict[str, Any], delay: float, traffic: Traffic | None
) -> float:
    kind = message.get("type")
    payload = message.get("payload") or {}
    if kind == "subscribed":
        if payload.get("reset"):
            sub.resets += 1
        if sub.last_id is None:
            sub.last_id = payload.get("last_event_id")
        sub.subscribed.set()
    elif kind == "reset":
        sub.resets += 1
    elif kind == "reconnect":
        return float(payload.get("retry_after_ms", 200)) / 1000
    elif kind == "asset_created" and "id" in message:
        event_id = int(message["id"])
        if event_id in sub.seen:
            sub.duplicates += 1
        asset_id = payload["asset"]["id"]
        sub.seen[event_id] = asset_id
        if traffic is not None and asset_id in traffic.created_at:
            traffic.event_delays.append(time.perf_counter() - traffic.created_at[asset_id])
        sub.last_id = max(sub.last_id or 0, event_id)
    return delay


async def caught_up(subs: list[Subscriber], traffic: Traffic, limit: float) -> None:
    """Wait (bounded) until every subscriber has heard of every acknowledged asset."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(set(traffic.acked[s.user]) <= s.asset_ids for s in subs):
            return
        await asyncio.sleep(0.1)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if not ordered:
        return (0.0, 0.0, 0.0)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return at(0.50), at(0.95), at(0.99)
