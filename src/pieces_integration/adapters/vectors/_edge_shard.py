"""An open qdrant-edge shard, the per-collection state around it, and its payload indexes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import qdrant_edge as q

from pieces_integration.adapters.vectors._common import INDEXED_KEYWORD_FIELDS
from pieces_integration.ports.vectors import DENSE, HASH_FIELD, ID_FIELD, USER_FIELD


@dataclass(frozen=True, slots=True)
class ShardStats:
    """What the engine reports about one collection's shard (for tests, benchmarks, ops)."""

    segments: int
    points: int
    indexed_vectors: int  # sparse and dense vectors held in indexed segments


@dataclass(eq=False)
class ShardHandle:
    """One open shard and the queries currently running on it."""

    shard: Any
    path: Path
    readers: int = 0
    drained: anyio.Event | None = None  # set once retired and no reader is left


@dataclass(eq=False)
class CollectionState:
    name: str
    handle: ShardHandle
    lock: anyio.Lock  # serialises writes and the swap of an optimised copy
    writes: int = 0  # point writes since the last optimisation (or the copy for it)
    journal: list[Callable[[Any], object]] | None = None  # writes since the copy, if any


def ensure_indexes(shard: Any) -> None:
    # Tenant index: the engine keeps each user's points together for filtered search.
    shard.update(
        q.UpdateOperation.create_field_index(USER_FIELD, q.KeywordIndexParams(is_tenant=True))
    )
    for name in (*INDEXED_KEYWORD_FIELDS, ID_FIELD, HASH_FIELD):
        shard.update(q.UpdateOperation.create_field_index(name, q.PayloadSchemaType.Keyword))


def unoptimized_estimate(shard: Any) -> int:
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
