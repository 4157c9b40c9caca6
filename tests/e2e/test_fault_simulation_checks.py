"""The fault simulation's both-sides check (issue 20) on made-up end states: it must see a
duplicate, a lost edit and diverging sides, and accept a merge or a backup."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.fault_simulation import BOTH_MARK, BothEdit, Simulation

ORIGIN = "# pieces new 0f0f"
ORIGINAL = f"{ORIGIN}\nvalue = 1\n"
P_LINE, A_LINE = f"{BOTH_MARK}pieces aaaa", f"{BOTH_MARK}aiwfe bbbb"
MERGED = f"{P_LINE}\n{ORIGINAL}{A_LINE}\n"


def _problems(tmp: Path, sides: dict[str, list[str]], backups: list[str]) -> list[str]:
    simulation = Simulation(tmp, 1, users=1)
    user = simulation.users[0]
    simulation.expected.both.append(BothEdit(user, ORIGIN, [P_LINE, A_LINE]))
    return simulation._compare_both(user, sides, backups)


def _same(*contents: str) -> dict[str, list[str]]:
    return {side: list(contents) for side in ("pieces", "aiwfe", "ours")}


def test_a_merge_keeping_both_edits_passes(tmp_path: Path) -> None:
    assert _problems(tmp_path, _same(MERGED, "# other\n"), []) == []


def test_an_edit_kept_only_in_a_backup_passes(tmp_path: Path) -> None:
    current = f"{P_LINE}\n{ORIGINAL}"
    assert _problems(tmp_path, _same(current), [f"{ORIGINAL}{A_LINE}\n"]) == []


def test_a_lost_edit_is_a_violation(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _same(f"{P_LINE}\n{ORIGINAL}"), [])
    assert len(problems) == 1 and "bbbb lost" in problems[0]


def test_a_duplicate_descendant_is_a_violation(tmp_path: Path) -> None:
    sides = _same(MERGED)
    sides["aiwfe"].append(f"{ORIGINAL}{A_LINE}\n")
    problems = _problems(tmp_path, sides, [])
    assert any("x2 on aiwfe" in p for p in problems), problems


def test_diverging_sides_are_a_violation(tmp_path: Path) -> None:
    sides = _same(MERGED)
    sides["pieces"] = [f"{P_LINE}\n{ORIGINAL}"]
    problems = _problems(tmp_path, sides, [f"{ORIGINAL}{A_LINE}\n"])
    assert any("different versions" in p for p in problems), problems
