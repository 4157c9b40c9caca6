"""Who may see and do what in a team: the one place that decides it (issue 16).

REST routes, the WebSocket fan-out and (when they land) the console and MCP ask this module;
none reads memberships on its own. A caller outside the team gets `NotFound`, exactly as for
a team that does not exist, so nothing leaks; a member whose role is too low gets
`Forbidden`. admin and service principals keep their powers: they act as an owner anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import TTLCache

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import NotFound
from pieces_integration.domain.teams import (
    SharedVia,
    Team,
    TeamAction,
    TeamReach,
    TeamRole,
    ensure_allowed,
)
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class TeamGrant:
    """A team as one caller may use it: the team and the caller's effective role."""

    team: Team
    role: TeamRole
    member: bool  # False for admin/service acting from outside


async def grant_in(
    uow: UnitOfWork, principal: Principal, team_id: str, *, for_update: bool = False
) -> TeamGrant:
    """The caller's standing in a team, inside the caller's unit of work."""
    team = await uow.teams.get(team_id, for_update=for_update)
    if team is None:
        raise NotFound("team", team_id)
    membership = await uow.teams.membership(team_id, principal.user_id)
    if principal.role.may_act_for_others:
        return TeamGrant(team, TeamRole.OWNER, member=membership is not None)
    if membership is None:
        raise NotFound("team", team_id)
    return TeamGrant(team, membership.role, member=True)


async def require(
    uow: UnitOfWork,
    principal: Principal,
    team_id: str,
    action: TeamAction,
    *,
    for_update: bool = False,
) -> TeamGrant:
    grant = await grant_in(uow, principal, team_id, for_update=for_update)
    ensure_allowed(grant.role, action)
    return grant


async def team_ids_in(uow: UnitOfWork, user_id: str) -> tuple[str, ...]:
    """The teams whose libraries `user_id` reads, read now (a removed member has none)."""
    return tuple(team.id for team, _ in await uow.teams.teams_of(user_id))


async def reading_grants(uow: UnitOfWork, principal: Principal, asset_id: str) -> list[TeamGrant]:
    """The caller's grants in the teams an asset is shared into (empty: not shared with them)."""
    grants = []
    for share in await uow.teams.shares_of(asset_id):
        membership = await uow.teams.membership(share.team_id, principal.user_id)
        team = await uow.teams.get(share.team_id) if membership is not None else None
        if membership is not None and team is not None:
            grants.append(TeamGrant(team, membership.role, member=True))
    return grants


async def may_read_asset(
    uow: UnitOfWork, principal: Principal, owner_id: str, asset_id: str
) -> bool:
    if owner_id == principal.user_id or principal.role.may_act_for_others:
        return True
    return bool(await reading_grants(uow, principal, asset_id))


async def require_on_asset(
    uow: UnitOfWork, principal: Principal, owner_id: str, asset_id: str, action: TeamAction
) -> None:
    """The owner (and admin/service) may; a team reader needs `action` in one of the teams
    the asset is shared into (403 if the role is too low); anyone else gets 404."""
    if owner_id == principal.user_id or principal.role.may_act_for_others:
        return
    grants = await reading_grants(uow, principal, asset_id)
    if not grants:
        raise NotFound("asset", asset_id)
    ensure_allowed(max((g.role for g in grants), key=lambda role: role.rank), action)


async def reach_in(uow: UnitOfWork, user_id: str) -> TeamReach:
    """Every asset `user_id` reads through a team, with the team and the sharer that carry
    it, read now (a removed member reaches nothing); `TeamReachCache` keeps the shares of a
    set of teams a moment for search and suggestions."""
    return reach_of(await uow.teams.shares_in(await team_ids_in(uow, user_id)))


REACH_TTL_SECONDS = 2.0


def reach_of(rows: Sequence[tuple[str, SharedVia]]) -> TeamReach:
    shares: dict[str, list[SharedVia]] = {}
    for asset_id, via in rows:
        shares.setdefault(asset_id, []).append(via)
    return TeamReach({asset_id: tuple(vias) for asset_id, vias in shares.items()})


class TeamReachCache:
    """The shares of a set of teams, kept for a moment: at 500 shares a team, reading and
    building them cost more than the search they scope (issue 16's benchmark).

    Membership is never cached: the caller's teams are read per request and are the key, so
    a removed member reaches nothing at once. A share or unshare made through this replica
    clears the cache; one made on another replica shows within `ttl` seconds (and a team
    asset found through a stale reach is still checked against the stored shares before it
    is returned)."""

    def __init__(self, ttl: float = REACH_TTL_SECONDS, maxsize: int = 4096) -> None:
        self._reaches: TTLCache[tuple[str, ...], TeamReach] = TTLCache(maxsize, ttl)

    async def reach(self, uow: UnitOfWork, user_id: str) -> tuple[tuple[str, ...], TeamReach]:
        """The user's teams (read now) and what they reach through them."""
        team_ids = tuple(sorted(await team_ids_in(uow, user_id)))
        if not team_ids:
            return (), TeamReach()
        reach = self._reaches.get(team_ids)
        if reach is None:
            reach = self._reaches[team_ids] = reach_of(await uow.teams.shares_in(team_ids))
        return team_ids, reach

    def clear(self) -> None:
        self._reaches.clear()


@dataclass
class TeamAccess:
    """Membership checks that open their own unit of work (live sessions, fan-out)."""

    uow: UnitOfWorkFactory

    async def team_ids_of(self, user_id: str) -> set[str]:
        async with self.uow(readonly=True) as uow:
            return set(await team_ids_in(uow, user_id))

    async def is_member(self, user_id: str, team_id: str) -> bool:
        async with self.uow(readonly=True) as uow:
            return await uow.teams.membership(team_id, user_id) is not None
