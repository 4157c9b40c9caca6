"""Revocation that takes effect at once, on every replica (issue 20).

A live session (a WebSocket; an MCP session or a bridge connection, built elsewhere) was
authenticated once, at its start. When what it depended on goes away (the user is deleted,
an API key or a bridge credential is revoked, a member leaves a team) the session must end
now, not at its next reconnect. Every such session `watch`es the *subjects* it depends on;
whoever revokes calls `revoke(subject, ...)`, which ends the matching sessions on this
replica at once and publishes the revocation on the event bus (Redis pub/sub across
replicas; in-process on the embedded default), where every replica's listener does the same.

Subjects are plain strings with a kind prefix (`user_subject`, `api_key_subject`,
`credential_subject`, `member_subject`), so new kinds need no change here.

Pub/sub is fire-and-forget: a replica whose subscription dropped (a Redis restart) misses
what was published meanwhile. So after every (re)subscription, and every `recheck_interval`,
the listener asks `still_valid` about each watched subject and ends the sessions of those
that no longer are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import structlog

from pieces_integration.domain.auth import Principal
from pieces_integration.ports.infrastructure import EventBus

log = structlog.get_logger(__name__)

CHANNEL = "revocations"

# Given the watched subjects, returns those that are no longer valid.
Validator = Callable[[Collection[str]], Awaitable[Collection[str]]]


def user_subject(user_id: str) -> str:
    return "user:" + quote(user_id, safe="")


def api_key_subject(key_id: str) -> str:
    return "api_key:" + quote(key_id, safe="")


def credential_subject(kind: str, credential_id: str) -> str:
    """Another kind of credential (e.g. `credential_subject("bridge", id)`)."""
    return f"credential:{quote(kind, safe='')}:{quote(credential_id, safe='')}"


def member_subject(team_id: str, user_id: str) -> str:
    return f"member:{quote(team_id, safe='')}:{quote(user_id, safe='')}"


def subjects_of(principal: Principal) -> frozenset[str]:
    """What a session authenticated as `principal` depends on."""
    subjects = {user_subject(principal.user_id)}
    if principal.key_id:
        subjects.add(api_key_subject(principal.key_id))
    return frozenset(subjects)


@dataclass(eq=False)
class Watch:
    """One live session's interest. `revoked` is set (once) with `reason` when it ends.

    `on_revoked`, if given, is called synchronously on the event loop: it must not block
    (close a session by setting its flag or cancelling a scope, not by awaiting).
    """

    subjects: frozenset[str]
    on_revoked: Callable[[str], None] | None = None
    revoked: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    _owner: Revocations | None = None

    def fire(self, reason: str) -> None:
        if self.revoked.is_set():
            return
        self.reason = reason
        self.revoked.set()
        if self.on_revoked is not None:
            try:
                self.on_revoked(reason)
            except Exception:  # one broken session must not keep the others open
                log.exception("revocation callback failed")

    def cancel(self) -> None:
        """The session ended by itself: stop watching."""
        if self._owner is not None:
            self._owner.forget(self)
            self._owner = None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


class Revocations:
    def __init__(
        self,
        bus: EventBus,
        *,
        still_valid: Validator | None = None,
        recheck_interval: float = 30.0,
        on_revoked: Callable[[int], None] | None = None,
    ) -> None:
        """`on_revoked(n)`: told how many sessions a revocation ended (a metric)."""
        self._bus = bus
        self._still_valid = still_valid
        self._recheck_interval = recheck_interval
        self._count = on_revoked
        self._watches: dict[str, set[Watch]] = defaultdict(set)
        self._origin = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- sessions ----------------------------------------------------------------------

    def watch(
        self, subjects: Iterable[str], on_revoked: Callable[[str], None] | None = None
    ) -> Watch:
        """Watch `subjects` until `Watch.cancel()` (or the end of a `with` block)."""
        watch = Watch(frozenset(subjects), on_revoked, _owner=self)
        for subject in watch.subjects:
            self._watches[subject].add(watch)
        return watch

    def watch_principal(
        self, principal: Principal, on_revoked: Callable[[str], None] | None = None
    ) -> Watch:
        return self.watch(subjects_of(principal), on_revoked)

    def forget(self, watch: Watch) -> None:
        for subject in watch.subjects:
            watchers = self._watches.get(subject)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[subject]

    @property
    def watched(self) -> int:
        return len({w for watchers in self._watches.values() for w in watchers})

    # -- revoking ----------------------------------------------------------------------

    async def revoke(self, *subjects: str, reason: str) -> int:
        """End every session depending on `subjects`, here and on every other replica.

        Returns how many ended on this replica. Call it after the change is committed, so
        a session that reconnects at once is refused. If the bus is down the local sessions
        still end, and other replicas catch up at their next recheck.
        """
        ended = self._end(subjects, reason)
        message = {"origin": self._origin, "subjects": list(subjects), "reason": reason}
        try:
            await self._bus.publish(CHANNEL, json.dumps(message).encode())
        except Exception as exc:
            log.warning("revocation not published; replicas recheck later", error=repr(exc))
        return ended

    def _end(self, subjects: Iterable[str], reason: str) -> int:
        doomed = {w for subject in subjects for w in self._watches.get(subject, ())}
        for watch in doomed:
            self.forget(watch)
            watch.fire(reason)
        if doomed and self._count is not None:
            self._count(len(doomed))
        return len(doomed)

    # -- the listener ------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("Revocations.start() called twice; call stop() first")
        self._task = asyncio.create_task(self._listen(), name="revocations")
        with contextlib.suppress(TimeoutError):  # the bus is down: keep retrying behind
            await asyncio.wait_for(self._subscribed.wait(), 2)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def recheck(self) -> int:
        """Ask the validator about every watched subject; end what is no longer valid."""
        if self._still_valid is None or not self._watches:
            return 0
        gone = await self._still_valid(list(self._watches))
        return self._end(gone, "credential no longer valid") if gone else 0

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self._bus.subscribe(CHANNEL) as subscription:
                    self._subscribed.set()
                    await self.recheck()  # whatever was published while we were away
                    next_check = loop.time() + self._recheck_interval
                    while True:
                        wait = max(0.0, next_check - loop.time())
                        raw = await subscription.get(wait=min(wait, 1.0))
                        if raw is not None:
                            self._apply(raw)
                        if loop.time() >= next_check:
                            await self.recheck()
                            next_check = loop.time() + self._recheck_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus dropped us: resubscribe, then recheck
                log.warning("revocation feed lost; resubscribing", error=repr(exc))
                await asyncio.sleep(0.5)

    def _apply(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            subjects = [str(s) for s in message["subjects"]]
            reason = str(message.get("reason", "revoked"))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed revocation message")
            return
        if message.get("origin") != self._origin:  # our own ended at `revoke`
            self._end(subjects, reason)
