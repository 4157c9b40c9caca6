"""Teams and their roles (issue 16): plain data and the pure decisions about who may do what.

Roles rank owner > maintainer > member > viewer. What each may do is the table
`MINIMUM_ROLE`: a role may do an action when it ranks at least as high as the action's
minimum. Changing the membership has a few more rules (`check_member_change`): only an owner
grants or touches the owner role, and a team never loses its last owner.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from pieces_integration.domain.errors import Conflict, Forbidden, InvalidInput
from pieces_integration.domain.model import utcnow

MAX_TEAM_NAME = 128


class TeamRole(StrEnum):
    OWNER = "owner"
    MAINTAINER = "maintainer"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: TeamRole) -> bool:
        return self.rank >= other.rank


_RANK = {TeamRole.VIEWER: 0, TeamRole.MEMBER: 1, TeamRole.MAINTAINER: 2, TeamRole.OWNER: 3}


class TeamAction(StrEnum):
    READ = "read"  # the team, its members and its assets
    SHARE = "share"  # share one's own asset into the team
    EDIT_OWN_SHARED = "edit_own_shared"  # edit or unshare an asset one shared
    EDIT_ANY = "edit_any"  # edit, unshare or restore any team asset
    MANAGE_MEMBERS = "manage_members"
    RENAME = "rename"
    DELETE = "delete"
    TRANSFER = "transfer"  # grant the owner role


MINIMUM_ROLE: dict[TeamAction, TeamRole] = {
    TeamAction.READ: TeamRole.VIEWER,
    TeamAction.SHARE: TeamRole.MEMBER,
    TeamAction.EDIT_OWN_SHARED: TeamRole.MEMBER,
    TeamAction.EDIT_ANY: TeamRole.MAINTAINER,
    TeamAction.MANAGE_MEMBERS: TeamRole.MAINTAINER,
    TeamAction.RENAME: TeamRole.MAINTAINER,
    TeamAction.DELETE: TeamRole.OWNER,
    TeamAction.TRANSFER: TeamRole.OWNER,
}


def allows(role: TeamRole, action: TeamAction) -> bool:
    return role.at_least(MINIMUM_ROLE[action])


def ensure_allowed(role: TeamRole, action: TeamAction) -> None:
    """A member whose role is too low learns why (403); non-members never get this far."""
    if not allows(role, action):
        needed, doing = MINIMUM_ROLE[action], action.value.replace("_", " ")
        raise Forbidden(
            f"a team {role.value} may not {doing}; that needs {needed.value} or above",
            details={"team_role": role.value, "needs": needed.value, "action": action.value},
        )


@dataclass(slots=True)
class Team:
    id: str
    name: str
    created_by: str | None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Membership:
    team_id: str
    user_id: str
    role: TeamRole
    added_by: str | None = None
    added_at: datetime = field(default_factory=utcnow)


def team_name(raw: str) -> str:
    """A team's name: trimmed, 1..128 characters, no control characters."""
    name = raw.strip()
    if not name:
        raise InvalidInput("name must not be blank", field="name")
    if len(name) > MAX_TEAM_NAME:
        raise InvalidInput(f"name is longer than {MAX_TEAM_NAME} characters", field="name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput("name must not contain control characters", field="name")
    return name


@dataclass(frozen=True, slots=True)
class MemberChange:
    """One change to a team's membership, as the rules see it.

    `current` is the target's role now (None: not a member), `new` the role after (None:
    removed). `owners` counts the team's owners before the change.
    """

    actor: TeamRole
    current: TeamRole | None
    new: TeamRole | None
    by_self: bool
    owners: int


def check_member_change(change: MemberChange) -> None:
    """Raise Forbidden or Conflict unless the change is allowed."""
    leaving = change.by_self and change.new is None and change.current is not None
    if not leaving:
        ensure_allowed(change.actor, TeamAction.MANAGE_MEMBERS)
    touches_owner = TeamRole.OWNER in (change.current, change.new)
    if touches_owner and not leaving:
        ensure_allowed(change.actor, TeamAction.TRANSFER)
    loses_owner = change.current is TeamRole.OWNER and change.new is not TeamRole.OWNER
    if loses_owner and change.owners <= 1:
        raise Conflict(
            "a team keeps at least one owner; make another member owner first",
            details={"owners": change.owners},
        )


def successor(members: Sequence[Membership], leaving: str) -> Membership | None:
    """Who owns the team once `leaving` (its only owner) is deleted: the highest-ranking
    of the others (maintainer, else member, else viewer), the longest-standing among
    equals. None: nobody is left, and the team goes.

    Promoting even a viewer keeps the team: deleting it would unshare every other member's
    assets from it, and a new owner can always hand the role on.
    """
    others = [m for m in members if m.user_id != leaving]
    if not others:
        return None
    return min(others, key=lambda m: (-m.role.rank, m.added_at, m.user_id))


class Scope(StrEnum):
    """Which assets a list or search covers: the caller's own, their teams', or both."""

    MINE = "mine"
    TEAM = "team"
    ALL = "all"

    @property
    def own(self) -> bool:
        return self is not Scope.TEAM

    @property
    def teams(self) -> bool:
        return self is not Scope.MINE


@dataclass(slots=True)
class Share:
    """An asset in a team's library."""

    asset_id: str
    team_id: str
    shared_by: str | None
    shared_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class SharedVia:
    """One way an asset reaches a reader: shared into `team_id` (named `team_name`) by
    `shared_by` (a user id; None once that account is deleted)."""

    team_id: str
    team_name: str
    shared_by: str | None


@dataclass(frozen=True)
class TeamReach:
    """What one user reads through their teams, read in one go: for each asset shared into
    a team they belong to, the shares that carry it to them (oldest first). The derived
    views are computed once (a reach may serve many requests: `TeamReachCache`)."""

    shares: Mapping[str, tuple[SharedVia, ...]] = field(default_factory=dict)

    @cached_property
    def asset_ids(self) -> tuple[str, ...]:
        return tuple(self.shares)

    @cached_property
    def team_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(via.team_id for vias in self.shares.values() for via in vias))

    @cached_property
    def _fingerprint(self) -> str:
        pairs = sorted((a, v.team_id) for a, vias in self.shares.items() for v in vias)
        return hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Changes whenever a share or a membership behind this reach does (cache keys)."""
        return self._fingerprint


@dataclass(frozen=True, slots=True)
class SavedCopy:
    """A member's "Save to my Pieces" copy of a team asset at one of its revisions."""

    user_id: str
    source_asset_id: str
    revision_number: int
    revision_id: str
    copy_id: str
    saved_at: datetime = field(default_factory=utcnow)
