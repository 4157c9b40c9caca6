"""Brute-force limits on failed authentications (issue 20, spec 8.2).

Every way in that checks a secret (API keys and tokens in `Authenticator`, WebSocket
tickets, one-time sign-in codes; MCP and bridge credentials can use the same `attempt`)
counts its failures twice: per client address and per claimed identity (an API key's
prefix, a token's subject). Each counter locks out with growing durations
(`domain/lockout`); a locked-out attempt is refused before its secret is even checked,
with `RateLimited` (429 + Retry-After).

An attacker guessing someone's key prefix from elsewhere must not lock that user out: an
identity's lockout applies only to addresses that have not signed in as it before (an
address that succeeds is remembered for `trust_ttl`). Only a presented, wrong credential
counts: a request without any is not a guess.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from cachetools import TTLCache

from pieces_integration.domain.errors import InvalidInput, RateLimited, Unauthorized
from pieces_integration.domain.lockout import LockoutPolicy
from pieces_integration.domain.model import AuditEntry
from pieces_integration.ports.lockouts import FailureCounters
from pieces_integration.ports.storage import UnitOfWorkFactory

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    per_address: LockoutPolicy = field(default_factory=lambda: LockoutPolicy(threshold=20))
    per_identity: LockoutPolicy = field(default_factory=lambda: LockoutPolicy(threshold=10))
    trust_ttl: float = 30 * 86_400.0


def _pair(identity: str, ip: str) -> str:
    # Hashed: the mark's key names neither the address nor the identity in the store.
    return "trust:" + hashlib.sha256(f"{identity}\x00{ip}".encode()).hexdigest()


class AuthThrottle:
    def __init__(
        self,
        counters: FailureCounters,
        uow: UnitOfWorkFactory,
        policy: ThrottlePolicy | None = None,
        *,
        on_failure: Callable[[str], None] | None = None,
        on_lockout: Callable[[str], None] | None = None,
    ) -> None:
        """`on_failure(kind)` / `on_lockout(scope)`: metrics."""
        self._counters = counters
        self._uow = uow
        self.policy = policy or ThrottlePolicy()
        self._on_failure = on_failure
        self._on_lockout = on_lockout
        # Marks written lately by this process: a signed-in client costs no write per request.
        self._recent_marks: TTLCache[str, bool] = TTLCache(maxsize=50_000, ttl=600)

    async def check(self, *, ip: str | None, identity: str | None) -> None:
        """Raise RateLimited if the address, or the identity for this address, is locked."""
        keys = ([f"ip:{ip}"] if ip else []) + ([f"id:{identity}"] if identity else [])
        if not keys:
            return
        waits = dict(zip(keys, await self._counters.retry_after(*keys), strict=True))
        wait = waits.get(f"ip:{ip}", 0.0)
        identity_wait = waits.get(f"id:{identity}", 0.0)
        if identity and identity_wait > wait:
            trusted = ip is not None and await self._counters.marked(_pair(identity, ip))
            if not trusted:
                wait = identity_wait
        if wait > 0:
            raise RateLimited(
                "too many failed sign-in attempts; wait before trying again",
                retry_after=wait,
                limit=self.policy.per_address.threshold,
            )

    async def failed(
        self,
        *,
        kind: str,
        ip: str | None,
        identity: str | None,
        reason: str,
        request_id: str | None = None,
    ) -> None:
        if self._on_failure is not None:
            self._on_failure(kind)
        lockouts: list[tuple[str, float]] = []
        if ip:
            seconds = await self._counters.fail(f"ip:{ip}", self.policy.per_address)
            if seconds:
                lockouts.append(("address", seconds))
        if identity:
            seconds = await self._counters.fail(f"id:{identity}", self.policy.per_identity)
            if seconds:
                lockouts.append(("identity", seconds))
        log.info("sign_in_failed", kind=kind, reason=reason, ip=ip, identity=identity)
        async with self._uow() as uow:
            details = {"reason": reason[:200], "kind": kind, "identity": identity}
            await uow.audit.add(
                AuditEntry(
                    "sign_in_failed",
                    actor_id=None,
                    details=details,
                    ip=ip,
                    request_id=request_id,
                )
            )
            for scope, seconds in lockouts:
                if self._on_lockout is not None:
                    self._on_lockout(scope)
                log.warning("sign_in_locked_out", scope=scope, seconds=seconds, ip=ip)
                await uow.audit.add(
                    AuditEntry(
                        "sign_in_locked_out",
                        actor_id=None,
                        details={"scope": scope, "seconds": seconds, **details},
                        ip=ip,
                        request_id=request_id,
                    )
                )
            await uow.commit()

    async def succeeded(self, *, ip: str | None, identity: str | None) -> None:
        if not (ip and identity):
            return
        pair = _pair(identity, ip)
        if pair not in self._recent_marks:
            await self._counters.mark(pair, ttl=self.policy.trust_ttl)
            self._recent_marks[pair] = True

    @asynccontextmanager
    async def attempt(
        self,
        *,
        kind: str,
        ip: str | None,
        identity: str | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[None]:
        """Around checking one presented secret: refused while locked out; an Unauthorized
        (or malformed-credential InvalidInput) inside counts as a failure and propagates."""
        await self.check(ip=ip, identity=identity)
        try:
            yield
        except (Unauthorized, InvalidInput) as exc:
            await self.failed(
                kind=kind, ip=ip, identity=identity, reason=str(exc), request_id=request_id
            )
            raise
        await self.succeeded(ip=ip, identity=identity)
