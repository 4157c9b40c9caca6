"""Ranking: hybrid search fusion, suggestion scoring, thresholds, ties and de-duplication.

Pure functions over plain values; embeddings and vector look-ups stay behind ports.

Hybrid fusion (search)
    score = cosine(query, asset) + alpha * bm25 / (bm25 + saturation)

    The dense cosine is already on a fixed scale, so it is used as is. BM25 is unbounded and
    its scale varies per query (long queries score higher), so it is squashed by
    `s / (s + c)` into [0, 1): a few strong keyword hits add up to `alpha`, and one more
    matching term matters less the more already match. An asset that the dense prefetch did
    not return (or that has no vector yet, because the semantic indexer has not reached it)
    takes `dense_floor` as its cosine, so keyword-only matches still rank, below good
    semantic ones. The form is expressible as one Qdrant formula query over two prefetches,
    so both vector-store adapters fuse inside the engine. The parameters were chosen on the
    tuning split of `bench/quality_stdlib.py` (disjoint from the reported queries); plain
    reciprocal-rank fusion lost to MiniLM alone there because rank fusion throws away how
    much better the first hit is than the tenth.

Suggestion score (spec 4.4, one function for every source)
    total = 0.60 semantic + 0.15 language + 0.10 tags + 0.08 usage + 0.07 recency

    See `score_suggestion` for each component and its reason. The weights of everything
    except similarity add up to 0.40, below the default threshold 0.6: an item the user
    uses often, in the right language and with matching tags, is still not suggested unless
    it is also about the current work.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pieces_integration.domain.languages import canonical_language

# ---------------------------------------------------------------------------------------
# Hybrid search fusion


@dataclass(frozen=True, slots=True)
class HybridFusion:
    """Parameters of `fuse_scores` (and of the adapters' equivalent formula query)."""

    # Tuned on the 500 tune queries of bench/quality_stdlib.py (grid over alpha, saturation,
    # floor). Near-linear in BM25 (saturation 64 >> typical scores of 5-30) but bounded: the
    # keyword tier can add at most `alpha` to a cosine.
    alpha: float = 1.0
    saturation: float = 64.0
    dense_floor: float = 0.2
    prefetch_limit: int = 100


DEFAULT_FUSION = HybridFusion()


def fused_score(dense: float | None, sparse: float | None, fusion: HybridFusion) -> float:
    cosine = fusion.dense_floor if dense is None else dense
    keyword = 0.0 if not sparse or sparse <= 0 else sparse / (sparse + fusion.saturation)
    return cosine + fusion.alpha * keyword


def fuse_scores(
    dense: Mapping[str, float],
    sparse: Mapping[str, float],
    fusion: HybridFusion = DEFAULT_FUSION,
    limit: int = 10,
) -> list[tuple[str, float]]:
    """Fuse the two candidate lists (key -> raw score); best first, ties by key."""
    keys = set(dense) | set(sparse)
    scored = [(key, fused_score(dense.get(key), sparse.get(key), fusion)) for key in keys]
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:limit]


def fuse_within_embedded(
    keyword: Sequence[str], hybrid: Sequence[str], embedded: Collection[str]
) -> list[str]:
    """The order while the semantic tier fills (#18): the keyword tier's, except that the
    places held by embedded items are refilled with the embedded items in hybrid order.

    An item without a vector keeps exactly its keyword place, so when it is the one wanted the
    answer is as good as keyword search alone; when an embedded item is, the vectors move it
    up among the embedded ones. Fusing everything in one score instead let every embedded
    item's real cosine beat the missing ones (MRR@10 0.26 against 0.47 for keywords alone at
    25 % embedded, bench/quality_indexing.py). Embedded hybrid items the keyword list does not
    hold follow at the end; with everything embedded this is the hybrid order.
    """
    ranked_embedded = [key for key in hybrid if key in embedded]
    refill = iter(ranked_embedded)
    placed: list[str] = []
    seen: set[str] = set()
    for key in keyword:
        if key not in embedded:
            placed.append(key)
            seen.add(key)
            continue
        chosen = next((c for c in refill if c not in seen), None)
        if chosen is None and key not in seen:
            chosen = key  # the hybrid list ran out: keep the keyword item in its place
        if chosen is not None:
            placed.append(chosen)
            seen.add(chosen)
    placed.extend(key for key in ranked_embedded if key not in seen)
    return placed


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]],
    *,
    k: float = 60.0,
    weights: Sequence[float] | None = None,
    limit: int = 10,
) -> list[tuple[str, float]]:
    """Plain (optionally weighted) RRF, kept as the benchmark's baseline."""
    totals: dict[str, float] = {}
    for index, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[index]
        for rank, key in enumerate(ranking, start=1):
            totals[key] = totals.get(key, 0.0) + weight / (k + rank)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]


# ---------------------------------------------------------------------------------------
# Suggestions


