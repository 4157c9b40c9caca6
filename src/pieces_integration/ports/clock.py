"""Time as a dependency: code that waits, expires or backs off takes these, so tests pass a
fake clock (`tests/fakes.py`) instead of sleeping or patching `time`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Clock = Callable[[], float]  # monotonic seconds, e.g. time.monotonic
Sleep = Callable[[float], Awaitable[None]]  # e.g. asyncio.sleep
