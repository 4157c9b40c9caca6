"""Where the revisions of team assets are kept (issue 16): append-only."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.revisions import Revision


class RevisionRepository(Protocol):
    async def add(self, revision: Revision) -> None:
        """Append; a second revision with the same asset and number is a `Conflict`."""
        ...

    async def latest(self, asset_id: str) -> Revision | None: ...
    async def get(self, asset_id: str, number: int) -> Revision | None: ...
    async def list_for(self, asset_id: str, *, limit: int = 100) -> list[Revision]:
        """Newest first."""
        ...

    async def by_author(self, author_id: str) -> list[Revision]:
        """Every revision the user wrote, oldest first (their data, for the export)."""
        ...

    async def forget_author(self, author_id: str) -> int:
        """The author's account is deleted: their revisions read "deleted user" (None)."""
        ...