class SuggestionKind(StrEnum):
    CODE_SNIPPET = "code_snippet"
    TASK = "task"
    DOCUMENTATION = "documentation"
    TEMPLATE = "template"


class SuggestionAction(StrEnum):
    COPY = "copy"
    INSERT = "insert"
    CREATE_TASK = "create_task"
    OPEN_FILE = "open_file"


@dataclass(frozen=True, slots=True)
class SuggestionCandidate:
    """One item any source proposes; `similarity` is the cosine to the user's context."""

    key: str
    kind: SuggestionKind
    source: str  # "pieces" | "aiwfe" | "hybrid"
    title: str
    text: str
    similarity: float
    language: str | None = None
    tags: tuple[str, ...] = ()
    usage_count: int = 0
    last_used: datetime | None = None
    file_path: str | None = None


@dataclass(frozen=True, slots=True)
class SuggestionContext:
    now: datetime
    language: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScoredSuggestion:
    candidate: SuggestionCandidate
    score: float
    components: Mapping[str, float]
    reasons: tuple[str, ...]
    actions: tuple[SuggestionAction, ...] = field(default=())


WEIGHTS: Mapping[str, float] = {
    "semantic": 0.60,
    "language": 0.15,
    "tags": 0.10,
    "usage": 0.08,
    "recency": 0.07,
}
# MiniLM cosines of unrelated texts sit around 0-0.15; paraphrases reach 0.65 and above.
SIMILARITY_FLOOR = 0.15
SIMILARITY_CEILING = 0.65
TAG_MATCHES_FOR_FULL_CREDIT = 2
USAGE_FOR_FULL_CREDIT = 50
RECENCY_HALF_LIFE_DAYS = 7.0


def normalise_language(language: str | None) -> str | None:
    """The label ranking compares: the one vocabulary's canonical name."""
    return canonical_language(language)


def _normalise_term(term: str) -> str:
    return re.sub(r"[\s_\-]+", "-", term.strip().lower())


def semantic_component(similarity: float) -> float:
    """Cosine rescaled so 'unrelated' is 0 and 'says the same thing' is 1."""
    span = SIMILARITY_CEILING - SIMILARITY_FLOOR
    return min(1.0, max(0.0, (similarity - SIMILARITY_FLOOR) / span))


def language_component(item: str | None, context: str | None) -> float:
    """1 same language, 0 a different one, 0.5 when either side does not say.

    Unknown is neutral rather than a mismatch: prose, templates and documentation often
    have no language and should not lose to every code snippet for that reason.
    """
    a, b = normalise_language(item), normalise_language(context)
    if a is None or b is None:
        return 0.5
    return 1.0 if a == b else 0.0


def matching_tags(candidate: SuggestionCandidate, keywords: Iterable[str]) -> tuple[str, ...]:
    """Context keywords equal to one of the item's tags or title words (normalised).

    Whole-term equality, not substring tests: the spec's `k.includes(ck) || ck.includes(k)`
    makes "a" or "go" match nearly everything (and its usage scorer's `ck.includes(ck)` is
    always true, DEVIATIONS 11).
    """
    own = {_normalise_term(tag) for tag in candidate.tags if tag.strip()}
    own.update(_normalise_term(w) for w in re.findall(r"[A-Za-z0-9_+#.\-]+", candidate.title))
    matched = []
    for keyword in keywords:
        term = _normalise_term(keyword)
        if term and term in own and term not in matched:
            matched.append(term)
    return tuple(matched)


def tags_component(matches: int) -> float:
    return min(1.0, matches / TAG_MATCHES_FOR_FULL_CREDIT)


def usage_component(usage_count: int) -> float:
    """Logarithmic: the 10th use says more than the 100th; full credit at 50 uses."""
    if usage_count <= 0:
        return 0.0
    return min(1.0, math.log1p(usage_count) / math.log1p(USAGE_FOR_FULL_CREDIT))


def recency_component(last_used: datetime | None, now: datetime) -> float:
    """Exponential decay with a one-week half-life; never used scores 0.

    A smooth decay instead of the spec's step at 7 days, so yesterday beats last week and
    two items used 6 and 8 days ago are not a whole step apart.
    """
    if last_used is None:
        return 0.0
    days = max(0.0, (now - last_used).total_seconds() / 86_400)
    return float(0.5 ** (days / RECENCY_HALF_LIFE_DAYS))


def actions_for(candidate: SuggestionCandidate) -> tuple[SuggestionAction, ...]:
    if candidate.kind is SuggestionKind.CODE_SNIPPET:
        actions = [SuggestionAction.COPY, SuggestionAction.INSERT, SuggestionAction.CREATE_TASK]
    elif candidate.kind is SuggestionKind.TEMPLATE:
        actions = [SuggestionAction.CREATE_TASK, SuggestionAction.COPY]
    elif candidate.kind is SuggestionKind.TASK:
        actions = [SuggestionAction.CREATE_TASK]
    else:
        actions = [SuggestionAction.COPY]
    if candidate.file_path:
        actions.append(SuggestionAction.OPEN_FILE)
    return tuple(actions)


