"""Asset search (spec 6.1 `POST /assets/search`): hybrid relevance, filters, context boosts.

The store fuses the dense and the sparse prefetch in one query (`ranking.fused_score`), so an
asset found only by keywords (not embedded yet) still ranks. While the user's semantic tier
is incomplete, keyword and hybrid lists are merged by `ranking.fuse_within_embedded` (#18), so
a partly indexed library ranks at least as well as the keyword tier alone.
If the embedder fails, the search degrades to the keyword tier instead of failing.

An optional context nudges the order without overriding relevance: up to `CONTEXT_BOOST`
in total for the context's language, for tags / name words equal to its keywords, and for
the asset's project being the active one. Relevance differences of the fused score are
usually larger, so the context breaks near-ties rather than reordering the list.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cachetools import TTLCache

from pieces_integration.domain.auth import Principal, resolve_user
from pieces_integration.domain.bm25 import sparse_query
from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.model import Asset
from pieces_integration.domain.ranking import (
    DEFAULT_FUSION,
    HybridFusion,
    fuse_within_embedded,
    fused_score,
    normalise_language,
)
from pieces_integration.domain.teams import Scope
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.vectors import ASSETS, EMBEDDED_FIELD, SearchFilter, VectorHit
from pieces_integration.service_layer.indexer import SearchIndex
from pieces_integration.service_layer.team_access import TeamReachCache

log = logging.getLogger(__name__)

CONTEXT_BOOST = 0.1
COVERAGE_TTL = 5.0
MAX_HIGHLIGHTS = 3
HIGHLIGHT_CHARS = 200


@dataclass(frozen=True, slots=True)
class SearchContext:
    current_task: str | None = None
    active_project: str | None = None
    keywords: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    user_id: str | None = None
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    context: SearchContext | None = None
    limit: int = 10
    scope: Scope = Scope.MINE  # issue 16: the caller's own, their teams' or both


@dataclass(frozen=True, slots=True)
class SearchResult:
    asset: Asset
    score: float
    highlights: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SearchResults:
    results: list[SearchResult]
    total: int
    took_ms: float


def highlights(asset: Asset, query_terms: set[str]) -> list[str]:
    """Lines of the name, description and content that contain a query term."""
    found: list[str] = []
    # A term is a lowercased piece of a word, stemmed ("studies" -> "study"): all but its
    # last letter always occur in the lowercased line, so lines without any are skipped
    # before the costly tokenising (most lines of a long asset).
    probes = {term[:-1] if len(term) > 3 else term for term in query_terms}
    for text in (asset.name, asset.description or "", asset.content):
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            lowered = stripped.lower()
            if not any(probe in lowered for probe in probes):
                continue
            if query_terms & set(tokenize(stripped)):
                found.append(stripped[:HIGHLIGHT_CHARS])
                if len(found) >= MAX_HIGHLIGHTS:
                    return found
    return found


def context_boost(asset: Asset, context: SearchContext | None) -> float:
    if context is None:
        return 0.0
    boost = 0.0
    language = normalise_language(context.language)
    if language and normalise_language(asset.language) == language:
        boost += 0.4
    own = {t.lower() for t in asset.tags} | {
        w.lower() for w in re.findall(r"[A-Za-z0-9_+#.\-]+", asset.name)
    }
    wanted = {k.strip().lower() for k in context.keywords if k.strip()}
    if wanted:
        boost += 0.4 * min(1.0, len(own & wanted) / 2)
    project = asset.metadata.get("project")
    if context.active_project and project == context.active_project:
        boost += 0.2
    return CONTEXT_BOOST * boost


def merge_while_indexing(
    keyword: Sequence[VectorHit], hybrid: Sequence[VectorHit], fusion: HybridFusion
) -> list[VectorHit]:
    """`ranking.fuse_within_embedded` over the two hit lists (#18). Scores: the fused score
    (a keyword-only hit's as `fused_score` gives it), then handed out best first along the
    merged order, so the order stays that of the scores."""
    embedded = {
        hit.id for hit in (*keyword, *hybrid) if hit.payload.get(EMBEDDED_FIELD, True) is not False
    }
    by_id = {hit.id: hit for hit in keyword}
    score = {hit.id: fused_score(None, hit.score, fusion) for hit in keyword}
    for hit in hybrid:
        by_id[hit.id] = hit
        score[hit.id] = hit.score
    order = fuse_within_embedded([h.id for h in keyword], [h.id for h in hybrid], embedded)
    ranked_scores = sorted((score[key] for key in order), reverse=True)
    return [
        VectorHit(id=key, score=value, payload=by_id[key].payload)
        for key, value in zip(order, ranked_scores, strict=True)
    ]


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class SearchService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        index: SearchIndex,
        max_query_length: int,
        max_limit: int = 100,
        fusion: HybridFusion = DEFAULT_FUSION,
        reach: TeamReachCache | None = None,
    ) -> None:
        self.uow = uow
        self.reach = reach or TeamReachCache()
        self.index = index
        self.max_query_length = max_query_length
        self.max_limit = max_limit
        self.fusion = fusion
        self._coverage: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=COVERAGE_TTL)

    async def search(self, principal: Principal, request: SearchRequest) -> SearchResults:
        started = time.perf_counter()
        owner = resolve_user(principal, request.user_id)
        query = request.query.strip()
        if not query:
            raise InvalidInput("query must not be empty", field="query")
        if len(query) > self.max_query_length:
            raise InvalidInput(
                f"query is longer than {self.max_query_length} characters", field="query"
            )
        limit = max(1, min(request.limit, self.max_limit))
        languages = tuple(
            lang for lang in (normalise_language(x) for x in request.languages) if lang
        )
        tags = tuple(t.strip().lower() for t in request.tags if t.strip())
        team_ids, shared = await self._team_reach(owner, request.scope)
        search_filter = SearchFilter(
            user_id=owner,
            languages=languages,
            tags=tags,
            own=request.scope.own,
            shared_ids=shared,
        )
        if search_filter.empty:  # team scope, and nothing is shared with the user
            return SearchResults(results=[], total=0, took_ms=_since(started))
        terms = tokenize(query)
        # Fetch more than asked so the context boost can lift an item from just below.
        fetch = min(self.max_limit, limit * 2 if request.context else limit)
        hits = await self._hits(query, terms, search_filter, fetch)
        results = await self._results(owner, team_ids, hits, set(terms), request.context)
        results.sort(key=lambda r: (-r.score, r.asset.id))
        results = results[:limit]
        return SearchResults(results=results, total=len(results), took_ms=_since(started))

    async def _team_reach(
        self, owner: str, scope: Scope
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The user's teams now and the assets shared into them (none for `mine`): read
        per search, so a removed member stops finding a team's assets at once."""
        if not scope.teams:
            return (), ()
        async with self.uow(readonly=True) as uow:
            team_ids, reach = await self.reach.reach(uow, owner)
        return team_ids, reach.asset_ids

    async def _hits(
        self, query: str, terms: Sequence[str], search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        store = self.index.store
        sparse = sparse_query(terms)
        try:
            dense = await self.index.embed_one(query)
        except Exception as exc:  # the keyword tier still answers
            log.warning("query embedding failed, keyword search only: %s", exc)
            return await store.query_sparse(ASSETS, sparse, search_filter, limit)
        if await self._complete(search_filter.user_id):
            return await store.query_hybrid(
                ASSETS, dense, sparse, search_filter, limit, self.fusion
            )
        keyword = await store.query_sparse(ASSETS, sparse, search_filter, limit)
        hybrid = await store.query_hybrid(ASSETS, dense, sparse, search_filter, limit, self.fusion)
        return merge_while_indexing(keyword, hybrid, self.fusion)[:limit]

    async def _complete(self, user_id: str) -> bool:
        """Whether all the user's assets have vectors, counted at most once per
        `COVERAGE_TTL` seconds: two exact counts per search would cost more than the search
        at 100k assets, and a few seconds' lag only delays the switch."""
        complete = self._coverage.get(user_id)
        if complete is None:
            store = self.index.store
            total = await store.count(ASSETS, user_id)
            embedded = total if total == 0 else await store.count_dense(ASSETS, user_id)
            complete = self._coverage[user_id] = embedded >= total
        return complete

    async def _results(
        self,
        owner: str,
        team_ids: tuple[str, ...],
        hits: Sequence[VectorHit],
        terms: set[str],
        context: SearchContext | None,
    ) -> list[SearchResult]:
        ids = [h.id for h in hits]
        async with self.uow(readonly=True) as uow:
            # One query for all hits (not one per hit), scoped to the owner (and the teams).
            if team_ids:
                visible = await uow.assets.get_visible(owner, ids, team_ids)
            else:
                visible = await uow.assets.get_many(owner, ids)
        found = {a.id: a for a in visible}
        results = []
        for hit in hits:
            asset = found.get(hit.id)
            if asset is None:  # the index may briefly lag a delete; the database is the truth
                continue
            score = round(hit.score + context_boost(asset, context), 6)
            results.append(SearchResult(asset, score, highlights(asset, terms)))
        return results
