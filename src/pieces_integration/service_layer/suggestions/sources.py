"""Where suggestion candidates come from, gathered concurrently for one request.

  * the user's library (`Library`: their own assets and/or, by the request's scope, those
    shared into their teams), nearest to the context in the semantic tier, plus keyword
    matches not embedded yet;
  * Pieces' own search over the user's connected Pieces OS, mapped to our copies;
  * AIWFE task templates, documentation and the user's frequently used items (only when
    an AIWFE client is configured);
  * snippets the user accepted or copied in similar past contexts (the `contexts`
    collection holds one snapshot per (context, asset) accepted).

Any one source failing is logged and skipped: AIWFE or Pieces being down never fails the
request. Afterwards every candidate has a cosine similarity to the context: from the
search, from the vectors the store already holds, or encoded on the spot.

Scope (issue 16): Pieces and AIWFE items belong to the user's own side, so they are asked
only when the scope includes the user's own assets; `team` suggests team assets alone.
Every asset loaded is checked against the `Library` (`_load`), whichever source found it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from pieces_integration.domain.bm25 import sparse_query
from pieces_integration.domain.model import Asset, Side
from pieces_integration.domain.ranking import SuggestionKind
from pieces_integration.domain.suggestion_context import SuggestContext, cosine
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.pieces import PiecesOS
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.vectors import ASSETS, CONTEXTS, SearchFilter
from pieces_integration.service_layer.indexer import SearchIndex
from pieces_integration.service_layer.suggestions.candidates import Extra, Gathered, Library

log = logging.getLogger(__name__)

CANDIDATES_PER_SOURCE = 20


class CandidateSources:
    def __init__(self, *, uow: UnitOfWorkFactory, index: SearchIndex) -> None:
        self.uow = uow
        self.index = index

    async def gather(
        self,
        library: Library,
        context: SuggestContext,
        vector: Sequence[float],
        *,
        pieces: PiecesOS | None,
        aiwfe: Any,
    ) -> Gathered:
        """Every source's candidates for `context` (embedded as `vector`), each with its
        similarity to the context."""
        text = context.text()
        owner = library.owner
        gathered = Gathered()
        sources: list[Callable[[], Awaitable[None]]] = [
            lambda: self._past_contexts(library, vector, gathered),
        ]
        if not library.empty:
            sources.append(lambda: self._library_assets(library, text, vector, gathered))
        if pieces is not None and library.own:
            sources.append(lambda: self._pieces(library, pieces, text, gathered))
        if aiwfe is not None and library.own:
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
        await self._score_stored_vectors(library, vector, gathered)
        if gathered.texts_to_embed:
            keys = list(gathered.texts_to_embed)
            vectors = await self.index.embedder.embed([gathered.texts_to_embed[k] for k in keys])
            for k, v in zip(keys, vectors, strict=True):
                gathered.set_similarity(k, cosine(vector, v))
        return gathered

    async def _score_stored_vectors(
        self, library: Library, vector: Sequence[float], gathered: Gathered
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
        if not ids or library.empty:
            return
        scope = library.vector_filter(ids)
        try:
            hits = await self.index.store.query_dense(ASSETS, vector, scope, len(ids))
        except Exception as exc:  # encoding them afterwards still works
            log.warning("scoring stored vectors failed, encoding instead: %r", exc)
            return
        for hit in hits:
            key = f"asset:{hit.id}"
            if gathered.texts_to_embed.pop(key, None) is not None:
                gathered.set_similarity(key, hit.score)

    async def _load(self, library: Library, ids: Sequence[str]) -> dict[str, Asset]:
        """The library's assets among `ids`, in that order (one query, not one per id).
        The database has the last word: a share taken out since the index was written, or
        an asset outside the scope, is dropped here."""
        wanted = list(dict.fromkeys(ids))
        team_ids = library.reach.team_ids
        async with self.uow(readonly=True) as uow:
            if team_ids:
                rows = await uow.assets.get_visible(library.owner, wanted, team_ids)
            else:
                rows = await uow.assets.get_many(library.owner, wanted)
        found = {a.id: a for a in rows if library.admits(a)}
        return {asset_id: found[asset_id] for asset_id in wanted if asset_id in found}

    def _add(
        self, library: Library, gathered: Gathered, asset: Asset, similarity: float | None
    ) -> None:
        gathered.add_asset(asset, similarity, "hybrid", library.attribution(asset))

    async def _library_assets(
        self, library: Library, text: str, vector: Sequence[float], gathered: Gathered
    ) -> None:
        store = self.index.store
        scope = library.vector_filter()
        dense = await store.query_dense(ASSETS, vector, scope, CANDIDATES_PER_SOURCE)
        sparse = await store.query_sparse(
            ASSETS, sparse_query(tokenize(text)), scope, CANDIDATES_PER_SOURCE // 2
        )
        similarity = {hit.id: hit.score for hit in dense}
        assets = await self._load(library, [h.id for h in dense] + [h.id for h in sparse])
        for asset_id, asset in assets.items():
            # Keyword-only hits have no dense vector yet: similarity is computed afterwards.
            self._add(library, gathered, asset, similarity.get(asset_id))

    async def _past_contexts(
        self, library: Library, vector: Sequence[float], gathered: Gathered
    ) -> None:
        # The snapshots are the user's own; the assets they name pass through `_load`.
        hits = await self.index.store.query_dense(
            CONTEXTS, vector, SearchFilter(user_id=library.owner), CANDIDATES_PER_SOURCE
        )
        best: dict[str, float] = {}
        for hit in hits:
            asset_id = hit.payload.get("asset_id")
            if isinstance(asset_id, str):
                best[asset_id] = max(best.get(asset_id, -1.0), hit.score)
        assets = await self._load(library, list(best))
        for asset_id, asset in assets.items():
            # A snippet chosen in a context this close is about as relevant as its content.
            self._add(library, gathered, asset, best[asset_id])

    async def _pieces(
        self, library: Library, client: PiecesOS, text: str, gathered: Gathered
    ) -> None:
        owner = library.owner
        hits = await client.search(text[:500])
        async with self.uow(readonly=True) as uow:
            assets = []
            for hit in hits[:CANDIDATES_PER_SOURCE]:
                asset = await uow.assets.find_by_remote_id(owner, Side.PIECES, hit.asset_id)
                if asset is not None:
                    assets.append(asset)
        for asset in assets:
            gathered.add_asset(asset, None, "pieces")

    async def _aiwfe_templates(
        self, aiwfe: Any, owner: str, context: SuggestContext, gathered: Gathered
    ) -> None:
        templates = await aiwfe.get_task_templates(
            owner, keywords=list(context.keywords), current_task=context.current_task, limit=10
        )
        for t in templates:
            gathered.add_external(
                key=f"template:{t.id}",
                kind=SuggestionKind.TEMPLATE,
                title=t.name,
                text=t.content,
                tags=t.tags,
                usage_count=t.usage_count,
                last_used=t.last_used,
                extra=Extra(
                    description=t.description,
                    content={"template": t.content, "variables": list(t.variables)},
                ),
            )

    async def _aiwfe_docs(self, aiwfe: Any, text: str, gathered: Gathered) -> None:
        for d in await aiwfe.search_documentation(text[:500], limit=5):
            gathered.add_external(
                key=f"doc:{d.id}",
                kind=SuggestionKind.DOCUMENTATION,
                title=d.title,
                text=d.summary or d.content,
                tags=d.tags,
                extra=Extra(
                    description=d.summary,
                    content={"summary": d.summary, "content": d.content, "url": d.url},
                ),
            )

    async def _aiwfe_frequent(self, aiwfe: Any, owner: str, gathered: Gathered) -> None:
        kinds = {
            "code_snippet": SuggestionKind.CODE_SNIPPET,
            "template": SuggestionKind.TEMPLATE,
            "task": SuggestionKind.TASK,
        }
        for item in await aiwfe.get_user_frequent_items(owner, limit=10):
            body = item.content if isinstance(item.content, str) else json.dumps(item.content)
            gathered.add_external(
                key=f"frequent:{item.id}",
                kind=kinds.get(item.type, SuggestionKind.CODE_SNIPPET),
                title=item.title,
                text=body or item.title,
                tags=item.tags,
                language=item.language,
                usage_count=item.usage_count,
                last_used=item.last_used,
                extra=Extra(description="Frequently used in AIWFE", content=item.content),
            )
