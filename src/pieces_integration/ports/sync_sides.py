"""What the sync engine needs from each remote side (Pieces OS, AIWFE), in snapshot terms.

Each side adapter maps its own API onto these five calls. `create` is told our asset id so
a side that supports client-chosen ids (AIWFE's contract does) is idempotent by itself;
for one that does not (Pieces), the engine records a pending link first and adopts the
remote copy by content on a retry, so a crash between "created" and "recorded" never
leaves two copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Side


@dataclass(frozen=True, slots=True)
class RemoteAsset:
    remote_id: str
    snapshot: Snapshot
    updated_at: datetime | None = None  # the side's own change time, if it reports one
    version: str | None = None  # the side's own version tag, if any


class SyncSide(Protocol):
    side: Side

    async def list_assets(self) -> list[RemoteAsset]: ...

    async def get_asset(self, remote_id: str) -> RemoteAsset | None: ...

    async def create_asset(
        self,
        asset_id: str,
        snapshot: Snapshot,
        *,
        source: str | None = None,
        source_id: str | None = None,
    ) -> RemoteAsset:
        """Create it there. `source`/`source_id` say where the asset came from (e.g. an
        AIWFE chat); a side that can record provenance does, others ignore them."""
        ...

    async def update_asset(self, remote_id: str, snapshot: Snapshot) -> RemoteAsset: ...

    async def delete_asset(self, remote_id: str) -> None:
        """Idempotent: deleting what is already gone succeeds."""
        ...


class SyncSides(Protocol):
    """The sides a user is connected to right now (an empty dict when none)."""

    async def __call__(self, user_id: str) -> dict[Side, SyncSide]: ...
