"""The embedded default vector store: Qdrant's in-process engine (`qdrant-edge-py`).

One edge shard per collection under `<directory>/<collection>/`, persisted with its
write-ahead log, so the index survives restarts without a server. Calls into the engine are
synchronous (filtered top-10 over 100k x 384-d takes a few ms), so each one is handed to a
worker thread to keep the event loop free. (Every engine call holds the GIL while it runs:
the worker thread keeps other coroutines going between calls, not during one.)

Maintenance. The engine never optimises by itself: new points pile up in one appendable,
unindexed segment, and deleted ones stay until a vacuum. `optimize()` merges segments and
builds the HNSW index, but the engine's own `optimize` holds the GIL for its whole run
(8,000 x 384-d: 4 s; 20,000: 25 s on this loaded 2-core machine), which would freeze the
whole process. So it runs on a copy, in a child process:

1. Under the collection's write lock (writes wait, queries do not): flush, copy the shard
   directory to `<collection>.opt-<id>`, start a journal of every later write.
2. A child process (`_edge_optimizer.py`, niced) optimises the copy.
3. The copy is loaded and the journal replayed on it, most of it without the lock; then,
   under the lock, the rest is replayed, `<collection>.current` is pointed at the copy and
   the copy replaces the live shard. Queries already running on the old shard finish there;
   then it is closed and deleted.

Writes pause for the flush + copy (~0.3 s per 80 MB here) and for the final replay; queries
never wait (apart from the GIL while the copy is loaded: ~40 ms at 20,000 points). A crash
at any step leaves either the old or the new directory current; `open()` deletes the other.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import qdrant_edge as q

from pieces_integration.adapters.vectors._common import (
    INDEXED_KEYWORD_FIELDS,
    hit_id,
    point_id,
    point_payload,
)
from pieces_integration.domain.bm25 import SparseVector
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.ranking import HybridFusion
from pieces_integration.ports.vectors import (
    COLLECTIONS,
    DENSE,
    DIMENSION,
    HASH_FIELD,
    ID_FIELD,
    SPARSE,
    USER_FIELD,
    DenseUpdate,
    IndexedPoint,
    SearchFilter,
    VectorHit,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

OPTIMIZER_SCRIPT = Path(__file__).with_name("_edge_optimizer.py")
GENERATION_MARK = ".opt-"
# Journal entries left for the final, locked replay of a swap (the rest replays unlocked).
LOCKED_REPLAY = 64


def _filter(search_filter: SearchFilter) -> Any:
    must: list[Any] = [q.FieldCondition(USER_FIELD, match=q.MatchValue(search_filter.user_id))]
    if search_filter.ids:
        must.append(q.HasIdCondition({point_id(key) for key in search_filter.ids}))
    if search_filter.languages:
        must.append(q.FieldCondition("language", match=q.MatchAny(list(search_filter.languages))))
    if search_filter.tags:
        must.append(q.FieldCondition("tags", match=q.MatchAny(list(search_filter.tags))))
    if search_filter.kinds:
        must.append(q.FieldCondition("kind", match=q.MatchAny(list(search_filter.kinds))))
    return q.Filter(must=must)


def _sparse(vector: SparseVector) -> Any:
    return q.SparseVector(list(vector.indices), list(vector.values))


def _formula(fusion: HybridFusion) -> Any:
    """`ranking.fused_score` as an engine formula: $score[0] dense, $score[1] sparse."""
    e = q.Expression
    sparse = e.Variable("$score[1]")
    squashed = e.Div(sparse, e.Sum([sparse, e.Constant(fusion.saturation)]), 0.0)
    return q.Formula(
        e.Sum([e.Variable("$score[0]"), e.Mult([e.Constant(fusion.alpha), squashed])]),
        defaults={"$score[0]": fusion.dense_floor, "$score[1]": 0.0},
    )


def _hits(points: Sequence[Any]) -> list[VectorHit]:
    hits = []
    for point in points:
        payload = dict(point.payload or {})
        hits.append(
            VectorHit(id=hit_id(payload, point.id), score=float(point.score), payload=payload)
        )
    return hits


@dataclass(frozen=True, slots=True)
class ShardStats:
    """What the engine reports about one collection's shard (for tests, benchmarks, ops)."""

    segments: int
    points: int
    indexed_vectors: int  # sparse and dense vectors held in indexed segments


