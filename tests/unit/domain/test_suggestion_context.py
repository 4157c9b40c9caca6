"""The pure suggestion decisions: context normalisation and hash, feedback, the final cut."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pieces_integration.domain.model import SuggestionFeedback
from pieces_integration.domain.ranking import (
    SuggestionCandidate,
    SuggestionContext,
    SuggestionKind,
)
from pieces_integration.domain.suggestion_context import (
    POSITIVE_ACTIONS,
    FeedbackAction,
    SuggestContext,
    choose_suggestions,
    cosine,
    feedback_adjustments,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_feedback_actions_keep_their_wire_values() -> None:
    assert [a.value for a in FeedbackAction] == ["shown", "accepted", "copied", "dismissed"]
    assert POSITIVE_ACTIONS == {"accepted", "copied"}


def test_a_request_context_is_normalised_and_hashed_by_the_work_not_the_spelling() -> None:
    raw = {"currentTask": "  Parse YAML ", "keywords": ["yaml", "Config"], "activeFile": "a/b.py"}
    context = SuggestContext.parse(raw)
    assert context.current_task == "Parse YAML" and context.active_file == "a/b.py"
    assert context.text() == "Parse YAML yaml Config b.py"
    same_work = SuggestContext.parse({"current_task": "parse yaml", "keywords": ["config", "YAML"]})
    assert context.hash() == same_work.hash()
    assert context.hash() != SuggestContext.parse({"current_task": "parse toml"}).hash()


def feedback(action: str, context_hash: str, suggestion_id: str = "asset:a1") -> SuggestionFeedback:
    return SuggestionFeedback("u1", suggestion_id, action, context_hash=context_hash)


@pytest.mark.parametrize(
    ("actions", "context_hash", "delta", "reason"),
    [
        (["accepted"], "here", 0.1, "you used it in this context"),
        (["copied", "accepted", "accepted"], "here", 0.2, "you used it in this context"),
        (["dismissed"], "here", -0.25, "you dismissed it in this context"),
        (["dismissed"] * 3, "here", -0.5, "you dismissed it in this context"),
        (["accepted"], "elsewhere", 0.02, "you used it before"),
        (["dismissed"] * 4, "elsewhere", -0.05, "you dismissed it before"),
    ],
)
def test_feedback_moves_the_score_more_in_the_same_context(
    actions: list[str], context_hash: str, delta: float, reason: str
) -> None:
    adjustments = feedback_adjustments([feedback(a, context_hash) for a in actions], "here")
    got_delta, got_reason = adjustments["asset:a1"]
    assert got_delta == pytest.approx(delta) and got_reason == reason


def test_being_shown_is_no_feedback() -> None:
    assert feedback_adjustments([feedback("shown", "here")], "here") == {}


def candidate(key: str, similarity: float, text: str) -> SuggestionCandidate:
    return SuggestionCandidate(
        key=key,
        kind=SuggestionKind.CODE_SNIPPET,
        source="hybrid",
        title=key,
        text=text,
        similarity=similarity,
    )


def test_choose_applies_feedback_then_thresholds_and_cuts() -> None:
    strong = candidate("asset:strong", 0.9, "def strong(): ...")
    also = candidate("asset:also", 0.9, "def also_strong(): return 2")
    weak = candidate("asset:weak", 0.1, "unrelated text entirely")
    context = SuggestionContext(now=NOW)
    plain = choose_suggestions([strong, also, weak], context, {}, min_score=0.3, size=5)
    assert {s.candidate.key for s in plain} == {"asset:strong", "asset:also"}
    dismissed = {"asset:strong": (-0.5, "you dismissed it in this context")}
    chosen = choose_suggestions([strong, also, weak], context, dismissed, min_score=0.3, size=5)
    assert [s.candidate.key for s in chosen] == ["asset:also"]
    assert choose_suggestions([strong, also], context, {}, min_score=0.0, size=1)[0].score > 0


def test_cosine_of_a_zero_vector_is_zero() -> None:
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
