"""Ports for Pieces OS: what the service layer needs, in its own vocabulary.

Two layers, so the wire can change without touching the rest (DEVIATIONS 5):
- `PiecesTransport` moves requests and stream frames: httpx + websockets to an address the
  service can reach, or a bridge on the developer's machine (adapters/bridge).
- `PiecesOS` is the Pieces API itself (connect, assets, search, streams) on top of a transport.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pieces_integration.domain.connection_state import ConnectionStateChanged, FailureKind
from pieces_integration.domain.model import Asset, Connection

# --- transport ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransportResponse:
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class PiecesTransport(Protocol):
    """Carries one request or one stream to Pieces OS. Raises `PiecesOSUnavailable` (or
    `UpstreamTimeout`) when Pieces cannot be reached; returns every HTTP status as is."""

    base_url: str

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float,
    ) -> TransportResponse: ...

    def stream(self, path: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Open a server-to-client text stream (a WebSocket today)."""
        ...

    async def aclose(self) -> None: ...


# --- the Pieces API --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PiecesHealth:
    healthy: bool
    version: str | None = None
    compatible: bool | None = None


@dataclass(frozen=True, slots=True)
class PiecesSession:
    """What `/connect` returned: the registered application, sent on later calls."""

    application_id: str
    os_id: str
    version: str
    application: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PiecesUser:
    id: str
    email: str | None = None
    name: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class AssetDraft:
    """What a new Pieces asset is made from (a `Seed`)."""

    content: str
    language: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    websites: tuple[tuple[str, str], ...] = ()  # (name, url)


@dataclass(frozen=True, slots=True)
class AssetChanges:
    """Fields to change on an existing asset; None leaves a field as it is."""

    name: str | None = None
    content: str | None = None
    tags: tuple[str, ...] | None = None
    description: str | None = None


class SearchMode(StrEnum):
    FUZZY = "fuzzy"  # GET /assets/search (the CLI's default)
    FULL_TEXT = "fts"  # GET /search/full_text
    NEURAL_CODE = "ncs"  # GET /search/neural_code
    FILTERED = "filtered"  # POST /assets/search


@dataclass(frozen=True, slots=True)
class SearchHit:
    asset_id: str
    score: float
    exact: bool
    match: str


@dataclass(frozen=True, slots=True)
class IdentifierEvent:
    """One entry of `/assets/stream/identifiers`. `snapshot` marks the first frame's ids."""

    asset_id: str
    deleted: bool = False
    snapshot: bool = False


class PiecesOS(Protocol):
    async def health(self) -> PiecesHealth: ...

    async def connect(self) -> PiecesSession: ...

    async def user(self) -> PiecesUser | None: ...

    async def asset_ids(self) -> list[str]: ...

    async def list_assets(self, user_id: str) -> list[Asset]: ...

    async def get_asset(self, user_id: str, asset_id: str) -> Asset: ...

    async def create_asset(self, user_id: str, draft: AssetDraft) -> Asset: ...

    async def update_asset(self, user_id: str, asset_id: str, changes: AssetChanges) -> Asset: ...

    async def delete_asset(self, asset_id: str) -> None: ...

    async def search(self, query: str, mode: SearchMode = SearchMode.FUZZY) -> list[SearchHit]: ...

    async def aclose(self) -> None: ...


class PiecesOSFactory(Protocol):
    """Opens a client for one user's Pieces OS; the URL has already passed the endpoint guard.
    `user_id` is whose connection it is (a bridge serves only its own user's calls)."""

    async def __call__(self, url: str, *, api_key: str | None, user_id: str = "") -> PiecesOS: ...


# --- discovery and safety --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectionResult:
    found: bool
    url: str | None = None
    version: str | None = None
    compatible: bool | None = None
    legacy: bool = False
    scanned: int = 0
    elapsed_ms: float = 0.0


class PiecesDetector(Protocol):
    async def probe(self, base_url: str) -> str | None:
        """The version at exactly `base_url` ("" if healthy but unversioned), or None."""
        ...

    async def detect(self, host: str, *, scheme: str = "http") -> DetectionResult:
        """Scan the port range and the legacy port of `host`."""
        ...


@dataclass(frozen=True, slots=True)
class SafeEndpoint:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


class EndpointGuard(Protocol):
    async def check(self, url: str) -> SafeEndpoint:
        """Resolve and vet `url`; raise `UnsafeEndpoint` unless every address is allowed."""
        ...


# --- live connections ------------------------------------------------------------------------


class StreamObserver(Protocol):
    """What a reconnecting stream reports. The observer owns the retry budget: `failed`
    answers the delay before the next attempt, or None to wait for a manual retry."""

    async def attempt_starting(self) -> None: ...

    async def opened(self) -> None: ...

    async def failed(self, kind: FailureKind, detail: str) -> float | None: ...


IdentifierHandler = Callable[[list[IdentifierEvent]], Awaitable[None]]


class IdentifierStream(Protocol):
    """A supervised `/assets/stream/identifiers` subscription with reconnection."""

    async def __aenter__(self) -> IdentifierStream: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def retry_now(self) -> None:
        """Manual retry after `connection_failed`: a fresh budget of attempts."""
        ...


EventPublisher = Callable[[ConnectionStateChanged], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StoredConnection:
    connection: Connection
    sealed_secret: bytes | None = None


class ConnectionStore(Protocol):
    """Persists one Pieces connection per user. The API key arrives already sealed."""

    async def get(self, user_id: str) -> StoredConnection | None: ...

    async def save(self, connection: Connection, *, sealed_secret: bytes | None) -> None: ...

    async def delete(self, user_id: str) -> None: ...


Encrypt = Callable[[str, str], bytes]  # (plaintext, associated data) -> sealed
Decrypt = Callable[[bytes, str], str]  # (sealed, associated data) -> plaintext
