"""Optimise a collection on a copy, in a child process, and swap the copy in.

1. Under the collection's write lock (writes wait, queries do not): flush, copy the shard
   directory to `<collection>.opt-<id>`, start a journal of every later write.
2. The optimiser (`_edge_optimizer.py` in a niced child process) optimises the copy.
3. The copy is loaded and the journal replayed on it, most of it without the lock; then,
   under the lock, the rest is replayed, `<collection>.current` is pointed at the copy and
   the copy replaces the live shard. Queries already running on the old shard finish there;
   then `retire` closes and deletes it.

Any failure or cancellation before the swap discards the copy and leaves the live shard
(and its count of writes due for optimisation) as it was.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import qdrant_edge as q

from pieces_integration.adapters.vectors._edge_files import (
    copy_shard,
    new_generation,
    write_pointer,
)
from pieces_integration.adapters.vectors._edge_shard import (
    CollectionState,
    ShardHandle,
    ensure_indexes,
)

log = logging.getLogger(__name__)

Optimizer = Callable[[Path], Awaitable[bool]]  # optimise the shard copy at a path; changed?

OPTIMIZER_SCRIPT = Path(__file__).with_name("_edge_optimizer.py")
# Journal entries left for the final, locked replay of a swap (the rest replays unlocked).
LOCKED_REPLAY = 64


@dataclass(frozen=True, slots=True)
class Swapped:
    """A finished swap: the replaced shard (to retire) and how long writes were paused."""

    replaced: ShardHandle
    copy_pause: float
    swap_pause: float
    journaled: int


class _NothingToDo(Exception):
    """The optimiser found the copy already optimal: nothing to swap."""


async def optimize_in_child(path: Path) -> bool:
    """Run `_edge_optimizer.py` on `path`; True if it changed anything."""
    # -I: the script's directory must not shadow the engine (`qdrant_edge.py` lives there).
    command = [sys.executable, "-I", str(OPTIMIZER_SCRIPT), str(path)]
    result = await anyio.run_process(command, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"the shard optimiser exited with {result.returncode}: {detail}")
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return bool(report["changed"])


def replay(shard: Any, journal: Sequence[Callable[[Any], object]]) -> None:
    """Apply journaled writes to the optimised copy, in order.

    Every write is idempotent when repeated in order (upsert, conditional vector update,
    delete), so a write that failed on the live shard is logged and skipped here too.
    """
    for write in journal:
        try:
            write(shard)
        except Exception as exc:  # the engine raises bare Exception
            log.warning("replaying a vector write on the optimised copy failed: %r", exc)


async def swap_in_optimized_copy(
    directory: Path, state: CollectionState, optimizer: Optimizer
) -> Swapped | None:
    """Steps 1-3 above; None if the copy was already optimal (nothing swapped)."""
    target = new_generation(directory, state.name, uuid.uuid4().hex[:12])
    source = state.handle
    # Flushed once before the lock, so the flush under it has little left to write.
    await anyio.to_thread.run_sync(source.shard.flush)

    def snapshot() -> None:
        source.shard.flush()
        copy_shard(source.path, target)

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
        if not await optimizer(target):
            raise _NothingToDo
        fresh = await anyio.to_thread.run_sync(lambda: q.EdgeShard.load(str(target)))
        await anyio.to_thread.run_sync(lambda: ensure_indexes(fresh))
        replayed = 0
        while len(state.journal) - replayed > LOCKED_REPLAY:
            batch = state.journal[replayed:]
            await anyio.to_thread.run_sync(replay, fresh, batch)
            replayed += len(batch)
        with anyio.CancelScope(shield=True):
            async with state.lock:
                paused = time.perf_counter()
                rest = state.journal[replayed:]

                def finish() -> None:
                    replay(fresh, rest)
                    write_pointer(directory, state.name, target)

                await anyio.to_thread.run_sync(finish)
                state.handle = ShardHandle(fresh, target)
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
            return None
        raise
    return Swapped(source, copy_pause, swap_pause, journaled)


async def retire(handle: ShardHandle) -> None:
    """Close a replaced shard once its last query is done, then delete its files."""
    handle.drained = anyio.Event()
    if handle.readers:
        await handle.drained.wait()

    def close_and_delete() -> None:
        handle.shard.close()
        shutil.rmtree(handle.path, ignore_errors=True)

    await anyio.to_thread.run_sync(close_and_delete)