def score_suggestion(
    candidate: SuggestionCandidate, context: SuggestionContext
) -> ScoredSuggestion:
    """Score one candidate in [0, 1] with the reasons a user can read."""
    tags = matching_tags(candidate, context.keywords)
    components = {
        "semantic": semantic_component(candidate.similarity),
        "language": language_component(candidate.language, context.language),
        "tags": tags_component(len(tags)),
        "usage": usage_component(candidate.usage_count),
        "recency": recency_component(candidate.last_used, context.now),
    }
    total = sum(WEIGHTS[name] * value for name, value in components.items())
    reasons = [f"similar to your current context ({candidate.similarity:.2f})"]
    language = normalise_language(candidate.language)
    if components["language"] == 1.0:
        reasons.append(f"same language ({language})")
    elif components["language"] == 0.0:
        reasons.append(f"different language ({language})")
    if tags:
        reasons.append("matches " + ", ".join(tags))
    if candidate.usage_count > 0:
        times = "time" if candidate.usage_count == 1 else "times"
        reasons.append(f"used {candidate.usage_count} {times}")
    if candidate.last_used is not None:
        days = max(0, int((context.now - candidate.last_used).total_seconds() // 86_400))
        reasons.append("used today" if days == 0 else f"last used {days} days ago")
    return ScoredSuggestion(
        candidate=candidate,
        score=round(min(1.0, total), 6),
        components=components,
        reasons=tuple(reasons),
        actions=actions_for(candidate),
    )


def _tie_key(item: ScoredSuggestion) -> tuple[float, int, float, str]:
    last = item.candidate.last_used
    return (
        -item.score,
        -item.candidate.usage_count,
        -(last.timestamp() if last is not None else float("-inf")),
        item.candidate.key,
    )


def rank_suggestions(items: Iterable[ScoredSuggestion]) -> list[ScoredSuggestion]:
    """Best first; equal scores by usage, then by most recent use, then by key (stable)."""
    return sorted(items, key=_tie_key)


# ---------------------------------------------------------------------------------------
# Duplicates

_SHINGLE = 3
NEAR_DUPLICATE_JACCARD = 0.8


def normalised_tokens(text: str) -> list[str]:
    """Lowercased words and symbols; whitespace, blank lines and comment markers ignored."""
    return re.findall(r"[a-z0-9_]+|[^\sa-z0-9_#]", text.lower())


def exact_fingerprint(text: str) -> str:
    """Same content up to whitespace and case."""
    return hashlib.sha256(" ".join(normalised_tokens(text)).encode()).hexdigest()


def shingles(text: str, size: int = _SHINGLE) -> frozenset[tuple[str, ...]]:
    tokens = normalised_tokens(text)
    if len(tokens) <= size:
        return frozenset({tuple(tokens)}) if tokens else frozenset()
    return frozenset(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def remove_duplicates(
    ranked: Sequence[ScoredSuggestion],
    threshold: float = NEAR_DUPLICATE_JACCARD,
    *,
    limit: int | None = None,
) -> list[ScoredSuggestion]:
    """Keep the first (best-ranked) of each group of exact or near-duplicate contents.

    Near duplicates are pairs whose 3-token shingle sets have Jaccard similarity at least
    `threshold`: the same snippet renamed, reformatted or with a line changed, which
    different sources (Pieces, AIWFE, a past context) often return for one piece of code.
    Candidates per request are a few dozen, so all pairs are compared directly; with `limit`
    it stops once that many are kept (what follows could only be dropped or cut).
    """
    kept: list[ScoredSuggestion] = []
    seen_exact: set[str] = set()
    kept_shingles: list[frozenset[tuple[str, ...]]] = []
    for item in ranked:
        fingerprint = exact_fingerprint(item.candidate.text)
        if fingerprint in seen_exact:
            continue
        own = shingles(item.candidate.text)
        if any(jaccard(own, other) >= threshold for other in kept_shingles):
            continue
        seen_exact.add(fingerprint)
        kept_shingles.append(own)
        kept.append(item)
        if limit is not None and len(kept) >= limit:
            break
    return kept


def select_suggestions(
    candidates: Iterable[SuggestionCandidate],
    context: SuggestionContext,
    *,
    min_relevance_score: float,
    max_suggestions: int,
) -> list[ScoredSuggestion]:
    """Score, rank, drop duplicates, apply the threshold and the limit (spec 4.4)."""
    ranked = rank_suggestions(score_suggestion(c, context) for c in candidates)
    # Ranked by score first, so an item under the threshold only precedes others under it:
    # dropping those before the duplicate check changes nothing but the work done.
    eligible = [s for s in ranked if s.score >= min_relevance_score]
    return remove_duplicates(eligible, limit=max_suggestions)