@dataclass(eq=False)
class _Handle:
    """One open shard and the queries currently running on it."""

    shard: Any
    path: Path
    readers: int = 0
    drained: anyio.Event | None = None  # set once retired and no reader is left


@dataclass(eq=False)
class _Collection:
    name: str
    handle: _Handle
    lock: anyio.Lock  # serialises writes and the swap of an optimised copy
    writes: int = 0  # point writes since the last optimisation (or the copy for it)
    journal: list[Callable[[Any], object]] | None = None  # writes since the copy, if any


class _NothingToDo(Exception):
    """The optimiser found the copy already optimal: nothing to swap."""


def _replay(shard: Any, journal: Sequence[Callable[[Any], object]]) -> None:
    """Apply journaled writes to the optimised copy, in order.

    Every write is idempotent when repeated in order (upsert, conditional vector update,
    delete), so a write that failed on the live shard is logged and skipped here too.
    """
    for write in journal:
        try:
            write(shard)
        except Exception as exc:  # the engine raises bare Exception
            log.warning("replaying a vector write on the optimised copy failed: %r", exc)


_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)


def _copy_shard(source: Path, target: Path) -> None:
    """Copy a shard directory, keeping holes: the engine preallocates its WAL files (32 MB
    each, sparse on disk), and a plain copy would write every one of those zeros."""
    for root, _dirs, files in os.walk(source):
        relative = Path(root).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            with open(Path(root) / name, "rb") as src, open(target / relative / name, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    if chunk == _ZEROS[: len(chunk)]:
                        dst.seek(len(chunk), os.SEEK_CUR)
                    else:
                        dst.write(chunk)
                dst.truncate()


def _pointer(directory: Path, collection: str) -> Path:
    return directory / f"{collection}.current"


def _current_path(directory: Path, collection: str) -> Path:
    """The live shard directory: the one `<collection>.current` names, else `<collection>`."""
    pointer = _pointer(directory, collection)
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        candidate = directory / name
        if (
            name.startswith(collection + GENERATION_MARK)
            and (candidate / "edge_config.json").is_file()
        ):
            return candidate
    return directory / collection


def _remove_stale(directory: Path, collection: str, keep: Path) -> None:
    """Delete copies left by an optimisation that did not finish, or the replaced original."""
    for entry in directory.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name == collection or entry.name.startswith(collection + GENERATION_MARK):
            shutil.rmtree(entry, ignore_errors=True)


def _write_pointer(directory: Path, collection: str, target: Path) -> None:
    pointer = _pointer(directory, collection)
    temporary = pointer.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(target.name)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, pointer)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _ensure_indexes(shard: Any) -> None:
    # Tenant index: the engine keeps each user's points together for filtered search.
    shard.update(
        q.UpdateOperation.create_field_index(USER_FIELD, q.KeywordIndexParams(is_tenant=True))
    )
    for name in (*INDEXED_KEYWORD_FIELDS, ID_FIELD, HASH_FIELD):
        shard.update(q.UpdateOperation.create_field_index(name, q.PayloadSchemaType.Keyword))


def _unoptimized_estimate(shard: Any) -> int:
    """Points written but not yet in an indexed segment, estimated after a restart.

    An optimised shard indexes each point's sparse and dense vector; a fresh appendable
    segment only the sparse one. Small shards (a few thousand points) are never indexed by
    the engine, so they count too, but stay below any sensible threshold.
    """
    info = shard.info()
    dense = shard.count(
        q.CountRequest(exact=True, filter=q.Filter(must=[q.HasVectorCondition(DENSE)]))
    )
    return max(0, int(info.points_count) + int(dense) - int(info.indexed_vectors_count))


