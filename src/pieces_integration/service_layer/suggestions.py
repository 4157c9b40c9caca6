"""Context-aware suggestions (spec 4.4, 6.3, 7.3) and the feedback that tunes them.

Sources, gathered concurrently; any one failing is logged and skipped (AIWFE or Pieces being
down never fails the request):
  * the user's own assets, nearest to the context in the semantic tier, plus keyword matches
    not embedded yet (their similarity is computed on the spot);
  * Pieces' own search over the user's connected Pieces OS, mapped to our copies;
  * AIWFE task templates, documentation and the user's frequently used items (only when an
    AIWFE client is configured);
  * snippets the user accepted or copied in similar past contexts (the `contexts` collection
    holds one snapshot per (context, asset) accepted).
Every candidate gets a cosine similarity to the context text, is scored by
`ranking.score_suggestion`, adjusted by feedback (`feedback_adjustments`), then ranked (ties:
usage, then recency), de-duplicated (exact and near), thresholded and cut
(`intelligence.min_relevance_score`, `intelligence.max_suggestions`).

Results are cached per user and context hash under `user:{id}:suggestions:` so user deletion
and new feedback clear them. When a user's context changes, `SuggestionPusher` recomputes and
publishes a `suggestions_updated` event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import anyio

from pieces_integration.domain.auth import Principal, ensure_can_write, ensure_owner, resolve_user
from pieces_integration.domain.bm25 import document_tokens, sparse_document, sparse_query
from pieces_integration.domain.errors import InvalidInput, NotFound
from pieces_integration.domain.model import (
    Asset,
    Role,
    Side,
    SuggestionFeedback,
    UserContext,
    utcnow,
)
from pieces_integration.domain.ranking import (
    ScoredSuggestion,
    SuggestionAction,
    SuggestionCandidate,
    SuggestionContext,
    SuggestionKind,
    rank_suggestions,
    remove_duplicates,
    score_suggestion,
)
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.event_log import LoggedEvent
from pieces_integration.ports.infrastructure import Cache
from pieces_integration.ports.pieces import PiecesOS
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.vectors import ASSETS, CONTEXTS, IndexedPoint, SearchFilter
from pieces_integration.service_layer._background import BackgroundLoop
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.indexer import SearchIndex, embedding_text
from pieces_integration.service_layer.privacy import user_cache_prefix

log = logging.getLogger(__name__)

FEEDBACK_ACTIONS = ("shown", "accepted", "copied", "dismissed")
POSITIVE = frozenset({"accepted", "copied"})
CACHE_TTL_SECONDS = 60.0
CANDIDATES_PER_SOURCE = 20
CONTEXT_KIND = "context"
# Ids of suggestions that are not our assets (AIWFE templates, documentation, frequent items).
EXTERNAL_PREFIXES = ("template:", "doc:", "frequent:")


# --- context ---------------------------------------------------------------------------------


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


# --- feedback in the ranking ----------------------------------------------------------------


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
        if item.action == "shown":
            continue
        bucket = same if item.context_hash == context_hash else other
        if item.action in POSITIVE:
            bucket[item.suggestion_id] = bucket.get(item.suggestion_id, 0.0) + 1
        elif item.action == "dismissed":
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


def _clamp(value: float) -> float:
    return round(max(0.0, min(1.0, value)), 6)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


# --- output ---------------------------------------------------------------------------------

_ACTION_LABELS = {
    SuggestionAction.COPY: "Copy",
    SuggestionAction.INSERT: "Insert",
    SuggestionAction.CREATE_TASK: "Create task",
    SuggestionAction.OPEN_FILE: "Open file",
}


@dataclass(frozen=True, slots=True)
class _Extra:
    """What the output needs beyond the ranking candidate."""

    description: str
    content: Any
    line_numbers: Any = None


def suggestion_payload(item: ScoredSuggestion, extra: _Extra) -> dict[str, Any]:
    """The spec 6.3 Suggestion object."""
    c = item.candidate
    actions = []
    for action in item.actions:
        if action is SuggestionAction.COPY:
            payload: dict[str, Any] = {"text": c.text}
        elif action is SuggestionAction.INSERT:
            payload = {"text": c.text, "language": c.language}
        elif action is SuggestionAction.CREATE_TASK:
            payload = {"title": c.title, "description": extra.description or c.text[:500]}
        else:
            payload = {"file_path": c.file_path, "line_numbers": extra.line_numbers}
        actions.append({"type": action.value, "label": _ACTION_LABELS[action], "payload": payload})
    return {
        "id": c.key,
        "type": c.kind.value,
        "title": c.title,
        "description": extra.description,
        "content": extra.content,
        "relevance_score": item.score,
        "source": c.source,
        "metadata": {
            "language": c.language,
            "tags": list(c.tags),
            "usage_count": c.usage_count,
            "last_used": c.last_used.isoformat() if c.last_used else None,
            "reasoning": "; ".join(item.reasons),
        },
        "actions": actions,
    }


# --- the engine -----------------------------------------------------------------------------

AIWFEProvider = Callable[[], Any]
PiecesProvider = Callable[[str], PiecesOS | None]


@dataclass(slots=True)
class _Gathered:
    candidates: dict[str, SuggestionCandidate]
    extras: dict[str, _Extra]
    texts_to_embed: dict[str, str]  # key -> text, similarity computed afterwards


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
    ) -> None:
        self.uow = uow
        self.index = index
        self.cache = cache
        self.metrics = metrics
        self.min_relevance_score = min_relevance_score
        self.max_suggestions = max_suggestions
        self.aiwfe = aiwfe
        self.pieces = pieces

    # --- reading ---

    async def for_user(
        self,
        principal: Principal,
        user_id: str | None,
        raw_context: Mapping[str, Any] | None,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        owner = resolve_user(principal, user_id)
        if raw_context is None:
            async with self.uow(readonly=True) as uow:
                context = SuggestContext.of_user(await uow.contexts.get(owner))
        else:
            context = SuggestContext.parse(raw_context)
        size = max(1, min(limit or self.max_suggestions, self.max_suggestions))
        return await self.generate(owner, context, size)

    def _cache_key(self, owner: str, context: SuggestContext, size: int) -> str:
        return f"{user_cache_prefix(owner)}suggestions:{context.hash()}:{size}"

    async def generate(
        self, owner: str, context: SuggestContext, size: int
    ) -> list[dict[str, Any]]:
        text = context.text()
        if not text:
            return []  # nothing to be relevant to: similarity carries 60 % of the score
        key = self._cache_key(owner, context, size)
        cached = await self.cache.get(key)
        if cached is not None:
            result: list[dict[str, Any]] = json.loads(cached)
            return result
        suggestions = await self._compute(owner, context, text, size)
        await self.cache.set(key, json.dumps(suggestions).encode(), ttl=CACHE_TTL_SECONDS)
        return suggestions

    async def _compute(
        self, owner: str, context: SuggestContext, text: str, size: int
    ) -> list[dict[str, Any]]:
        vector = await self.index.embed_one(text)
        gathered = _Gathered({}, {}, {})
        sources: list[Callable[[], Awaitable[None]]] = [
            lambda: self._own_assets(owner, context, text, vector, gathered),
            lambda: self._past_contexts(owner, vector, gathered),
        ]
        client = self.pieces(owner)
        if client is not None:
            sources.append(lambda: self._pieces(owner, client, text, gathered))
        aiwfe = self.aiwfe()
        if aiwfe is not None:
            sources.append(lambda: self._aiwfe_templates(aiwfe, owner, context, gathered))
            sources.append(lambda: self._aiwfe_docs(aiwfe, text, gathered))
            sources.append(lambda: self._aiwfe_frequent(aiwfe, owner, gathered))

        async def tolerant(source: Callable[[], Awaitable[None]]) -> None:
            try:
                await source()
            except Exception as exc:
                log.warning("suggestion source failed for a user: %r", exc)

        async with anyio.create_task_group() as tg:
            for source in sources:
                tg.start_soon(tolerant, source)
        await self._score_stored_vectors(owner, vector, gathered)
        if gathered.texts_to_embed:
            keys = list(gathered.texts_to_embed)
            vectors = await self.index.embedder.embed([gathered.texts_to_embed[k] for k in keys])
            for k, v in zip(keys, vectors, strict=True):
                gathered.candidates[k] = replace(
                    gathered.candidates[k], similarity=cosine(vector, v)
                )
        async with self.uow(readonly=True) as uow:
            feedback = await uow.feedback.for_user(owner)
        adjustments = feedback_adjustments(feedback, context.hash())
        ranking_context = SuggestionContext(
            now=utcnow(), language=context.language, keywords=context.keywords
        )
        scored = []
        for candidate in gathered.candidates.values():
            item = score_suggestion(candidate, ranking_context)
            if candidate.key in adjustments:
                delta, reason = adjustments[candidate.key]
                item = replace(
                    item, score=_clamp(item.score + delta), reasons=(*item.reasons, reason)
                )
            scored.append(item)
        unique = remove_duplicates(rank_suggestions(scored))
        chosen = [s for s in unique if s.score >= self.min_relevance_score][:size]
        for item in chosen:
            self.metrics.suggestions_generated.labels(
                type=item.candidate.kind.value, source=item.candidate.source
            ).inc()
            self.metrics.suggestion_relevance.observe(item.score)
        return [suggestion_payload(s, gathered.extras[s.candidate.key]) for s in chosen]

    # --- sources ---

    @staticmethod
    def _add_asset(
        gathered: _Gathered, asset: Asset, similarity: float | None, source: str
    ) -> None:
        key = f"asset:{asset.id}"
        existing = gathered.candidates.get(key)
        if existing is not None:
            if existing.source != source:
                gathered.candidates[key] = replace(existing, source="hybrid")
            if similarity is not None and similarity > existing.similarity:
                gathered.candidates[key] = replace(gathered.candidates[key], similarity=similarity)
                gathered.texts_to_embed.pop(key, None)
            return
        metadata = asset.metadata
        gathered.candidates[key] = SuggestionCandidate(
            key=key,
            kind=SuggestionKind.CODE_SNIPPET,
            source="pieces" if source == "pieces" or asset.source.value == "pieces" else source,
            title=asset.name,
            text=asset.content,
            similarity=similarity or 0.0,
            language=asset.language,
            tags=tuple(asset.tags),
            usage_count=asset.usage_count,
            last_used=asset.last_accessed,
            file_path=metadata.get("file_path") if isinstance(metadata, dict) else None,
        )
        gathered.extras[key] = _Extra(
            description=asset.description or "",
            content={"code": asset.content, "language": asset.language, "asset_id": asset.id},
            line_numbers=metadata.get("line_numbers"),
        )
        if similarity is None:
            gathered.texts_to_embed[key] = embedding_text(asset)

    async def _score_stored_vectors(
        self, owner: str, vector: Sequence[float], gathered: _Gathered
    ) -> None:
        """Similarity of assets found without one (keyword-only and Pieces hits) from the
        dense vectors the store already holds, instead of encoding their text again.

        One dense query restricted to those ids returns each one's cosine to the context
        (the store's distance is cosine, the same as `cosine`). Only assets the semantic
        indexer has not reached yet are left to be encoded here. A stored vector is always
        the current content's: a rewrite replaces the point without one until re-indexed.
        """
        ids = tuple(
            key.removeprefix("asset:")
            for key in gathered.texts_to_embed
            if key.startswith("asset:")
        )
        if not ids:
            return
        scope = SearchFilter(user_id=owner, ids=ids)
        try:
            hits = await self.index.store.query_dense(ASSETS, vector, scope, len(ids))
        except Exception as exc:  # encoding them below still works
            log.warning("scoring stored vectors failed, encoding instead: %r", exc)
            return
        for hit in hits:
            key = f"asset:{hit.id}"
            if gathered.texts_to_embed.pop(key, None) is not None:
                gathered.candidates[key] = replace(gathered.candidates[key], similarity=hit.score)

    async def _load(self, owner: str, ids: Sequence[str]) -> dict[str, Asset]:
        """The owner's assets among `ids`, in that order (one query, not one per id)."""
        wanted = list(dict.fromkeys(ids))
        async with self.uow(readonly=True) as uow:
            found = {a.id: a for a in await uow.assets.get_many(owner, wanted)}
        return {asset_id: found[asset_id] for asset_id in wanted if asset_id in found}

    async def _own_assets(
        self,
        owner: str,
        context: SuggestContext,
        text: str,
        vector: Sequence[float],
        gathered: _Gathered,
    ) -> None:
        store = self.index.store
        scope = SearchFilter(user_id=owner)
        dense = await store.query_dense(ASSETS, vector, scope, CANDIDATES_PER_SOURCE)
        sparse = await store.query_sparse(
            ASSETS, sparse_query(tokenize(text)), scope, CANDIDATES_PER_SOURCE // 2
        )
        similarity = {hit.id: hit.score for hit in dense}
        assets = await self._load(owner, [h.id for h in dense] + [h.id for h in sparse])
        for asset_id, asset in assets.items():
            # Keyword-only hits have no dense vector yet: similarity is computed afterwards.
            self._add_asset(gathered, asset, similarity.get(asset_id), "hybrid")

    async def _past_contexts(
        self, owner: str, vector: Sequence[float], gathered: _Gathered
    ) -> None:
        hits = await self.index.store.query_dense(
            CONTEXTS, vector, SearchFilter(user_id=owner), CANDIDATES_PER_SOURCE
        )
        best: dict[str, float] = {}
        for hit in hits:
            asset_id = hit.payload.get("asset_id")
            if isinstance(asset_id, str):
                best[asset_id] = max(best.get(asset_id, -1.0), hit.score)
        assets = await self._load(owner, list(best))
        for asset_id, asset in assets.items():
            # A snippet chosen in a context this close is about as relevant as its content.
            self._add_asset(gathered, asset, best[asset_id], "hybrid")

    async def _pieces(self, owner: str, client: PiecesOS, text: str, gathered: _Gathered) -> None:
        hits = await client.search(text[:500])
        async with self.uow(readonly=True) as uow:
            assets = []
            for hit in hits[:CANDIDATES_PER_SOURCE]:
                asset = await uow.assets.find_by_remote_id(owner, Side.PIECES, hit.asset_id)
                if asset is not None:
                    assets.append(asset)
        for asset in assets:
            self._add_asset(gathered, asset, None, "pieces")

    def _add_external(
        self,
        gathered: _Gathered,
        *,
        key: str,
        kind: SuggestionKind,
        title: str,
        text: str,
        extra: _Extra,
        tags: Sequence[str] = (),
        language: str | None = None,
        usage_count: int = 0,
        last_used: datetime | None = None,
    ) -> None:
        key = key[:64]  # the feedback table's suggestion_id width
        gathered.candidates[key] = SuggestionCandidate(
            key=key,
            kind=kind,
            source="aiwfe",
            title=title,
            text=text,
            similarity=0.0,
            language=language,
            tags=tuple(tags),
            usage_count=usage_count,
            last_used=last_used,
        )
        gathered.extras[key] = extra
        gathered.texts_to_embed[key] = f"{title}: {text}"[:2000]

    async def _aiwfe_templates(
        self, aiwfe: Any, owner: str, context: SuggestContext, gathered: _Gathered
    ) -> None:
        templates = await aiwfe.get_task_templates(
            owner, keywords=list(context.keywords), current_task=context.current_task, limit=10
        )
        for t in templates:
            self._add_external(
                gathered,
                key=f"template:{t.id}",
                kind=SuggestionKind.TEMPLATE,
                title=t.name,
                text=t.content,
                tags=t.tags,
                usage_count=t.usage_count,
                last_used=t.last_used,
                extra=_Extra(
                    description=t.description,
                    content={"template": t.content, "variables": list(t.variables)},
                ),
            )

    async def _aiwfe_docs(self, aiwfe: Any, text: str, gathered: _Gathered) -> None:
        for d in await aiwfe.search_documentation(text[:500], limit=5):
            self._add_external(
                gathered,
                key=f"doc:{d.id}",
                kind=SuggestionKind.DOCUMENTATION,
                title=d.title,
                text=d.summary or d.content,
                tags=d.tags,
                extra=_Extra(
                    description=d.summary,
                    content={"summary": d.summary, "content": d.content, "url": d.url},
                ),
            )

    async def _aiwfe_frequent(self, aiwfe: Any, owner: str, gathered: _Gathered) -> None:
        kinds = {
            "code_snippet": SuggestionKind.CODE_SNIPPET,
            "template": SuggestionKind.TEMPLATE,
            "task": SuggestionKind.TASK,
        }
        for item in await aiwfe.get_user_frequent_items(owner, limit=10):
            body = item.content if isinstance(item.content, str) else json.dumps(item.content)
            self._add_external(
                gathered,
                key=f"frequent:{item.id}",
                kind=kinds.get(item.type, SuggestionKind.CODE_SNIPPET),
                title=item.title,
                text=body or item.title,
                tags=item.tags,
                language=item.language,
                usage_count=item.usage_count,
                last_used=item.last_used,
                extra=_Extra(description="Frequently used in AIWFE", content=item.content),
            )

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
        if action not in FEEDBACK_ACTIONS:
            raise InvalidInput(
                f"action must be one of {', '.join(FEEDBACK_ACTIONS)}", field="action"
            )
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
                if asset is None:
                    raise NotFound("asset", asset_id)
                ensure_owner(principal, asset.user_id, "asset", asset_id)
            if await uow.users.get(owner) is None:
                raise NotFound("user", owner)
            feedback = SuggestionFeedback(
                user_id=owner,
                suggestion_id=suggestion_id[:64],
                action=action,
                asset_id=asset_id,
                context_hash=context.hash(),
            )
            await uow.feedback.add(feedback)
            if asset is not None and action in POSITIVE:
                await uow.assets.touch(asset.id, feedback.created_at)
            await uow.commit()
        self.metrics.suggestion_feedback.labels(action=action).inc()
        await self.cache.delete_prefix(f"{user_cache_prefix(owner)}suggestions:")
        if asset is not None and action in POSITIVE and context.text():
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


# --- pushing on context changes -------------------------------------------------------------


class SuggestionPusher(BackgroundLoop):
    """Recomputes a user's suggestions after a context change and publishes them.

    `notify(user_id)` never blocks the caller (the context update): users wait in a bounded
    set, and a loop owned by this object (`async with`) works through them.
    """

    def __init__(self, service: SuggestionService, events: EventPublisher) -> None:
        self.service = service
        self.events = events
        self._pending: dict[str, None] = {}
        self._wake = anyio.Event()
        self.max_pending = 10_000

    def notify(self, user_id: str) -> None:
        if self._tg is None or len(self._pending) >= self.max_pending:
            return
        self._pending[user_id] = None
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self._pending:
                user_id = next(iter(self._pending))
                del self._pending[user_id]
                try:
                    await self.push(user_id)
                except Exception:
                    log.exception("pushing suggestions failed")

    async def push(self, user_id: str) -> LoggedEvent | None:
        principal = Principal(user_id=user_id, role=Role.USER, via="internal")
        suggestions = await self.service.for_user(
            principal, user_id, None, self.service.max_suggestions
        )
        async with self.service.uow(readonly=True) as uow:
            context = SuggestContext.of_user(await uow.contexts.get(user_id))
        return await self.events.publish(
            user_id,
            "suggestions_updated",
            {"user_id": user_id, "context_hash": context.hash(), "suggestions": suggestions},
        )


class ContextChangeTap(EventPublisher):
    """The publisher given to ContextService: publishes as usual, then tells the pusher."""

    def __init__(self, inner: EventPublisher, on_context_changed: Callable[[str], None]) -> None:
        self._inner = inner
        self.log = inner.log
        self._on_context_changed = on_context_changed

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> LoggedEvent:
        logged = await self._inner.publish(user_id, event_type, payload)
        if event_type == "context_changed":
            self._on_context_changed(user_id)
        return logged
