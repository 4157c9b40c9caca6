"""The pure team rules: the role table, names, and who may change the membership."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pieces_integration.domain.errors import Conflict, Forbidden, InvalidInput
from pieces_integration.domain.teams import (
    MINIMUM_ROLE,
    MemberChange,
    Membership,
    TeamAction,
    TeamRole,
    allows,
    check_member_change,
    successor,
    team_name,
)

OW, MA, ME, V = TeamRole.OWNER, TeamRole.MAINTAINER, TeamRole.MEMBER, TeamRole.VIEWER

# Who may do what, written out by hand (issue 16) rather than derived from the ranks.
EXPECTED = {
    TeamAction.READ: {OW, MA, ME, V},
    TeamAction.SHARE: {OW, MA, ME},
    TeamAction.EDIT_OWN_SHARED: {OW, MA, ME},
    TeamAction.EDIT_ANY: {OW, MA},
    TeamAction.MANAGE_MEMBERS: {OW, MA},
    TeamAction.RENAME: {OW, MA},
    TeamAction.DELETE: {OW},
    TeamAction.TRANSFER: {OW},
}


def test_every_action_has_a_minimum_role() -> None:
    assert set(MINIMUM_ROLE) == set(TeamAction) == set(EXPECTED)


@pytest.mark.parametrize("action", list(TeamAction))
@pytest.mark.parametrize("role", list(TeamRole))
def test_the_role_table(role: TeamRole, action: TeamAction) -> None:
    assert allows(role, action) is (role in EXPECTED[action])


@pytest.mark.parametrize(
    ("raw", "expected"), [("  Backend  ", "Backend"), ("é" * 128, "é" * 128), ("a b", "a b")]
)
def test_team_names_are_trimmed(raw: str, expected: str) -> None:
    assert team_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "a" * 129, "tab\there", "nul\x00"])
def test_bad_team_names_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        team_name(raw)
    assert caught.value.field == "name"


def _change(
    actor: TeamRole,
    current: TeamRole | None,
    new: TeamRole | None,
    *,
    by_self: bool = False,
    owners: int = 1,
) -> MemberChange:
    return MemberChange(actor=actor, current=current, new=new, by_self=by_self, owners=owners)


ALLOWED = [
    _change(MA, None, ME),  # a maintainer adds a member
    _change(MA, ME, MA),  # ... promotes one to maintainer
    _change(MA, V, None),  # ... removes a viewer
    _change(OW, None, OW, owners=1),  # an owner adds another owner
    _change(OW, ME, OW),  # ... transfers ownership
    _change(OW, OW, MA, owners=2),  # an owner steps down while another owner remains
    _change(V, V, None, by_self=True),  # anyone may leave
    _change(ME, ME, None, by_self=True),
    _change(OW, OW, None, by_self=True, owners=2),  # an owner leaves, another remains
]

FORBIDDEN = [
    _change(ME, None, V),  # members do not manage members
    _change(V, ME, None),
    _change(MA, None, OW),  # only an owner grants owner
    _change(MA, OW, ME, owners=2),  # ... or touches an owner
    _change(MA, OW, None, owners=2),
    _change(ME, ME, MA, by_self=True),  # nobody promotes themselves
    _change(V, V, ME, by_self=True),
]

CONFLICTS = [
    _change(OW, OW, MA, by_self=True, owners=1),  # the last owner cannot step down
    _change(OW, OW, None, by_self=True, owners=1),  # ... nor leave
]


@pytest.mark.parametrize("change", ALLOWED)
def test_allowed_member_changes(change: MemberChange) -> None:
    check_member_change(change)


@pytest.mark.parametrize("change", FORBIDDEN)
def test_forbidden_member_changes(change: MemberChange) -> None:
    with pytest.raises(Forbidden):
        check_member_change(change)


@pytest.mark.parametrize("change", CONFLICTS)
def test_a_team_keeps_its_last_owner(change: MemberChange) -> None:
    with pytest.raises(Conflict):
        check_member_change(change)


def _members(*people: tuple[str, TeamRole]) -> list[Membership]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Membership("t", user_id, role, added_at=start + timedelta(days=i))
        for i, (user_id, role) in enumerate(people)
    ]


@pytest.mark.parametrize(
    ("people", "heir"),
    [
        # The highest role wins over seniority; among equals the longest-standing.
        ((("gone", OW), ("early", ME), ("late", MA)), "late"),
        ((("gone", OW), ("m1", MA), ("m2", MA)), "m1"),
        ((("v1", V), ("gone", OW), ("me", ME)), "me"),
        ((("gone", OW), ("v1", V)), "v1"),  # a viewer still keeps the team alive
        ((("gone", OW),), None),  # nobody left: the team goes
    ],
)
def test_the_successor_of_a_deleted_only_owner(
    people: tuple[tuple[str, TeamRole], ...], heir: str | None
) -> None:
    chosen = successor(_members(*people), "gone")
    assert (chosen.user_id if chosen else None) == heir
