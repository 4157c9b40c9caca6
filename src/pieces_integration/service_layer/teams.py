"""Team use cases (issue 16): create, read, rename and delete teams; manage their members.

Every decision about the caller goes through `team_access` (404 outside the team, 403 for a
role too low) and `domain.teams` (the role table, the membership rules). Membership changes
and team deletion are audited in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from pieces_integration.domain.auth import Principal, ensure_can_write
from pieces_integration.domain.errors import Conflict, NotFound
from pieces_integration.domain.model import AuditEntry, Role, new_id, utcnow
from pieces_integration.domain.teams import (
    MemberChange,
    Membership,
    Team,
    TeamAction,
    TeamRole,
    check_member_change,
    team_name,
)
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user
from pieces_integration.service_layer.team_access import TeamGrant, grant_in, require
from pieces_integration.service_layer.team_departure import erase_orphans
from pieces_integration.service_layer.team_events import TeamEvents


@dataclass(frozen=True, slots=True)
class TeamView:
    team: Team
    role: TeamRole  # the caller's effective role
    members: list[Membership] | None = None


async def _audit(
    uow: UnitOfWork, action: str, principal: Principal, team_id: str, **details: object
) -> None:
    subject = details.get("member")
    await uow.audit.add(
        AuditEntry(
            action,
            actor_id=principal.user_id,
            user_id=subject if isinstance(subject, str) else principal.user_id,
            target=team_id,
            details=dict(details),
        )
    )


@dataclass
class TeamService:
    uow: UnitOfWorkFactory
    team_events: TeamEvents | None = None

    async def create(self, principal: Principal, name: str) -> TeamView:
        ensure_can_write(principal)
        team = Team(id=new_id(), name=team_name(name), created_by=principal.user_id)
        async with self.uow() as uow:
            await ensure_user(uow, principal.user_id, principal.role)
            await uow.teams.add(team)
            await uow.teams.add_member(
                Membership(team.id, principal.user_id, TeamRole.OWNER, added_by=principal.user_id)
            )
            await uow.commit()
        return TeamView(team, TeamRole.OWNER)

    async def of_caller(self, principal: Principal) -> list[TeamView]:
        async with self.uow(readonly=True) as uow:
            found = await uow.teams.teams_of(principal.user_id)
        return [TeamView(team, role) for team, role in found]

    async def get(self, principal: Principal, team_id: str) -> TeamView:
        async with self.uow(readonly=True) as uow:
            grant = await require(uow, principal, team_id, TeamAction.READ)
            members = await uow.teams.members(team_id)
        return TeamView(grant.team, grant.role, members)

    async def rename(self, principal: Principal, team_id: str, name: str) -> TeamView:
        ensure_can_write(principal)
        chosen = team_name(name)
        async with self.uow() as uow:
            grant = await require(uow, principal, team_id, TeamAction.RENAME)
            grant.team.name, grant.team.updated_at = chosen, utcnow()
            await uow.teams.save(grant.team)
            await uow.commit()
        return TeamView(grant.team, grant.role)

    async def delete(self, principal: Principal, team_id: str) -> None:
        ensure_can_write(principal)
        async with self.uow() as uow:
            grant = await require(uow, principal, team_id, TeamAction.DELETE, for_update=True)
            library = await uow.teams.shared_asset_ids([team_id])
            await uow.teams.delete(team_id)
            # Deleted users' assets held by this team alone go with it (team_departure).
            await erase_orphans(uow, library)
            await _audit(uow, "team_deleted", principal, team_id, name=grant.team.name)
            await uow.commit()

    async def members(self, principal: Principal, team_id: str) -> list[Membership]:
        async with self.uow(readonly=True) as uow:
            await require(uow, principal, team_id, TeamAction.READ)
            return await uow.teams.members(team_id)

    async def add_member(
        self, principal: Principal, team_id: str, user_id: str, role: TeamRole
    ) -> Membership:
        ensure_can_write(principal)
        async with self.uow() as uow:
            grant = await grant_in(uow, principal, team_id, for_update=True)
            current = await uow.teams.membership(team_id, user_id)
            await self._check(uow, grant, principal, user_id, current, role)
            if current is not None:
                raise Conflict(
                    f"{user_id!r} is already a {current.role.value} of this team",
                    details={"user_id": user_id, "current_role": current.role.value},
                )
            # The member's account row, as their first request would make it.
            await ensure_user(uow, user_id, Role.USER)
            membership = Membership(team_id, user_id, role, added_by=principal.user_id)
            await uow.teams.add_member(membership)
            await _audit(
                uow, "team_member_added", principal, team_id, member=user_id, role=role.value
            )
            await uow.commit()
        await self._tell(team_id, user_id, "added", role, principal)
        return membership

    async def change_role(
        self, principal: Principal, team_id: str, user_id: str, role: TeamRole
    ) -> Membership:
        ensure_can_write(principal)
        async with self.uow() as uow:
            grant = await grant_in(uow, principal, team_id, for_update=True)
            current = await self._member(uow, team_id, user_id)
            await self._check(uow, grant, principal, user_id, current, role)
            if current.role is not role:
                await uow.teams.set_role(team_id, user_id, role)
                await _audit(
                    uow,
                    "team_role_changed",
                    principal,
                    team_id,
                    member=user_id,
                    role=role.value,
                    previous=current.role.value,
                )
                await uow.commit()
                changed = True
            else:
                changed = False
            current.role = role
        if changed:
            await self._tell(team_id, user_id, "role_changed", role, principal)
        return current

    async def remove_member(self, principal: Principal, team_id: str, user_id: str) -> None:
        ensure_can_write(principal)
        async with self.uow() as uow:
            grant = await grant_in(uow, principal, team_id, for_update=True)
            current = await self._member(uow, team_id, user_id)
            await self._check(uow, grant, principal, user_id, current, None)
            await uow.teams.remove_member(team_id, user_id)
            await _audit(
                uow,
                "team_member_removed",
                principal,
                team_id,
                member=user_id,
                previous=current.role.value,
            )
            await uow.commit()
        await self._tell(team_id, user_id, "removed", None, principal)

    async def _tell(
        self, team_id: str, user_id: str, change: str, role: TeamRole | None, by: Principal
    ) -> None:
        if self.team_events is not None:
            await self.team_events.member_changed(team_id, user_id, change, role, by.user_id)

    @staticmethod
    async def _member(uow: UnitOfWork, team_id: str, user_id: str) -> Membership:
        current = await uow.teams.membership(team_id, user_id)
        if current is None:
            raise NotFound("team member", user_id)
        return current

    @staticmethod
    async def _check(
        uow: UnitOfWork,
        grant: TeamGrant,
        principal: Principal,
        user_id: str,
        current: Membership | None,
        new: TeamRole | None,
    ) -> None:
        check_member_change(
            MemberChange(
                actor=grant.role,
                current=None if current is None else current.role,
                new=new,
                by_self=user_id == principal.user_id,
                owners=await uow.teams.count_owners(grant.team.id),
            )
        )
