"""`ranking.fuse_within_embedded`: items without vectors keep their keyword places (#18)."""

from __future__ import annotations

from pieces_integration.domain.ranking import fuse_within_embedded


def test_unembedded_items_keep_their_keyword_place() -> None:
    keyword = ["a", "b", "c", "d"]
    hybrid = ["d", "x", "b", "a"]  # x: embedded, found by the vectors only
    order = fuse_within_embedded(keyword, hybrid, embedded={"b", "d", "x"})
    assert order == ["a", "d", "c", "x", "b"]


def test_nothing_embedded_is_the_keyword_order() -> None:
    assert fuse_within_embedded(["a", "b"], ["b", "a"], embedded=set()) == ["a", "b"]


def test_everything_embedded_is_the_hybrid_order() -> None:
    keyword = ["a", "b", "c"]
    hybrid = ["c", "a", "b", "z"]
    assert fuse_within_embedded(keyword, hybrid, embedded=set(hybrid)) == ["c", "a", "b", "z"]


def test_an_embedded_keyword_item_missing_from_the_hybrid_list_is_kept() -> None:
    assert fuse_within_embedded(["a", "b"], ["a"], embedded={"a", "b"}) == ["a", "b"]
