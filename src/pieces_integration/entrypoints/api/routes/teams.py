"""Teams and their members (issue 16). Thin: parse, call TeamService, map.

Outside a team every route answers 404, as for a team that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.teams import (
    MemberCreate,
    MemberPublic,
    MembersPublic,
    MemberUpdate,
    TeamCreate,
    TeamPublic,
    TeamRename,
    TeamsPublic,
)
from pieces_integration.service_layer.teams import TeamService

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])

TeamId = Annotated[str, Path(min_length=1, max_length=64)]
MemberId = Annotated[str, Path(min_length=1, max_length=128)]


def get_teams(container: ContainerDep) -> TeamService:
    return container.teams


TeamsDep = Annotated[TeamService, Depends(get_teams)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a team (you own it)")
async def create_team(
    body: TeamCreate, response: Response, principal: CurrentPrincipal, teams: TeamsDep
) -> TeamPublic:
    view = await teams.create(principal, body.name)
    response.headers["Location"] = f"/api/v1/teams/{view.team.id}"
    return TeamPublic.of(view)


@router.get("", summary="The teams you belong to")
async def read_teams(principal: CurrentPrincipal, teams: TeamsDep) -> TeamsPublic:
    views = await teams.of_caller(principal)
    return TeamsPublic(data=[TeamPublic.of(v) for v in views], count=len(views))


@router.get("/{team_id}", summary="One team, with its members")
async def read_team(team_id: TeamId, principal: CurrentPrincipal, teams: TeamsDep) -> TeamPublic:
    return TeamPublic.of(await teams.get(principal, team_id))


@router.patch("/{team_id}", summary="Rename a team (maintainer or owner)")
async def rename_team(
    team_id: TeamId, body: TeamRename, principal: CurrentPrincipal, teams: TeamsDep
) -> TeamPublic:
    return TeamPublic.of(await teams.rename(principal, team_id, body.name))


@router.delete(
    "/{team_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a team (owner)"
)
async def delete_team(team_id: TeamId, principal: CurrentPrincipal, teams: TeamsDep) -> Response:
    await teams.delete(principal, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{team_id}/members", summary="A team's members")
async def read_members(
    team_id: TeamId, principal: CurrentPrincipal, teams: TeamsDep
) -> MembersPublic:
    return MembersPublic.of(await teams.members(principal, team_id))


@router.post(
    "/{team_id}/members",
    status_code=status.HTTP_201_CREATED,
    summary="Add a member (maintainer or owner; only an owner adds an owner)",
)
async def add_member(
    team_id: TeamId, body: MemberCreate, principal: CurrentPrincipal, teams: TeamsDep
) -> MemberPublic:
    return MemberPublic.of(await teams.add_member(principal, team_id, body.user_id, body.role))


@router.patch("/{team_id}/members/{user_id}", summary="Change a member's role")
async def change_member_role(
    team_id: TeamId,
    user_id: MemberId,
    body: MemberUpdate,
    principal: CurrentPrincipal,
    teams: TeamsDep,
) -> MemberPublic:
    return MemberPublic.of(await teams.change_role(principal, team_id, user_id, body.role))


@router.delete(
    "/{team_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member (or leave the team yourself)",
)
async def remove_member(
    team_id: TeamId, user_id: MemberId, principal: CurrentPrincipal, teams: TeamsDep
) -> Response:
    await teams.remove_member(principal, team_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
