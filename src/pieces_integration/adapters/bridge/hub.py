"""`BridgeHub`: the bridges of this replica and the way to every other replica's.

Local: the sessions connected here, by bridge id. Registry: each connected bridge is noted
in the cache (Redis with several replicas) under `bridge:link:<id>` with a short expiry,
refreshed every heartbeat, naming the replica that holds it. A call for a bridge held
elsewhere goes through the relay (event bus). Revocation is not the hub's: a connected
bridge watches its credential with service_layer/revocation.py (issue 20). On shutdown
every agent is told to reconnect (to another replica) before this one stops. A call is only
ever carried by a bridge of the same user: alice's bridge never answers for bob.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import structlog

from pieces_integration.adapters.bridge import relay
from pieces_integration.adapters.bridge.session import CLOSE_GOING_AWAY, BridgeSession, gone
from pieces_integration.domain.errors import Forbidden, UpstreamError
from pieces_integration.ports.bridge import BridgeLink
from pieces_integration.ports.infrastructure import Cache, EventBus
from pieces_integration.ports.pieces import TransportResponse

log = structlog.get_logger(__name__)


def _link_key(bridge_id: str) -> str:
    return f"bridge:link:{bridge_id}"


class BridgeHub:
    def __init__(
        self, *, bus: EventBus, cache: Cache, heartbeat: float, replica: str | None = None
    ) -> None:
        self.replica = replica or uuid.uuid4().hex[:12]
        self.heartbeat = heartbeat
        self._bus = bus
        self._cache = cache
        self._sessions: dict[str, BridgeSession] = {}
        self._pending: dict[str, relay.PendingRelay] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._relay_ready = asyncio.Event()

    @property
    def link_ttl(self) -> float:
        return max(3 * self.heartbeat, 5.0)

    def local(self, bridge_id: str) -> BridgeSession | None:
        session = self._sessions.get(bridge_id)
        return session if session is not None and not session.closed else None

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    # --- sessions of this replica ------------------------------------------------------------

    async def attach(self, session: BridgeSession) -> None:
        previous = self._sessions.get(session.bridge_id)
        self._sessions[session.bridge_id] = session
        if previous is not None and not previous.closed:  # the same agent, reconnected
            await previous.close(1000, "replaced by a newer connection")
        await self._note(session)

    async def detach(self, session: BridgeSession) -> None:
        if self._sessions.get(session.bridge_id) is session:
            del self._sessions[session.bridge_id]
            link = await self.link(session.bridge_id)
            if link is not None and link.replica == self.replica:
                await self._cache.delete(_link_key(session.bridge_id))

    async def _note(self, session: BridgeSession) -> None:
        link = {
            "bridge_id": session.bridge_id,
            "user_id": session.user_id,
            "replica": self.replica,
            "agent_version": session.agent_version,
            "connected_at": session.connected_at.isoformat(),
            "last_heartbeat": session.last_heartbeat.isoformat()
            if session.last_heartbeat
            else None,
            "rtt_ms": session.rtt_ms,
        }
        await self._cache.set(
            _link_key(session.bridge_id), json.dumps(link).encode(), ttl=self.link_ttl
        )

    async def link(self, bridge_id: str) -> BridgeLink | None:
        held = self._sessions.get(bridge_id)
        if held is not None and held.closed:
            return None  # gone a moment ago; the registry entry goes with the detach
        raw = await self._cache.get(_link_key(bridge_id))
        if raw is None:
            return None
        data = json.loads(raw)
        beat = data.get("last_heartbeat")
        return BridgeLink(
            bridge_id=data["bridge_id"],
            user_id=data["user_id"],
            replica=data["replica"],
            agent_version=data["agent_version"],
            connected_at=datetime.fromisoformat(data["connected_at"]),
            last_heartbeat=datetime.fromisoformat(beat) if beat else None,
            rtt_ms=data.get("rtt_ms"),
        )

    # --- calls ---------------------------------------------------------------------------------

    async def request(
        self,
        user_id: str,
        bridge_id: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        call_timeout: float,
    ) -> TransportResponse:
        session = self.local(bridge_id)
        if session is not None:
            _same_user(session.user_id, user_id)
            return await session.request(
                method,
                path,
                params=params,
                json_body=json_body,
                headers=headers,
                call_timeout=call_timeout,
            )
        link = await self.link(bridge_id)
        if link is None or link.replica == self.replica:
            raise gone("no replica holds it")
        _same_user(link.user_id, user_id)
        rid = uuid.uuid4().hex
        pending = relay.PendingRelay(asyncio.get_running_loop().create_future())
        self._pending[rid] = pending
        message = {
            "op": "req",
            "rid": rid,
            "origin": self.replica,
            "user_id": user_id,
            "bridge_id": bridge_id,
            "method": method,
            "path": path,
            "params": dict(params or {}),
            "json": json_body,
            "headers": dict(headers or {}),
            "timeout": call_timeout,
        }
        try:
            await self._bus.publish(relay.channel_of(link.replica), json.dumps(message).encode())
            async with asyncio.timeout(call_timeout + 5.0):
                return await pending.done
        except TimeoutError:
            raise gone(f"replica {link.replica} did not answer") from None
        finally:
            self._pending.pop(rid, None)

    @asynccontextmanager
    async def stream(self, user_id: str, bridge_id: str, path: str) -> AsyncIterator[Any]:
        # Streams run where the bridge is: its replica holds the user's live connection.
        session = self.local(bridge_id)
        if session is None:
            raise gone("streams are served by the replica holding the bridge")
        _same_user(session.user_id, user_id)
        async with session.stream(path) as frames:
            yield frames

    # --- shutdown ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[BridgeHub]:
        # The relay subscribes in the background: a replica whose Redis is down still starts
        # (readiness names Redis) and picks the relay up when Redis is back.
        loops = [
            asyncio.create_task(self._listen(), name="bridge-relay"),
            asyncio.create_task(self._refresh(), name="bridge-registry"),
            asyncio.create_task(self._beat_all(), name="bridge-heartbeats"),
        ]
        # Normally subscribed at once: calls relayed from other replicas reach us from the start.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._relay_ready.wait()
        self._running = True
        try:
            yield self
        finally:
            self._running = False
            await self.shutdown()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def shutdown(self) -> None:
        """Tell every agent here to reconnect elsewhere, then close them."""
        sessions = list(self._sessions.values())
        await asyncio.gather(
            *(s.close(CLOSE_GOING_AWAY, "replica shutting down", reconnect=True) for s in sessions),
            return_exceptions=True,
        )
        for session in sessions:
            with contextlib.suppress(Exception):
                await self._cache.delete(_link_key(session.bridge_id))
        for task in list(self._tasks):
            task.cancel()

    async def _beat_all(self) -> None:
        """One ticker for every session here (cheaper than a timer per idle bridge)."""
        while True:
            await asyncio.sleep(self.heartbeat / 10)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if session.hub_beats:
                    await session.tick(now)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            for session in list(self._sessions.values()):
                if not session.closed:
                    with contextlib.suppress(Exception):
                        await self._note(session)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._bus.subscribe(relay.channel_of(self.replica)) as subscription:
                    self._relay_ready.set()
                    while True:
                        raw = await subscription.get(wait=1.0)
                        if raw is not None:
                            self._on_relayed(raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus dropped us (Redis restart): resubscribe
                log.warning("bridge relay lost; resubscribing", error=repr(exc))
                await asyncio.sleep(0.5)

    def _on_relayed(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if message.get("op") == "req":
            task = asyncio.create_task(self._serve_relayed(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            pending = self._pending.get(str(message.get("rid")))
            if pending is not None:
                pending.feed(message)

    async def _serve_relayed(self, message: dict[str, Any]) -> None:
        rid, origin = str(message["rid"]), str(message["origin"])
        channel = relay.channel_of(origin)
        try:
            session = self.local(str(message["bridge_id"]))
            if session is None:
                raise gone("it moved away from this replica")
            _same_user(session.user_id, str(message["user_id"]))
            response = await session.request(
                str(message["method"]),
                str(message["path"]),
                params=message.get("params") or {},
                json_body=message.get("json"),
                headers=message.get("headers") or {},
                call_timeout=float(message["timeout"]),
            )
        except (UpstreamError, Forbidden) as exc:
            await self._bus.publish(channel, json.dumps(relay.error_message(rid, exc)).encode())
            return
        await relay.publish_all(self._bus, channel, relay.response_messages(rid, response))


def _same_user(owner: str, user_id: str) -> None:
    if owner != user_id:
        raise Forbidden("this bridge belongs to another user")
