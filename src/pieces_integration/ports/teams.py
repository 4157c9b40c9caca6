"""Where teams and their memberships are kept (issue 16)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from pieces_integration.domain.teams import (
    Membership,
    SavedCopy,
    Share,
    SharedVia,
    Team,
    TeamRole,
)


class TeamRepository(Protocol):
    async def add(self, team: Team) -> None: ...
    async def get(self, team_id: str, *, for_update: bool = False) -> Team | None:
        """`for_update` holds the team's row to the end of the transaction, so two changes
        to one team's membership (the last-owner rule) cannot interleave."""
        ...

    async def save(self, team: Team) -> None: ...
    async def delete(self, team_id: str) -> bool:
        """Remove the team with its memberships (and, once shared, its shares)."""
        ...

    async def teams_of(self, user_id: str) -> list[tuple[Team, TeamRole]]:
        """The teams `user_id` belongs to, with their role in each, oldest first."""
        ...

    async def membership(self, team_id: str, user_id: str) -> Membership | None: ...
    async def members(self, team_id: str) -> list[Membership]: ...
    async def add_member(self, membership: Membership) -> None: ...
    async def set_role(self, team_id: str, user_id: str, role: TeamRole) -> bool: ...
    async def remove_member(self, team_id: str, user_id: str) -> bool: ...
    async def count_owners(self, team_id: str) -> int: ...

    async def share(self, share: Share) -> bool:
        """Put an asset in a team's library; False if it was there already."""
        ...

    async def unshare(self, asset_id: str, team_id: str) -> bool: ...
    async def share_of(self, asset_id: str, team_id: str) -> Share | None: ...
    async def shares_of(self, asset_id: str) -> list[Share]: ...
    async def shared_asset_ids(self, team_ids: Collection[str]) -> list[str]:
        """Every asset shared into any of these teams."""
        ...

    async def shares_in(self, team_ids: Collection[str]) -> list[tuple[str, SharedVia]]:
        """(asset id, how it is shared) for every asset shared into these teams, oldest
        share first."""
        ...

    async def record_save(self, saved: SavedCopy) -> bool:
        """Remember a saved copy; False (and nothing written) if this user already saved
        that revision of that asset. One statement, so concurrent saves make one row."""
        ...

    async def saved_copy_id(
        self, user_id: str, source_asset_id: str, revision_number: int
    ) -> str | None: ...

    async def shared_asset_ids_owned_by(self, user_id: str) -> list[str]:
        """The assets of `user_id` shared into at least one team."""
        ...

    async def forget_user(self, user_id: str) -> None:
        """A deleted user no longer appears as who shared, added or created anything."""
        ...