async def _optimize_in_child(path: Path) -> bool:
    """Run `_edge_optimizer.py` on `path`; True if it changed anything."""
    # -I: the script's own directory must not shadow the engine (this module's name).
    command = [sys.executable, "-I", str(OPTIMIZER_SCRIPT), str(path)]
    result = await anyio.run_process(command, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"the shard optimiser exited with {result.returncode}: {detail}")
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return bool(report["changed"])


class QdrantEdgeVectorStore:
    """`VectorStore` over qdrant-edge shards persisted in `directory`.

    `indexing_threshold_kb` (new shards only) is the segment size from which the engine
    builds an HNSW index (engine default ~10 MB, ~6,500 x 384-d vectors); tests lower it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        dimension: int = DIMENSION,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        self._directory = directory
        self._dimension = dimension
        self._indexing_threshold_kb = indexing_threshold_kb
        self._collections: dict[str, _Collection] = {}
        self._optimize_lock = anyio.Lock()
        self.optimizations = 0  # swaps done by this instance

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        optimizers = None
        if self._indexing_threshold_kb is not None:
            optimizers = q.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb)
        config = q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=self._dimension, distance=q.Distance.Cosine)},
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            optimizers=optimizers,
        )
        self._directory.mkdir(parents=True, exist_ok=True)
        for collection in COLLECTIONS:
            path = _current_path(self._directory, collection)
            try:
                if (path / "edge_config.json").exists():
                    shard = q.EdgeShard.load(str(path))
                else:
                    path.mkdir(parents=True, exist_ok=True)
                    shard = q.EdgeShard.create(str(path), config)
            except Exception as exc:  # the engine raises bare Exception
                for opened in self._collections.values():
                    opened.handle.shard.close()
                self._collections.clear()
                raise DependencyUnavailable(
                    f"cannot open the vector index at {path}: {exc}", upstream="vector_store"
                ) from exc
            # Only now: the shard's lock proves no other process is using (or optimising) it.
            _remove_stale(self._directory, collection, keep=path)
            _ensure_indexes(shard)
            self._collections[collection] = _Collection(
                name=collection,
                handle=_Handle(shard, path),
                lock=anyio.Lock(),
                writes=_unoptimized_estimate(shard),
            )

    async def close(self) -> None:
        async with self._optimize_lock:
            collections, self._collections = self._collections, {}

            def close_all() -> None:
                for collection in collections.values():
                    collection.handle.shard.flush()
                    collection.handle.shard.close()

            await anyio.to_thread.run_sync(close_all)

    def _collection(self, collection: str) -> _Collection:
        try:
            return self._collections[collection]
        except KeyError:
            if not self._collections:
                raise RuntimeError("QdrantEdgeVectorStore used before `await open()`") from None
            raise ValueError(f"unknown collection {collection!r}") from None

    async def _read(self, collection: str, func: Callable[[Any], T]) -> T:
        """Run a query on the live shard; a swap closes the old shard only after it."""
        handle = self._collection(collection).handle
        handle.readers += 1
        try:
            return await anyio.to_thread.run_sync(lambda: func(handle.shard))
        finally:
            handle.readers -= 1
            if handle.readers == 0 and handle.drained is not None:
                handle.drained.set()

    async def _write(
        self, collection: str, func: Callable[[Any], T], writes: Callable[[T], int] | int
    ) -> T:
        """Apply a write to the live shard (and journal it while a copy is optimised)."""
        state = self._collection(collection)
        async with state.lock:
            try:
                result = await anyio.to_thread.run_sync(lambda: func(state.handle.shard))
            finally:
                if state.journal is not None:
                    state.journal.append(func)
            state.writes += writes(result) if callable(writes) else writes
        return result

    # --- maintenance -------------------------------------------------------------------

    def writes_since_optimize(self) -> int:
        """The most point writes any collection received since its last optimisation."""
        return max((c.writes for c in self._collections.values()), default=0)

    async def stats(self, collection: str) -> ShardStats:
        def read(shard: Any) -> ShardStats:
            info = shard.info()
            return ShardStats(
                int(info.segments_count), int(info.points_count), int(info.indexed_vectors_count)
            )

        return await self._read(collection, read)

    @property
    def optimizing(self) -> bool:
        """True while a copy is being optimised (writes are journaled meanwhile)."""
        return any(c.journal is not None for c in self._collections.values())

    async def optimize(self, *, min_writes: int = 1) -> bool:
        """Optimise, on a copy in a child process, every collection with `min_writes` writes.

        True if a collection was swapped for an optimised copy. One run at a time.
        """
        async with self._optimize_lock:
            changed = False
            for state in list(self._collections.values()):
                if state.writes >= max(1, min_writes):
                    changed = await self._optimize_collection(state) or changed
            return changed

    async def _optimize_collection(self, state: _Collection) -> bool:
        target = self._directory / f"{state.name}{GENERATION_MARK}{uuid.uuid4().hex[:12]}"
        source = state.handle
        started = time.perf_counter()
        # Flushed once before the lock, so the flush under it has little left to write.
        await anyio.to_thread.run_sync(source.shard.flush)

        def snapshot() -> None:
            source.shard.flush()
            _copy_shard(source.path, target)

        async with state.lock:
            paused = time.perf_counter()
            try:
                await anyio.to_thread.run_sync(snapshot)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(lambda: shutil.rmtree(target, True))
                raise
            pending, state.writes = state.writes, 0
            state.journal = []
            copy_pause = time.perf_counter() - paused
        fresh: Any = None
        try:
            if not await _optimize_in_child(target):
                raise _NothingToDo
            fresh = await anyio.to_thread.run_sync(lambda: q.EdgeShard.load(str(target)))
            await anyio.to_thread.run_sync(lambda: _ensure_indexes(fresh))
            replayed = 0
            while len(state.journal) - replayed > LOCKED_REPLAY:
                batch = state.journal[replayed:]
                await anyio.to_thread.run_sync(_replay, fresh, batch)
                replayed += len(batch)
            with anyio.CancelScope(shield=True):
                async with state.lock:
                    paused = time.perf_counter()
                    rest = state.journal[replayed:]

                    def finish() -> None:
                        _replay(fresh, rest)
                        _write_pointer(self._directory, state.name, target)

                    await anyio.to_thread.run_sync(finish)
                    state.handle = _Handle(fresh, target)
                    journaled, state.journal = len(state.journal), None
                    swap_pause = time.perf_counter() - paused
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                state.journal = None
                if not isinstance(exc, _NothingToDo):
                    state.writes += pending

                def discard() -> None:
                    if fresh is not None:
                        fresh.close()
                    shutil.rmtree(target, ignore_errors=True)

                await anyio.to_thread.run_sync(discard)
            if isinstance(exc, _NothingToDo):
                log.info("vector collection %s: already optimal", state.name)
                return False
            raise
        self.optimizations += 1
        with anyio.CancelScope(shield=True):
            await self._retire(source)
        log.info(
            "vector collection %s optimised in %.1f s; writes paused %.0f ms for the copy "
            "and %.0f ms for the swap; %d writes replayed",
            state.name,
            time.perf_counter() - started,
            copy_pause * 1000,
            swap_pause * 1000,
            journaled,
        )
        return True

    async def _retire(self, handle: _Handle) -> None:
        """Close a replaced shard once its last query is done, then delete its files."""
        handle.drained = anyio.Event()
        if handle.readers:
            await handle.drained.wait()

        def close_and_delete() -> None:
            handle.shard.close()
            shutil.rmtree(handle.path, ignore_errors=True)

        await anyio.to_thread.run_sync(close_and_delete)

    # --- the port ----------------------------------------------------------------------

    async def upsert(self, collection: str, points: Sequence[IndexedPoint]) -> None:
        if not points:
            return
        converted = []
        for point in points:
            vector: dict[str, Any] = {SPARSE: _sparse(point.sparse)}
            if point.dense is not None:
                vector[DENSE] = list(point.dense)
            converted.append(q.Point(point_id(point.id), vector, point_payload(point)))
        operation = q.UpdateOperation.upsert_points(converted)
        await self._write(collection, lambda shard: shard.update(operation), len(converted))

    async def set_dense(self, collection: str, updates: Sequence[DenseUpdate]) -> int:
        updates = list(updates)

        def apply(shard: Any) -> int:
            applied = 0
            for update in updates:
                pid = point_id(update.id)
                must: list[Any] = [q.HasIdCondition({pid})]
                if update.content_hash is not None:
                    must.append(
                        q.FieldCondition(HASH_FIELD, match=q.MatchValue(update.content_hash))
                    )
                condition = q.Filter(must=must)
                # Count first: the engine raises on a missing point, and the condition alone
                # would silently skip a changed one; both are "skipped" for the caller.
                if shard.count(q.CountRequest(filter=condition)) == 0:
                    continue
                shard.update(
                    q.UpdateOperation.update_vectors(
                        [q.PointVectors(pid, {DENSE: list(update.vector)})], condition=condition
                    )
                )
                applied += 1
            return applied

        return await self._write(collection, apply, lambda applied: applied)

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        point_ids: list[Any] = [point_id(key) for key in ids]
        operation = q.UpdateOperation.delete_points(point_ids)
        await self._write(collection, lambda shard: shard.update(operation), len(point_ids))

    async def delete_user(self, user_id: str) -> None:
        condition = q.Filter(must=[q.FieldCondition(USER_FIELD, match=q.MatchValue(user_id))])

        def delete_all(shard: Any) -> int:
            # Counted so a large deletion makes the next optimisation (vacuum) due sooner.
            removed = int(shard.count(q.CountRequest(exact=True, filter=condition)))
            shard.update(q.UpdateOperation.delete_points_by_filter(condition))
            return removed

        for collection in COLLECTIONS:
            await self._write(collection, delete_all, lambda removed: removed)

    async def count(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=False)

    async def count_dense(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=True)

    async def _count(self, collection: str, user_id: str | None, *, dense_only: bool) -> int:
        must: list[Any] = []
        if user_id is not None:
            must.append(q.FieldCondition(USER_FIELD, match=q.MatchValue(user_id)))
        if dense_only:
            must.append(q.HasVectorCondition(DENSE))
        request = q.CountRequest(exact=True, filter=q.Filter(must=must) if must else None)
        return int(await self._read(collection, lambda shard: shard.count(request)))

    async def query_dense(
        self, collection: str, vector: Sequence[float], search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(list(vector), using=DENSE),
            filter=_filter(search_filter),
            with_payload=True,
        )
        return _hits(await self._read(collection, lambda shard: shard.query(request)))

    async def query_sparse(
        self, collection: str, sparse: SparseVector, search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        if not sparse.indices:
            return []
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(_sparse(sparse), using=SPARSE),
            filter=_filter(search_filter),
            with_payload=True,
        )
        return _hits(await self._read(collection, lambda shard: shard.query(request)))

    async def query_hybrid(
        self,
        collection: str,
        dense: Sequence[float],
        sparse: SparseVector,
        search_filter: SearchFilter,
        limit: int,
        fusion: HybridFusion,
    ) -> list[VectorHit]:
        flt = _filter(search_filter)
        prefetch_limit = max(limit, fusion.prefetch_limit)
        prefetches = [
            q.Prefetch(
                limit=prefetch_limit, query=q.Query.Nearest(list(dense), using=DENSE), filter=flt
            )
        ]
        if sparse.indices:
            prefetches.append(
                q.Prefetch(
                    limit=prefetch_limit,
                    query=q.Query.Nearest(_sparse(sparse), using=SPARSE),
                    filter=flt,
                )
            )
        request = q.QueryRequest(
            limit=limit,
            prefetches=prefetches,
            query=_formula(fusion),
            filter=flt,
            with_payload=True,
        )
        return _hits(await self._read(collection, lambda shard: shard.query(request)))
