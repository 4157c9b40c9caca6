"""Finding a running Pieces OS: the given URL and the port range of its host, at once."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from pieces_integration.domain.connection_state import FailureKind, is_compatible, message_for
from pieces_integration.ports.pieces import DetectionResult, EndpointGuard, PiecesDetector
from pieces_integration.service_layer.pieces.results import Detection


async def _nothing() -> None:
    return None


async def detect_pieces(
    detector: PiecesDetector,
    guard: EndpointGuard,
    *,
    url: str | None,
    default_url: str,
) -> Detection:
    """Look for Pieces OS at `url` (or the default), then across the port range of its host."""
    endpoint = await guard.check(url or default_url)
    parts = urlsplit(endpoint.url)
    scheme = "https" if parts.scheme in ("https", "wss") else "http"
    # The given URL and the whole range are probed at once, so detection stays within the
    # scan's deadline; a hit on the exact URL wins.
    base = f"{scheme}://{parts.netloc}"
    version, scanned = await asyncio.gather(
        detector.probe(base) if parts.port is not None else _nothing(),
        detector.detect(endpoint.host, scheme=scheme),
    )
    result: DetectionResult = scanned
    if version is not None:
        result = DetectionResult(
            found=True,
            url=base,
            version=version or None,
            compatible=is_compatible(version) if version else None,
            elapsed_ms=scanned.elapsed_ms,
        )
    return Detection(
        available=result.found,
        url=result.url,
        version=result.version,
        compatible=result.compatible,
        legacy=result.legacy,
        elapsed_ms=result.elapsed_ms,
        message=None if result.found else message_for(FailureKind.NOT_RUNNING),
    )
