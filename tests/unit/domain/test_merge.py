"""Three-way merge and conflict decisions, case by case and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pieces_integration.domain.merge import (
    Plan,
    Snapshot,
    Strategy,
    Versions,
    merge,
    merge_tags,
    merge_text,
    plan,
)

BASE = "def f():\n    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n"


def test_non_overlapping_edits_merge() -> None:
    ours = BASE.replace("a = 1", "a = 10")
    theirs = BASE.replace("c = 3", "c = 30")
    assert merge_text(BASE, ours, theirs) == BASE.replace("a = 1", "a = 10").replace(
        "c = 3", "c = 30"
    )


def test_same_line_edits_conflict() -> None:
    assert merge_text(BASE, BASE.replace("b = 2", "b = 5"), BASE.replace("b = 2", "b = 6")) is None


def test_adjacent_line_edits_conflict_like_git() -> None:
    ours = BASE.replace("a = 1", "a = 10")
    theirs = BASE.replace("b = 2", "b = 20")
    assert merge_text(BASE, ours, theirs) is None


def test_identical_edits_on_both_sides_merge_once() -> None:
    both = BASE.replace("b = 2", "b = 5")
    assert merge_text(BASE, both, both) == both


def test_insertions_at_both_ends_merge() -> None:
    ours = "# header\n" + BASE
    theirs = BASE + "# footer\n"
    assert merge_text(BASE, ours, theirs) == "# header\n" + BASE + "# footer\n"


@given(st.text(), st.text())
def test_one_sided_edits_always_win(base: str, other: str) -> None:
    assert merge_text(base, other, base) == other
    assert merge_text(base, base, other) == other


lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "d\n", "e\n"]), max_size=8)


@given(lines, lines, lines)
def test_a_clean_merge_contains_each_sides_change(
    base: list[str], o: list[str], t: list[str]
) -> None:
    merged = merge_text("".join(base), "".join(o), "".join(t))
    if merged is not None and "".join(o) != "".join(base) and "".join(t) == "".join(base):
        assert merged == "".join(o)


def test_tags_merge_as_sets() -> None:
    assert merge_tags(("a", "b"), ("a", "b", "c"), ("b", "d")) == ("b", "c", "d")


def _snap(content: str = BASE, **kw: object) -> Snapshot:
    return Snapshot(
        name=str(kw.get("name", "f")),
        content=content,
        description=kw.get("description"),  # type: ignore[arg-type]
        language=kw.get("language", "python"),  # type: ignore[arg-type]
        tags=tuple(kw.get("tags", ())),
    )  # type: ignore[arg-type]


def test_scalar_conflict_follows_later_change_and_keeps_loser() -> None:
    result = merge(
        Versions(_snap(), _snap(name="mine"), _snap(name="theirs"), local_is_later=False),
        Strategy.LAST_WRITER_WINS,
    )
    assert result.merged.name == "theirs"
    assert result.overruled == ("name",)
    assert result.loser is not None and result.loser.name == "mine"


def test_mergeable_changes_are_clean() -> None:
    local = _snap(BASE.replace("a = 1", "a = 10"), tags=("x",))
    remote = _snap(BASE.replace("c = 3", "c = 30"), name="renamed")
    result = merge(Versions(_snap(), local, remote, local_is_later=True), Strategy.LAST_WRITER_WINS)
    assert result.clean and result.loser is None
    assert "a = 10" in result.merged.content and "c = 30" in result.merged.content
    assert result.merged.name == "renamed" and result.merged.tags == ("x",)


@pytest.mark.parametrize(
    ("strategy", "local_is_later", "remote_side", "winner"),
    [
        (Strategy.LAST_WRITER_WINS, True, "pieces", "local"),
        (Strategy.LAST_WRITER_WINS, False, "pieces", "remote"),
        (Strategy.PREFER_PIECES, True, "pieces", "remote"),
        (Strategy.PREFER_PIECES, False, "aiwfe", "local"),
        (Strategy.PREFER_AIWFE, True, "aiwfe", "remote"),
    ],
)
def test_incompatible_edits_pick_a_whole_version_and_keep_the_other(
    strategy: Strategy, local_is_later: bool, remote_side: str, winner: str
) -> None:
    local = _snap(BASE.replace("b = 2", "b = 5"))
    remote = _snap(BASE.replace("b = 2", "b = 6"))
    result = merge(Versions(_snap(), local, remote, local_is_later, remote_side), strategy)
    assert result.winner_side == winner
    expected, lost = (local, remote) if winner == "local" else (remote, local)
    assert result.merged == expected and result.loser == lost


def test_state_hash_ignores_tag_order_but_not_content() -> None:
    assert _snap(tags=("a", "b")).state_hash() == _snap(tags=("b", "a")).state_hash()
    assert _snap("x").state_hash() != _snap("y").state_hash()


# (base, here, there, changed elsewhere) -> plan. "B" is the base state, "H"/"T" a state
# changed here/there, None a state that is gone (or a base never known).
PLANS = [
    # present on both sides
    ("B", "B", "B", False, Plan.NOTHING),  # nothing changed
    ("B", "H", "B", False, Plan.NOTHING),  # changed here only: the push carries it
    ("B", "H", "B", True, Plan.NOTHING),
    ("B", "B", "T", False, Plan.TAKE_THEIRS),  # changed there only
    ("B", "T", "T", False, Plan.AGREE),  # the same change on both sides
    ("B", "H", "T", False, Plan.MERGE),  # different changes on both sides
    (None, "H", "T", False, Plan.MERGE),  # base never known: any difference is a conflict
    (None, "T", "T", False, Plan.AGREE),
    # gone there
    ("B", "B", None, False, Plan.DELETE_HERE),
    ("B", "B", None, True, Plan.UNLINK),  # another side edited it: keep it
    ("B", "H", None, False, Plan.UNLINK),  # edited here: an edit beats a delete
    ("B", "H", None, True, Plan.UNLINK),
    # deleted here, its delete still queued
    ("B", None, "B", False, Plan.NOTHING),  # the outbox delivers the delete
    ("B", None, None, False, Plan.NOTHING),
    ("B", None, "T", False, Plan.RESTORE),  # edited there since: an edit beats a delete
    (None, None, "T", False, Plan.RESTORE),
]


@pytest.mark.parametrize(("base", "here", "there", "elsewhere", "expected"), PLANS)
def test_the_pull_plan_covers_every_case(
    base: str | None, here: str | None, there: str | None, elsewhere: bool, expected: Plan
) -> None:
    assert plan(base, here, there, changed_elsewhere=elsewhere) is expected


def test_the_plan_table_reaches_every_plan() -> None:
    assert {row[-1] for row in PLANS} == set(Plan)
