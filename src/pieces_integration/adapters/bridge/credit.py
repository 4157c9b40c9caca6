"""Credit-based flow control for one direction of one call (see domain.bridge_protocol)."""

from __future__ import annotations

import asyncio


class CreditGate:
    """The sender's side: `take()` waits until the receiver has granted a chunk."""

    def __init__(self, initial: int) -> None:
        self._credit = initial
        self._changed = asyncio.Event()
        self._closed = False

    def grant(self, n: int) -> None:
        self._credit += n
        self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def take(self) -> bool:
        """False once the call is over (cancelled, peer gone): stop sending."""
        while self._credit <= 0 and not self._closed:
            self._changed.clear()
            await self._changed.wait()
        if self._closed:
            return False
        self._credit -= 1
        return True


class CreditReturn:
    """The receiver's side: counts consumed chunks, grants them back in batches of half a
    window (fewer control frames, and the sender never stalls on a full window)."""

    def __init__(self, window: int) -> None:
        self._batch = max(1, window // 2)
        self._consumed = 0

    def consumed(self) -> int:
        """How many chunks to grant back now (0: not yet)."""
        self._consumed += 1
        if self._consumed >= self._batch:
            granted, self._consumed = self._consumed, 0
            return granted
        return 0
