"""Context-aware suggestions (spec 4.4, 6.3, 7.3) and the feedback that tunes them.

A request gathers candidates from every source (`sources`), scores them with
`ranking.score_suggestion`, adjusts them by the user's feedback, then ranks (ties: usage,
then recency), de-duplicates (exact and near), thresholds and cuts
(`intelligence.min_relevance_score`, `intelligence.max_suggestions`); see
`domain.suggestion_context`.

Results are cached per user and context hash under `user:{id}:suggestions:` so user
deletion and new feedback clear them.

Scope (issue 16): `mine` (the default: what suggestions always were), `team` (assets shared
into the user's teams, source "team" with an attribution) or `all`. The team reach (the
user's teams read now, their shares from `TeamReachCache`) is taken once per request before
the cache, and its fingerprint is part of the cache key: a removed member is out of the very
next answer, an unshared asset too on this replica (within the reach cache's 2 s elsewhere).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pieces_integration.domain.auth import Principal, ensure_can_write, resolve_user
from pieces_integration.domain.bm25 import document_tokens, sparse_document
from pieces_integration.domain.errors import InvalidInput, NotFound
from pieces_integration.domain.model import Asset, SuggestionFeedback, utcnow
from pieces_integration.domain.ranking import SuggestionContext
from pieces_integration.domain.suggestion_context import (
    EXTERNAL_PREFIXES,
    POSITIVE_ACTIONS,
    FeedbackAction,
    SuggestContext,
    choose_suggestions,
    feedback_adjustments,
)
from pieces_integration.domain.teams import Scope, TeamReach
from pieces_integration.ports.infrastructure import Cache
from pieces_integration.ports.pieces import PiecesOS
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.vectors import CONTEXTS, IndexedPoint
from pieces_integration.service_layer.indexer import SearchIndex
from pieces_integration.service_layer.privacy import user_cache_prefix
from pieces_integration.service_layer.suggestions.candidates import FEEDBACK_ID_WIDTH, Library
from pieces_integration.service_layer.suggestions.payload import suggestion_payload
from pieces_integration.service_layer.suggestions.sources import CandidateSources
from pieces_integration.service_layer.team_access import TeamReachCache, may_read_asset

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 60.0
CONTEXT_KIND = "context"

AIWFEProvider = Callable[[], Any]
PiecesProvider = Callable[[str], PiecesOS | None]


class SuggestionService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        index: SearchIndex,
        cache: Cache,
        metrics: Any,
        min_relevance_score: float,
        max_suggestions: int,
        aiwfe: AIWFEProvider = lambda: None,
        pieces: PiecesProvider = lambda user_id: None,
        reach: TeamReachCache | None = None,
    ) -> None:
        self.uow = uow
        self.reach = reach or TeamReachCache()
        self.index = index
        self.cache = cache
        self.metrics = metrics
        self.min_relevance_score = min_relevance_score
        self.max_suggestions = max_suggestions
        self.aiwfe = aiwfe
        self.pieces = pieces
        self.sources = CandidateSources(uow=uow, index=index)

    # --- reading ---

    async def context_of(self, owner: str) -> SuggestContext:
        """The user's stored context, as suggestions read it."""
        async with self.uow(readonly=True) as uow:
            return SuggestContext.of_user(await uow.contexts.get(owner))

    async def for_user(
        self,
        principal: Principal,
        user_id: str | None,
        raw_context: Mapping[str, Any] | None,
        limit: int | None,
        scope: Scope = Scope.MINE,
    ) -> list[dict[str, Any]]:
        owner = resolve_user(principal, user_id)
        if raw_context is None:
            context = await self.context_of(owner)
        else:
            context = SuggestContext.parse(raw_context)
        size = max(1, min(limit or self.max_suggestions, self.max_suggestions))
        return await self.generate(owner, context, size, scope)

    async def library(self, owner: str, scope: Scope) -> Library:
        """What this request may suggest; the team reach is read now (none for `mine`)."""
        if not scope.teams:
            return Library(owner)
        async with self.uow(readonly=True) as uow:
            _, reach = await self.reach.reach(uow, owner)
        return Library(owner, own=scope.own, reach=reach)

    def _cache_key(self, library: Library, context: SuggestContext, size: int) -> str:
        key = f"{user_cache_prefix(library.owner)}suggestions:{context.hash()}:{size}"
        if library.reach == TeamReach() and library.own:
            return key  # scope mine (or no team reach): the key it always had
        scope = "all" if library.own else "team"
        return f"{key}:{scope}:{library.reach.fingerprint()}"

    async def generate(
        self, owner: str, context: SuggestContext, size: int, scope: Scope = Scope.MINE
    ) -> list[dict[str, Any]]:
        text = context.text()
        if not text:
            return []  # nothing to be relevant to: similarity carries 60 % of the score
        library = await self.library(owner, scope)
        if library.empty:
            return []  # team scope, and nothing is shared with the user
        key = self._cache_key(library, context, size)
        cached = await self.cache.get(key)
        if cached is not None:
            result: list[dict[str, Any]] = json.loads(cached)
            return result
        suggestions = await self._compute(library, context, text, size)
        await self.cache.set(key, json.dumps(suggestions).encode(), ttl=CACHE_TTL_SECONDS)
        return suggestions

    async def _compute(
        self, library: Library, context: SuggestContext, text: str, size: int
    ) -> list[dict[str, Any]]:
        owner = library.owner
        vector = await self.index.embed_one(text)
        gathered = await self.sources.gather(
            library, context, vector, pieces=self.pieces(owner), aiwfe=self.aiwfe()
        )
        async with self.uow(readonly=True) as uow:
            feedback = await uow.feedback.for_user(owner)
        chosen = choose_suggestions(
            gathered.candidates.values(),
            SuggestionContext(now=utcnow(), language=context.language, keywords=context.keywords),
            feedback_adjustments(feedback, context.hash()),
            min_score=self.min_relevance_score,
            size=size,
        )
        for item in chosen:
            self.metrics.suggestions_generated.labels(
                type=item.candidate.kind.value, source=item.candidate.source
            ).inc()
            self.metrics.suggestion_relevance.observe(item.score)
        return [suggestion_payload(s, gathered.extras[s.candidate.key]) for s in chosen]

    # --- feedback ---

    async def record_feedback(
        self,
        principal: Principal,
        suggestion_id: str,
        action: str,
        *,
        asset_id: str | None,
        raw_context: Mapping[str, Any] | None,
    ) -> SuggestionFeedback:
        ensure_can_write(principal)
        owner = resolve_user(principal, None)
        try:
            done = FeedbackAction(action)
        except ValueError:
            choices = ", ".join(FeedbackAction)
            raise InvalidInput(f"action must be one of {choices}", field="action") from None
        if asset_id is None and suggestion_id.startswith("asset:"):
            asset_id = suggestion_id.removeprefix("asset:")
        async with self.uow() as uow:
            if raw_context is None:
                context = SuggestContext.of_user(await uow.contexts.get(owner))
            else:
                context = SuggestContext.parse(raw_context)
            asset = None
            if asset_id is None and await uow.assets.get(suggestion_id) is not None:
                asset_id = suggestion_id  # a bare asset id names that asset's suggestion
            if asset_id is None and not suggestion_id.startswith(EXTERNAL_PREFIXES):
                raise NotFound("suggestion", suggestion_id)  # not an id this service issues
            if asset_id is not None:
                asset = await uow.assets.get(asset_id)
                # A team asset the caller reads is theirs to give feedback on (issue 16).
                if asset is None or not await may_read_asset(
                    uow, principal, asset.user_id, asset_id
                ):
                    raise NotFound("asset", asset_id)
            if await uow.users.get(owner) is None:
                raise NotFound("user", owner)
            feedback = SuggestionFeedback(
                user_id=owner,
                suggestion_id=suggestion_id[:FEEDBACK_ID_WIDTH],
                action=done.value,
                asset_id=asset_id,
                context_hash=context.hash(),
            )
            await uow.feedback.add(feedback)
            # Usage statistics are the owner's: a member using a team asset leaves them be.
            owned = asset is not None and (
                asset.user_id == owner or principal.role.may_act_for_others
            )
            if asset is not None and owned and done in POSITIVE_ACTIONS:
                await uow.assets.touch(asset.id, feedback.created_at)
            await uow.commit()
        self.metrics.suggestion_feedback.labels(action=done.value).inc()
        await self.cache.delete_prefix(f"{user_cache_prefix(owner)}suggestions:")
        if asset is not None and done in POSITIVE_ACTIONS and context.text():
            await self._remember_context(owner, context, asset)
        return feedback

    async def _remember_context(self, owner: str, context: SuggestContext, asset: Asset) -> None:
        """Snapshot (context -> asset) so similar future contexts suggest it again."""
        if not self.index.opened:
            return
        text = context.text()
        try:
            dense = await self.index.embed_one(text)
            await self.index.store.upsert(
                CONTEXTS,
                [
                    IndexedPoint(
                        id=f"{owner}:{context.hash()}:{asset.id}",
                        user_id=owner,
                        sparse=sparse_document(document_tokens("", text)),
                        dense=dense,
                        payload={"kind": CONTEXT_KIND, "asset_id": asset.id},
                    )
                ],
            )
        except Exception as exc:  # feedback is recorded; the snapshot is an optimisation
            log.warning("could not store the context snapshot: %r", exc)
