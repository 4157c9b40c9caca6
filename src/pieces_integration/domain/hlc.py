"""Hybrid logical clock (DEVIATIONS 9): orders changes made on different machines without
trusting their wall clocks to agree.

A timestamp is (physical milliseconds, logical counter, node id). `tick` stamps a local
event; `receive` merges a timestamp seen from elsewhere so every later local stamp sorts
after it. The string form sorts lexicographically in the same order as the tuple.
"""

from __future__ import annotations

from dataclasses import dataclass

_MS_DIGITS = 15
_COUNTER_DIGITS = 6


@dataclass(frozen=True, order=True, slots=True)
class Timestamp:
    millis: int
    counter: int
    node: str

    def encode(self) -> str:
        return f"{self.millis:0{_MS_DIGITS}d}-{self.counter:0{_COUNTER_DIGITS}d}-{self.node}"

    @classmethod
    def decode(cls, text: str) -> Timestamp:
        millis, counter, node = text.split("-", 2)
        return cls(int(millis), int(counter), node)


ZERO = Timestamp(0, 0, "")


class HybridLogicalClock:
    """Not thread-safe; one per process (the event loop serialises callers)."""

    def __init__(self, node: str, *, last: Timestamp = ZERO) -> None:
        if not node or "-" in node:
            raise ValueError("an HLC node id must be non-empty and contain no '-'")
        self.node = node
        self._last = last

    def tick(self, now_millis: int) -> Timestamp:
        if now_millis > self._last.millis:
            self._last = Timestamp(now_millis, 0, self.node)
        else:
            self._last = Timestamp(self._last.millis, self._last.counter + 1, self.node)
        return self._last

    def receive(self, remote: Timestamp, now_millis: int) -> Timestamp:
        top = max(now_millis, self._last.millis, remote.millis)
        if top == self._last.millis and top == remote.millis:
            counter = max(self._last.counter, remote.counter) + 1
        elif top == self._last.millis:
            counter = self._last.counter + 1
        elif top == remote.millis:
            counter = remote.counter + 1
        else:
            counter = 0
        self._last = Timestamp(top, counter, self.node)
        return self._last
