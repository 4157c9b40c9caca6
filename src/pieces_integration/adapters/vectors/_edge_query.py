"""Our search requests as qdrant-edge objects, and its points back as `VectorHit`s."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import qdrant_edge as q

from pieces_integration.adapters.vectors._common import hit_id, point_id
from pieces_integration.domain.bm25 import SparseVector
from pieces_integration.domain.ranking import HybridFusion
from pieces_integration.ports.vectors import USER_FIELD, SearchFilter, VectorHit


def _scope(search_filter: SearchFilter) -> Any:
    """The user's own points, the shared ones, or either (a nested `should`)."""
    own = q.FieldCondition(USER_FIELD, match=q.MatchValue(search_filter.user_id))
    if not search_filter.shared_ids:
        if not search_filter.own:
            raise ValueError("a search filter scoped to nothing; the caller returns no hits")
        return own
    shared = _shared_condition(tuple(search_filter.shared_ids))
    return q.Filter(should=[own, shared]) if search_filter.own else shared


@lru_cache(maxsize=64)  # a few sets of teams are hot; each holds its ids
def _shared_condition(shared_ids: tuple[str, ...]) -> Any:
    """The id condition of a team scope, built once per set of shares: converting hundreds
    of ids cost more than the filtered search itself (the service caches the set a moment,
    so repeated searches pass the same tuple)."""
    return q.HasIdCondition({point_id(key) for key in shared_ids})


def engine_filter(search_filter: SearchFilter) -> Any:
    must: list[Any] = [_scope(search_filter)]
    if search_filter.ids:
        must.append(q.HasIdCondition({point_id(key) for key in search_filter.ids}))
    if search_filter.languages:
        must.append(q.FieldCondition("language", match=q.MatchAny(list(search_filter.languages))))
    if search_filter.tags:
        must.append(q.FieldCondition("tags", match=q.MatchAny(list(search_filter.tags))))
    if search_filter.kinds:
        must.append(q.FieldCondition("kind", match=q.MatchAny(list(search_filter.kinds))))
    return q.Filter(must=must)


def engine_sparse(vector: SparseVector) -> Any:
    return q.SparseVector(list(vector.indices), list(vector.values))


def fusion_formula(fusion: HybridFusion) -> Any:
    """`ranking.fused_score` as an engine formula: $score[0] dense, $score[1] sparse."""
    e = q.Expression
    sparse = e.Variable("$score[1]")
    squashed = e.Div(sparse, e.Sum([sparse, e.Constant(fusion.saturation)]), 0.0)
    return q.Formula(
        e.Sum([e.Variable("$score[0]"), e.Mult([e.Constant(fusion.alpha), squashed])]),
        defaults={"$score[0]": fusion.dense_floor, "$score[1]": 0.0},
    )


def vector_hits(points: Sequence[Any]) -> list[VectorHit]:
    hits = []
    for point in points:
        payload = dict(point.payload or {})
        hits.append(
            VectorHit(id=hit_id(payload, point.id), score=float(point.score), payload=payload)
        )
    return hits
