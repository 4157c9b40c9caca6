"""`/assets/stream/identifiers` with supervised reconnection.

The loop owns one task, started and stopped by `async with`. Before each attempt it tells the
observer (which moves the connection state machine); after a failure it asks the observer how
long to wait — the observer owns the retry budget (1 s doubling to 60 s, 10 attempts) and
answers None once the connection has failed for good, after which the loop waits for
`retry_now()`. The first frame after every (re)connect is a full snapshot of ids, marked
`snapshot=True`, so the consumer can resynchronise what it missed while disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random

import structlog

from pieces_integration.adapters.pieces_os import mapping
from pieces_integration.domain.backoff import jittered
from pieces_integration.domain.connection_state import FailureKind
from pieces_integration.domain.errors import PiecesOSUnavailable, UpstreamTimeout
from pieces_integration.ports.clock import Sleep
from pieces_integration.ports.pieces import IdentifierHandler, PiecesTransport, StreamObserver

PATH = "/assets/stream/identifiers"
FALLBACK_DELAY = 5.0  # when the observer itself failed and cannot tell us how long to wait
log = structlog.get_logger(__name__)


def failure_kind(exc: Exception) -> FailureKind:
    raw = getattr(exc, "details", {}).get("kind")
    try:
        return FailureKind(str(raw))
    except ValueError:
        return FailureKind.NETWORK


class ReconnectingIdentifierStream:
    def __init__(
        self,
        transport: PiecesTransport,
        handler: IdentifierHandler,
        observer: StreamObserver,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._transport = transport
        self._handler = handler
        self._observer = observer
        self._sleep = sleep
        # bandit B311: reconnect jitter, not a secret.
        self._rng = rng or random.Random()  # nosec B311
        self._task: asyncio.Task[None] | None = None
        self._manual_retry = asyncio.Event()
        self.frames_received = 0

    async def __aenter__(self) -> ReconnectingIdentifierStream:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pieces-ids")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def retry_now(self) -> None:
        self._manual_retry.set()

    async def _run(self) -> None:
        # The loop must outlive any single failure: a bug in a handler or an observer that
        # cannot publish is logged and treated like a dropped stream, never ends the task.
        while True:
            try:
                await self._observer.attempt_starting()
                await self._consume()
                kind, detail = FailureKind.NETWORK, "Pieces OS closed the stream"
            except (PiecesOSUnavailable, UpstreamTimeout) as exc:
                kind, detail = failure_kind(exc), exc.message
            except mapping.PayloadError as exc:
                kind, detail = FailureKind.SERVICE_UNAVAILABLE, str(exc)
            except Exception as exc:
                log.exception("pieces_stream_consumer_failed", error=repr(exc))
                kind, detail = FailureKind.SERVICE_UNAVAILABLE, f"stream consumer failed: {exc!r}"
            log.info("pieces_stream_interrupted", kind=kind.value, detail=detail)
            try:
                delay = await self._observer.failed(kind, detail)
            except Exception as exc:
                log.exception("pieces_stream_observer_failed", error=repr(exc))
                delay = FALLBACK_DELAY
            if delay is None:
                log.warning("pieces_stream_gave_up", kind=kind.value)
                self._manual_retry.clear()
                await self._manual_retry.wait()
                continue
            await self._sleep(jittered(delay, self._rng))

    async def _consume(self) -> None:
        async with self._transport.stream(PATH) as frames:
            await self._observer.opened()
            first = True
            async for text in frames:
                try:
                    payload = json.loads(text)
                except ValueError as exc:
                    raise mapping.PayloadError(f"stream frame is not JSON: {text[:80]!r}") from exc
                events = mapping.parse_identifier_frame(payload, first=first)
                first = False
                self.frames_received += 1
                await self._handler(events)
