"""The bridge use cases (issue 13, DEVIATIONS 5): pair, list, revoke, and serve a connection.

Pairing: the user asks for a one-time code (valid ten minutes); the agent on their machine
exchanges it for a long-lived credential bound to that user and that device. Only digests
are stored. A connected agent becomes the user's Pieces connection (`bridge://<id>`): the
usual connect runs through it, so sync, suggestions and status work unchanged. Revoking cuts
a connected bridge at once, on whichever replica holds it, through the one revocation
mechanism of live sessions (service_layer/revocation.py, issue 20): a connected bridge
watches its credential and its user. Pairing, connect and revoke are written to the audit
log (spec 8.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from pieces_integration.domain.bridge import (
    CODE_ALPHABET,
    CODE_LENGTH,
    PAIRING_TTL,
    Bridge,
    bridge_id_of,
    bridge_url,
    digest,
    format_code,
    format_credential,
    matches,
    normalise_code,
    parse_credential,
)
from pieces_integration.domain.errors import InvalidInput, NotFound, Unauthorized
from pieces_integration.domain.model import AuditEntry, utcnow
from pieces_integration.ports.bridge import BridgeLink, BridgeSessions, BridgeStore, LiveBridge
from pieces_integration.service_layer.pieces.integration import PiecesIntegration
from pieces_integration.service_layer.revocation import (
    Revocations,
    credential_subject,
    user_subject,
)

log = structlog.get_logger(__name__)
Audit = Callable[[AuditEntry], Awaitable[None]]
CLOSE_REVOKED = 4403


@dataclass(frozen=True, slots=True)
class PairingTicket:
    bridge: Bridge
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PairedBridge:
    bridge_id: str
    user_id: str
    name: str
    credential: str


@dataclass(frozen=True, slots=True)
class BridgeView:
    bridge: Bridge
    link: BridgeLink | None

    @property
    def connected(self) -> bool:
        return self.link is not None


def subject_of(bridge_id: str) -> str:
    """What a connected bridge depends on, besides its user (revocation.py)."""
    return credential_subject("bridge", bridge_id)


def _refused() -> Unauthorized:
    # One answer for unknown, wrong, revoked and other-device credentials: no oracle.
    return Unauthorized("this bridge credential is not valid (revoked, or never paired)")


class BridgeService:
    def __init__(
        self,
        store: BridgeStore,
        sessions: BridgeSessions,
        pieces: PiecesIntegration,
        *,
        revocations: Revocations,
        audit: Audit,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._pieces = pieces
        self._revocations = revocations
        self._audit = audit
        self._cuts: set[asyncio.Task[None]] = set()
        self._clock = clock

    # --- pairing -------------------------------------------------------------------------------

    async def create(self, user_id: str, name: str, *, actor_id: str) -> PairingTicket:
        name = name.strip()
        if not name:
            raise InvalidInput("a bridge needs a name", field="name")
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        now = self._clock()
        bridge = Bridge(
            id=uuid.uuid4().hex,
            user_id=user_id,
            name=name,
            created_at=now,
            pairing_hash=digest(code),
            pairing_expires_at=now + PAIRING_TTL,
        )
        await self._store.add(bridge)
        await self._audit(
            AuditEntry(
                "bridge_pairing_created", actor_id=actor_id, user_id=user_id, target=bridge.id
            )
        )
        return PairingTicket(bridge, format_code(code), now + PAIRING_TTL)

    async def pair(self, code: str, *, device_id: str, agent_version: str) -> PairedBridge:
        """Exchange a pairing code (once) for the bridge's credential."""
        if len(device_id) < 16:
            raise InvalidInput("device_id must be at least 16 characters", field="device_id")
        bridge = await self._store.by_pairing_hash(digest(normalise_code(code)))
        now = self._clock()
        if bridge is None or not bridge.pairable(now):
            raise Unauthorized("this pairing code is unknown, used or expired")
        secret = secrets.token_urlsafe(32)
        bridge.pairing_hash = None  # one time only
        bridge.pairing_expires_at = None
        bridge.credential_hash = digest(secret)
        bridge.device_hash = digest(device_id)
        bridge.paired_at = now
        bridge.agent_version = agent_version[:64]
        await self._store.save(bridge)
        await self._audit(
            AuditEntry(
                "bridge_paired",
                actor_id=bridge.user_id,
                user_id=bridge.user_id,
                target=bridge.id,
                details={"agent_version": bridge.agent_version},
            )
        )
        return PairedBridge(
            bridge.id, bridge.user_id, bridge.name, format_credential(bridge.id, secret)
        )

    async def authenticate(self, credential: str, device_id: str) -> Bridge:
        parsed = parse_credential(credential)
        if parsed is None:
            raise _refused()
        bridge = await self._store.get(parsed[0])
        if (
            bridge is None
            or bridge.revoked_at is not None
            or not matches(parsed[1], bridge.credential_hash)
            or not matches(device_id, bridge.device_hash)
        ):
            raise _refused()
        return bridge

    # --- listing and revoking ----------------------------------------------------------------

    async def list(self, user_id: str) -> list[BridgeView]:
        bridges = await self._store.list_for(user_id)
        return [BridgeView(b, await self._sessions.link(b.id)) for b in bridges]

    async def _own(self, user_id: str, bridge_id: str) -> Bridge:
        bridge = await self._store.get(bridge_id)
        if bridge is None or bridge.user_id != user_id or bridge.revoked_at is not None:
            raise NotFound("bridge", bridge_id)
        return bridge

    async def revoke(self, user_id: str, bridge_id: str, *, actor_id: str) -> None:
        bridge = await self._own(user_id, bridge_id)
        bridge.revoked_at = self._clock()
        await self._store.save(bridge)  # first: it can no longer authenticate anywhere
        await self._revocations.revoke(subject_of(bridge_id), reason="bridge revoked")
        await self._audit(
            AuditEntry("bridge_revoked", actor_id=actor_id, user_id=user_id, target=bridge_id)
        )
        stored = await self._pieces.store.get(user_id)
        if stored is not None and bridge_id_of(stored.connection.url) == bridge_id:
            await self._pieces.disconnect(user_id, preserve_data=True, actor_id=actor_id)

    # --- a connected agent -------------------------------------------------------------------

    async def serve(self, session: LiveBridge, bridge: Bridge, *, ip: str | None) -> None:
        """Hold the session until it ends: register it, make it the user's Pieces connection,
        and note when it was last seen."""
        await self._sessions.attach(session)
        bridge.last_seen_at = self._clock()
        bridge.agent_version = session.agent_version[:64]
        await self._store.save(bridge)
        await self._audit(
            AuditEntry(
                "bridge_connected",
                actor_id=bridge.user_id,
                user_id=bridge.user_id,
                target=bridge.id,
                ip=ip,
                details={"agent_version": bridge.agent_version},
            )
        )
        running = asyncio.create_task(session.run(), name=f"bridge:{bridge.id}")
        watch = self._revocations.watch(
            {subject_of(bridge.id), user_subject(bridge.user_id)},
            on_revoked=lambda reason: self._cut(session, reason),
        )
        try:
            await self._adopt(bridge)
            await running
        finally:
            watch.cancel()
            if not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            await self._sessions.detach(session)
            with contextlib.suppress(Exception):
                current = await self._store.get(bridge.id)
                if current is not None:
                    current.last_seen_at = self._clock()
                    await self._store.save(current)

    def _cut(self, session: LiveBridge, reason: str) -> None:
        # Called on the event loop by the revocation listener, which must not be blocked.
        log.info("bridge_revoked_cut", bridge_id=session.bridge_id, reason=reason)
        task = asyncio.get_running_loop().create_task(session.close(CLOSE_REVOKED, reason))
        self._cuts.add(task)
        task.add_done_callback(self._cuts.discard)

    async def _adopt(self, bridge: Bridge) -> None:
        """The usual connect, through the bridge: health, register, user, ids, then the
        identifier stream, whose first frame starts the (initial) sync."""
        try:
            result = await self._pieces.connect(
                bridge.user_id,
                bridge_url(bridge.id),
                api_key=None,
                preferences={"initial_sync": True, "via": "bridge"},
                actor_id=bridge.user_id,
            )
        except Exception as exc:  # the session still serves calls; status shows the failure
            log.warning("bridge_connect_failed", bridge_id=bridge.id, error=repr(exc))
            return
        log.info("bridge_adopted", bridge_id=bridge.id, success=result.success)
