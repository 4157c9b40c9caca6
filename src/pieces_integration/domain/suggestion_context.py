"""The suggestion decisions that need no I/O (spec 4.4, 6.3): what the user is working on,
what their past feedback says, and which scored candidates are shown.

`SuggestContext` normalises a context (the stored `UserContext` or a request body) and
hashes it, so feedback and cached results are keyed by "the same work" rather than by the
exact text. Feedback moves a candidate's `ranking.score_suggestion` score
(`feedback_adjustments`); `choose_suggestions` then ranks, de-duplicates, thresholds and
cuts.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pieces_integration.domain.model import SuggestionFeedback, UserContext
from pieces_integration.domain.ranking import (
    ScoredSuggestion,
    SuggestionCandidate,
    SuggestionContext,
    rank_suggestions,
    remove_duplicates,
    score_suggestion,
)


class FeedbackAction(StrEnum):
    """What a user did with a suggestion (spec 6.3 feedback `action`)."""

    SHOWN = "shown"
    ACCEPTED = "accepted"
    COPIED = "copied"
    DISMISSED = "dismissed"


# Using a suggestion counts for it; being shown says nothing either way.
POSITIVE_ACTIONS = frozenset({FeedbackAction.ACCEPTED, FeedbackAction.COPIED})
# Ids of suggestions that are not our assets (AIWFE templates, documentation, frequent items).
EXTERNAL_PREFIXES = ("template:", "doc:", "frequent:")


@dataclass(frozen=True, slots=True)
class SuggestContext:
    current_task: str | None = None
    active_project: str | None = None
    active_file: str | None = None
    language: str | None = None
    keywords: tuple[str, ...] = ()
    recent_queries: tuple[str, ...] = ()

    @classmethod
    def of_user(cls, context: UserContext | None) -> SuggestContext:
        if context is None:
            return cls()
        return cls(
            current_task=context.current_task,
            active_project=context.active_project,
            active_file=context.active_files[0] if context.active_files else None,
            language=context.language_preferences[0] if context.language_preferences else None,
            keywords=tuple(context.keywords),
            recent_queries=tuple(
                context.aiwfe_context.recent_queries[:3] if context.aiwfe_context else ()
            ),
        )

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SuggestContext:
        def text(name: str, *aliases: str) -> str | None:
            for key in (name, *aliases):
                value = raw.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()[:2000]
            return None

        def words(name: str, *aliases: str) -> tuple[str, ...]:
            for key in (name, *aliases):
                value = raw.get(key)
                if isinstance(value, list):
                    return tuple(str(v)[:200] for v in value if str(v).strip())[:50]
            return ()

        return cls(
            current_task=text("current_task", "currentTask"),
            active_project=text("active_project", "activeProject"),
            active_file=text("active_file", "activeFile"),
            language=text("language"),
            keywords=words("keywords"),
            recent_queries=words("recent_queries", "recentActivity")[:3],
        )

    def text(self) -> str:
        parts = [self.current_task, self.active_project, *self.keywords, *self.recent_queries]
        if self.active_file:
            parts.append(self.active_file.rsplit("/", 1)[-1])
        return " ".join(p for p in parts if p)

    def hash(self) -> str:
        canonical = {
            "task": (self.current_task or "").lower(),
            "project": (self.active_project or "").lower(),
            "keywords": sorted({k.lower() for k in self.keywords}),
            "language": (self.language or "").lower(),
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:32]


def feedback_adjustments(
    feedback: Sequence[SuggestionFeedback], context_hash: str
) -> dict[str, tuple[float, str]]:
    """Score change per suggestion id from what the user did with it before.

    In the same context: each accept/copy +0.1 (at most +0.2), each dismissal -0.25 (at
    most -0.5, so a dismissed item stays gone for that context). In other contexts the
    signal is weaker: +-0.02 each, at most +-0.05.
    """
    same: dict[str, float] = {}
    other: dict[str, float] = {}
    for item in feedback:
        if item.action == FeedbackAction.SHOWN:
            continue
        bucket = same if item.context_hash == context_hash else other
        if item.action in POSITIVE_ACTIONS:
            bucket[item.suggestion_id] = bucket.get(item.suggestion_id, 0.0) + 1
        elif item.action == FeedbackAction.DISMISSED:
            bucket[item.suggestion_id] = bucket.get(item.suggestion_id, 0.0) - 1
    result: dict[str, tuple[float, str]] = {}
    for key in set(same) | set(other):
        s, o = same.get(key, 0.0), other.get(key, 0.0)
        delta = (min(0.2, 0.1 * s) if s > 0 else max(-0.5, 0.25 * s)) if s else 0.0
        delta += max(-0.05, min(0.05, 0.02 * o))
        if delta > 0:
            reason = "you used it in this context" if s > 0 else "you used it before"
        else:
            reason = "you dismissed it in this context" if s < 0 else "you dismissed it before"
        result[key] = (delta, reason)
    return result


def clamp(value: float) -> float:
    return round(max(0.0, min(1.0, value)), 6)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def choose_suggestions(
    candidates: Iterable[SuggestionCandidate],
    context: SuggestionContext,
    adjustments: Mapping[str, tuple[float, str]],
    *,
    min_score: float,
    size: int,
) -> list[ScoredSuggestion]:
    """Score each candidate, apply the feedback, then rank, de-duplicate (exact and near),
    drop those under `min_score` and keep the best `size`."""
    scored = []
    for candidate in candidates:
        item = score_suggestion(candidate, context)
        if candidate.key in adjustments:
            delta, reason = adjustments[candidate.key]
            item = replace(item, score=clamp(item.score + delta), reasons=(*item.reasons, reason))
        scored.append(item)
    unique = remove_duplicates(rank_suggestions(scored))
    return [s for s in unique if s.score >= min_score][:size]
