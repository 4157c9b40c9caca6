"""Announcements that a user's data changed somewhere, for whoever schedules their syncs.

The sources (API writes, the Pieces identifier streams) are built before the scheduler:
the scheduler syncs through the very connections whose streams announce changes. So the
sources hold this relay, built first, and the scheduler listens once it exists. Until then
an announcement has nobody to tell and is dropped: the periodic reconciliation covers it.
"""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.model import Side
from pieces_integration.ports.pieces import IdentifierEvent


class Poke(Protocol):
    def __call__(
        self,
        user_id: str,
        *,
        full: bool = False,
        side: Side | None = None,
        remote_ids: set[str] | None = None,
    ) -> None: ...


class SyncSignals:
    def __init__(self) -> None:
        self._listener: Poke | None = None

    def listen(self, poke: Poke) -> None:
        if self._listener is not None:
            raise RuntimeError("sync signals already have a listener")
        self._listener = poke

    def local_write(self, user_id: str) -> None:
        """An API write committed: carry it at once (not on the next outbox poll)."""
        if self._listener is not None:
            self._listener(user_id)

    def pieces_changed(self, user_id: str, events: list[IdentifierEvent]) -> None:
        """Pieces announced creates/changes/deletes: sync just those ids soon. The first
        frame of a stream lists every id (a snapshot): reconcile everything then."""
        if self._listener is None or not user_id:
            return
        if any(event.snapshot for event in events):
            self._listener(user_id, full=True)
        else:
            ids = {event.asset_id for event in events}
            self._listener(user_id, side=Side.PIECES, remote_ids=ids)
