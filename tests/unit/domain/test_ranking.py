from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pieces_integration.domain.ranking import (
    WEIGHTS,
    HybridFusion,
    SuggestionAction,
    SuggestionCandidate,
    SuggestionContext,
    SuggestionKind,
    fuse_scores,
    fused_score,
    rank_suggestions,
    reciprocal_rank_fusion,
    remove_duplicates,
    score_suggestion,
    select_suggestions,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CEILING = 0.65  # cosine that earns the full semantic component
FLOOR = 0.15


def candidate(key: str = "k", **overrides: object) -> SuggestionCandidate:
    values: dict[str, object] = {
        "key": key,
        "kind": SuggestionKind.CODE_SNIPPET,
        "source": "pieces",
        "title": "snippet",
        "text": f"unique text of {key}",
        "similarity": CEILING,
    }
    values.update(overrides)
    return SuggestionCandidate(**values)  # type: ignore[arg-type]


def context(**overrides: object) -> SuggestionContext:
    values: dict[str, object] = {"now": NOW, "language": None, "keywords": ()}
    values.update(overrides)
    return SuggestionContext(**values)  # type: ignore[arg-type]


def score(c: SuggestionCandidate, ctx: SuggestionContext | None = None) -> float:
    return score_suggestion(c, ctx or context()).score


# --- components, one at a time --------------------------------------------------------


def test_weights_sum_to_one_and_non_semantic_part_is_below_threshold() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert 1.0 - WEIGHTS["semantic"] < 0.6


@pytest.mark.parametrize(
    ("similarity", "semantic"),
    [(-0.3, 0.0), (FLOOR, 0.0), (0.40, 0.5), (CEILING, 1.0), (0.95, 1.0)],
)
def test_semantic_component_rescales_cosine(similarity: float, semantic: float) -> None:
    # Unknown language on both sides is neutral (0.5 of its weight).
    expected = WEIGHTS["semantic"] * semantic + WEIGHTS["language"] * 0.5
    assert score(candidate(similarity=similarity)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("item", "ctx", "component"),
    [
        ("python", "python", 1.0),
        ("py", "Python", 1.0),  # aliases and case
        ("TypeScript", "ts", 1.0),
        ("go", "python", 0.0),
        (None, "python", 0.5),  # unknown is neutral, not a mismatch
        ("python", None, 0.5),
    ],
)
def test_language_match(item: str | None, ctx: str | None, component: float) -> None:
    scored = score_suggestion(candidate(language=item), context(language=ctx))
    assert scored.components["language"] == component
    assert scored.score == pytest.approx(WEIGHTS["semantic"] + WEIGHTS["language"] * component)


def test_tags_match_whole_terms_only() -> None:
    item = candidate(tags=("go", "http-client"), title="Retry helper")
    ctx = context(keywords=("google", "HTTP_client"))
    scored = score_suggestion(item, ctx)
    # "google" must not match "go" (the spec's substring test would), "HTTP_client" does.
    assert scored.components["tags"] == 0.5
    assert "matches http-client" in scored.reasons


def test_tags_full_credit_at_two_matches_and_title_words_count() -> None:
    item = candidate(tags=("retry",), title="Exponential backoff")
    one = score_suggestion(item, context(keywords=("retry",))).components["tags"]
    two = score_suggestion(item, context(keywords=("retry", "backoff"))).components["tags"]
    three = score_suggestion(item, context(keywords=("retry", "backoff", "exponential")))
    assert (one, two, three.components["tags"]) == (0.5, 1.0, 1.0)


def test_spec_usage_bug_is_not_reproduced() -> None:
    """DEVIATIONS 11: `ck.includes(ck)` made every keyword list match every item."""
    item = candidate(tags=("database",), title="Connection pool")
    assert score_suggestion(item, context(keywords=("frontend",))).components["tags"] == 0.0


@pytest.mark.parametrize(
    ("uses", "component"),
    [(0, 0.0), (1, 0.1763), (10, 0.6099), (50, 1.0), (500, 1.0)],
)
def test_usage_is_logarithmic_and_capped(uses: int, component: float) -> None:
    scored = score_suggestion(candidate(usage_count=uses), context())
    assert scored.components["usage"] == pytest.approx(component, abs=1e-4)


def test_more_usage_never_lowers_the_score() -> None:
    scores = [score(candidate(usage_count=n)) for n in (0, 1, 2, 5, 20, 100)]
    assert scores == sorted(scores)


@pytest.mark.parametrize(
    ("age", "component"),
    [(None, 0.0), (timedelta(0), 1.0), (timedelta(days=7), 0.5), (timedelta(days=14), 0.25)],
)
def test_recency_halves_every_week(age: timedelta | None, component: float) -> None:
    last = None if age is None else NOW - age
    scored = score_suggestion(candidate(last_used=last), context())
    assert scored.components["recency"] == pytest.approx(component)


def test_total_combines_every_component() -> None:
    item = candidate(
        similarity=0.40, language="python", tags=("retry",), usage_count=50, last_used=NOW
    )
    scored = score_suggestion(item, context(language="python", keywords=("retry",)))
    expected = 0.60 * 0.5 + 0.15 * 1.0 + 0.10 * 0.5 + 0.08 * 1.0 + 0.07 * 1.0
    assert scored.score == pytest.approx(expected)


# --- threshold, limit, ties -----------------------------------------------------------


def test_popular_but_unrelated_items_stay_below_the_threshold() -> None:
    item = candidate(
        similarity=FLOOR, language="python", tags=("a", "b"), usage_count=1000, last_used=NOW
    )
    ctx = context(language="python", keywords=("a", "b"))
    assert score(item, ctx) == pytest.approx(0.40)
    assert select_suggestions([item], ctx, min_relevance_score=0.6, max_suggestions=10) == []


def test_threshold_is_inclusive_and_limit_applies_after_it() -> None:
    # Two tags (0.10) + neutral language (0.075) + semantic 0.425 = 0.6 exactly.
    at = candidate("at", similarity=FLOOR + (CEILING - FLOOR) * 0.425 / 0.60, tags=("x", "y"))
    ctx = context(keywords=("x", "y"))
    assert score(at, ctx) == pytest.approx(0.6, abs=1e-6)
    below = candidate("below", similarity=0.50, tags=("x", "y"))
    chosen = select_suggestions([below, at], ctx, min_relevance_score=0.6, max_suggestions=10)
    assert [s.candidate.key for s in chosen] == ["at"]
    many = [candidate(f"c{i}", similarity=0.64 - i * 0.005, tags=("x", "y")) for i in range(15)]
    top = select_suggestions(many, ctx, min_relevance_score=0.6, max_suggestions=10)
    assert [s.candidate.key for s in top] == [f"c{i}" for i in range(10)]


def test_ties_broken_by_usage_then_recency_then_key() -> None:
    # Same score: the usage/recency components are equal because both are capped/absent,
    # so only the tie-breakers differ.
    base = {"similarity": CEILING}
    heavy = candidate("heavy", usage_count=900, **base)
    light = candidate("light", usage_count=60, **base)
    recent = candidate("recent", usage_count=60, last_used=NOW - timedelta(days=400), **base)
    older = candidate("older", usage_count=60, last_used=NOW - timedelta(days=500), **base)
    items = [older, light, recent, heavy]
    scores = {score(c) for c in items}
    assert len({round(s, 3) for s in scores}) == 1
    ranked = select_suggestions(items, context(), min_relevance_score=0.0, max_suggestions=10)
    assert [s.candidate.key for s in ranked] == ["heavy", "recent", "older", "light"]
    twins = [candidate("b"), candidate("a")]
    ranked = select_suggestions(twins, context(), min_relevance_score=0.0, max_suggestions=10)
    assert [s.candidate.key for s in ranked] == ["a", "b"]


# --- reasoning and actions ------------------------------------------------------------


def test_reasons_and_actions() -> None:
    item = candidate(
        language="python",
        usage_count=3,
        last_used=NOW - timedelta(days=2),
        file_path="src/app.py",
    )
    scored = score_suggestion(item, context(language="python"))
    assert scored.reasons[0].startswith("similar to your current context")
    assert "same language (python)" in scored.reasons
    assert "used 3 times" in scored.reasons
    assert "last used 2 days ago" in scored.reasons
    assert scored.actions == (
        SuggestionAction.COPY,
        SuggestionAction.INSERT,
        SuggestionAction.CREATE_TASK,
        SuggestionAction.OPEN_FILE,
    )
    template = score_suggestion(candidate(kind=SuggestionKind.TEMPLATE), context())
    assert template.actions == (SuggestionAction.CREATE_TASK, SuggestionAction.COPY)


# --- duplicates -----------------------------------------------------------------------

SNIPPET = """
def retry(func, attempts=3, delay=0.5):
    for attempt in range(attempts):
        try:
            return func()
        except OSError:
            time.sleep(delay * 2 ** attempt)
    raise RuntimeError("gave up")
"""


def test_exact_duplicates_up_to_whitespace_are_removed() -> None:
    a = candidate("a", text=SNIPPET)
    b = candidate("b", text="\n\n" + SNIPPET.replace("    ", "\t").upper())
    kept = remove_duplicates([score_suggestion(a, context()), score_suggestion(b, context())])
    assert [s.candidate.key for s in kept] == ["a"]


def test_near_duplicates_are_removed_keeping_the_better_ranked() -> None:
    edited = SNIPPET.replace("delay=0.5", "delay=1.0")
    better = candidate("pieces", text=edited, similarity=0.6)
    worse = candidate("aiwfe", text=SNIPPET, similarity=0.5)
    other = candidate(
        "other",
        text="def parse_date(text):\n    return datetime.fromisoformat(text)",
        similarity=0.55,
    )
    chosen = select_suggestions(
        [worse, other, better], context(), min_relevance_score=0.0, max_suggestions=10
    )
    assert [s.candidate.key for s in chosen] == ["pieces", "other"]


def test_similar_but_different_code_is_kept() -> None:
    different = SNIPPET.replace("OSError", "TimeoutError").replace("range(attempts)", "loop()")
    different = different.replace("gave up", "too many failures, stopping now")
    items = [candidate("a", text=SNIPPET), candidate("b", text=different + "\nlog(done)\n")]
    chosen = select_suggestions(items, context(), min_relevance_score=0.0, max_suggestions=10)
    assert {s.candidate.key for s in chosen} == {"a", "b"}


# --- hybrid search fusion -------------------------------------------------------------


def test_fused_score_formula() -> None:
    fusion = HybridFusion(alpha=0.4, saturation=8.0, dense_floor=0.1)
    assert fused_score(0.5, 8.0, fusion) == pytest.approx(0.5 + 0.4 * 0.5)
    assert fused_score(0.5, None, fusion) == pytest.approx(0.5)
    assert fused_score(None, 8.0, fusion) == pytest.approx(0.1 + 0.2)  # not embedded yet


def test_fuse_scores_lets_strong_keywords_overtake_a_small_dense_lead() -> None:
    fusion = HybridFusion(alpha=0.4, saturation=4.0, dense_floor=0.0)
    dense = {"semantic": 0.62, "named": 0.55}
    sparse = {"named": 12.0, "keyword_only": 20.0}
    ranked = [key for key, _ in fuse_scores(dense, sparse, fusion)]
    assert ranked == ["named", "semantic", "keyword_only"]


def test_reciprocal_rank_fusion_baseline() -> None:
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=1)
    assert [key for key, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 3 + 1 / 2)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a = 1", "a = 1\n", "b = 2", "def f():\n    return 1", "x y z w"]),
            st.floats(min_value=0.0, max_value=1.0),
            st.integers(min_value=0, max_value=50),
        ),
        max_size=25,
    ),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=1, max_value=6),
)
def test_selection_equals_dedup_then_threshold_then_limit(
    items: list[tuple[str, float, int]], minimum: float, limit: int
) -> None:
    """The fast path (threshold first, stop at the limit) picks exactly what de-duplicating
    everything, then applying the threshold and the limit would."""
    candidates = [
        candidate(f"k{i}", text=text, similarity=similarity, usage_count=uses)
        for i, (text, similarity, uses) in enumerate(items)
    ]
    ctx = context()
    reference = [
        s
        for s in remove_duplicates(rank_suggestions(score_suggestion(c, ctx) for c in candidates))
        if s.score >= minimum
    ][:limit]
    chosen = select_suggestions(candidates, ctx, min_relevance_score=minimum, max_suggestions=limit)
    assert [s.candidate.key for s in chosen] == [s.candidate.key for s in reference]
