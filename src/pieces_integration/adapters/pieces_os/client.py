"""`PiecesOSClient`: the real Pieces OS API (reference §1-§3) behind the `PiecesOS` port.

Every call goes through one gate: rate limit (token bucket), circuit breaker, a timeout, and
retries (`adapters/resilience.call_with_retries`: the wait Pieces asks for with `Retry-After`,
else backoff with full jitter) — retries only for calls that are safe to repeat (reads,
full-state updates, deletes). Creating assets, tags and annotations is never retried: a lost
answer would otherwise create duplicates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from pieces_integration.adapters.pieces_os import mapping
from pieces_integration.adapters.pieces_os.transport import unavailable
from pieces_integration.adapters.resilience import (
    CircuitBreaker,
    CircuitOpen,
    RetryPolicy,
    TokenBucket,
    Transient,
    call_with_retries,
    retry_after_seconds,
)
from pieces_integration.domain.connection_state import FailureKind, is_compatible
from pieces_integration.domain.errors import (
    InvalidInput,
    NotFound,
    PiecesOSUnavailable,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)
from pieces_integration.domain.model import Asset
from pieces_integration.ports.clock import Sleep
from pieces_integration.ports.pieces import (
    AssetChanges,
    AssetDraft,
    PiecesHealth,
    PiecesSession,
    PiecesTransport,
    PiecesUser,
    SearchHit,
    SearchMode,
    TransportResponse,
)

APPLICATION_NAME = "OPEN_SOURCE"
CLIENT_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    timeout: float = 30.0
    retry_attempts: int = 3
    rate_limit_per_minute: float = 100.0
    rate_limit_burst: int = 10
    platform: str = "LINUX"


def _paused(exc: CircuitOpen) -> PiecesOSUnavailable:
    return unavailable(
        FailureKind.SERVICE_UNAVAILABLE,
        f"Pieces OS calls paused after repeated failures ({exc})",
        retry_after=exc.retry_after,
    )


class PiecesOSClient:
    def __init__(
        self,
        transport: PiecesTransport,
        *,
        settings: ClientSettings | None = None,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: TokenBucket | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings or ClientSettings()
        self.transport = transport
        self._retry = retry or RetryPolicy(attempts=self.settings.retry_attempts)
        self.breaker = breaker or CircuitBreaker()
        self._limiter = limiter or TokenBucket(
            rate_per_minute=self.settings.rate_limit_per_minute,
            burst=self.settings.rate_limit_burst,
        )
        self._sleep = sleep
        self._api_key = api_key
        self.session: PiecesSession | None = None

    # --- the gate every call goes through -----------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.session is not None:
            headers["application"] = self.session.application_id
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> TransportResponse:
        async def attempt() -> TransportResponse:
            try:
                response = await self.transport.request(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    headers=self._headers(),
                    request_timeout=self.settings.timeout,
                )
            except (PiecesOSUnavailable, UpstreamTimeout) as exc:
                raise Transient(exc) from exc
            if response.status >= 500 or response.status == 429:
                error = self._status_error(method, path, response)
                raise Transient(error, retry_after_seconds(response.headers))
            return response

        response = await call_with_retries(
            attempt,
            attempts=self._retry.attempts if idempotent else 1,
            policy=self._retry,
            breaker=self.breaker,
            sleep=self._sleep,
            circuit_open=_paused,
            before_attempt=self._limiter.acquire,
            event="pieces_call_retry",
            method=method,
            path=path.split("?")[0],
        )
        if response.status >= 400:
            raise self._status_error(method, path, response)
        return response

    @staticmethod
    def _status_error(method: str, path: str, response: TransportResponse) -> UpstreamError | Any:
        text = response.text.strip()[:200]
        status = response.status
        if status in (404, 410):
            return NotFound("pieces resource", path)
        if status in (401, 403):
            return Unauthorized(f"Pieces OS refused {method} {path}: {text}")
        if status == 400:
            return InvalidInput(f"Pieces OS rejected {method} {path}: {text}")
        if status == 429:
            retry_after = retry_after_seconds(response.headers)
            return RateLimited(
                "Pieces OS is rate limiting",
                retry_after=1.0 if retry_after is None else retry_after,
                limit=0,
            )
        kind = FailureKind.SERVICE_UNAVAILABLE
        return unavailable(kind, f"Pieces OS answered {status} to {method} {path}: {text}")

    def _json(self, response: TransportResponse) -> Any:
        if "json" not in response.content_type:
            raise unavailable(
                FailureKind.SERVICE_UNAVAILABLE,
                f"expected JSON from Pieces OS, got {response.content_type or 'nothing'}",
            )
        try:
            return response.json()
        except ValueError as exc:
            raise unavailable(FailureKind.SERVICE_UNAVAILABLE, "invalid JSON from Pieces") from exc

    # --- discovery and session ---------------------------------------------------------------

    async def health(self) -> PiecesHealth:
        response = await self._call("GET", "/.well-known/health", idempotent=True)
        healthy = response.text.strip().lower().startswith("ok")
        if not healthy:
            return PiecesHealth(healthy=False)
        version_response = await self._call("GET", "/.well-known/version", idempotent=True)
        version = version_response.text.strip()
        return PiecesHealth(healthy=True, version=version, compatible=is_compatible(version))

    async def connect(self) -> PiecesSession:
        # /connect registers a new application each time; repeating it is harmless but we
        # still do not retry it blindly (a 400 would only repeat).
        body = mapping.connect_body(APPLICATION_NAME, self.settings.platform, CLIENT_VERSION)
        response = await self._call("POST", "/connect", idempotent=False, json_body=body)
        self.session = mapping.parse_context(self._json(response))
        return self.session

    async def user(self) -> PiecesUser | None:
        response = await self._call("GET", "/user", idempotent=True)
        return mapping.parse_user(self._json(response))

    def _require_session(self) -> PiecesSession:
        if self.session is None:
            raise RuntimeError("call PiecesOSClient.connect() before creating assets")
        return self.session

    # --- assets -------------------------------------------------------------------------------

    async def asset_ids(self) -> list[str]:
        response = await self._call("GET", "/assets/identifiers", idempotent=True)
        return mapping.identifiers_from_snapshot(self._json(response))

    async def list_assets(self, user_id: str) -> list[Asset]:
        """The whole library in one request; decoding and mapping run in a worker thread so
        a 10,000-asset answer does not hold the event loop."""
        response = await self._call(
            "GET", "/assets", idempotent=True, params={"transferables": "true"}
        )
        if "json" not in response.content_type:
            self._json(response)
        try:
            return await anyio.to_thread.run_sync(
                mapping.assets_from_snapshot, response.body, user_id
            )
        except mapping.PayloadError as exc:
            raise unavailable(FailureKind.SERVICE_UNAVAILABLE, str(exc)) from exc

    async def _asset_payload(self, asset_id: str) -> Any:
        try:
            response = await self._call(
                "GET", f"/asset/{asset_id}", idempotent=True, params={"transferables": "true"}
            )
        except NotFound as exc:
            raise NotFound("pieces asset", asset_id) from exc
        return self._json(response)

    async def get_asset(self, user_id: str, asset_id: str) -> Asset:
        return mapping.asset_from_payload(await self._asset_payload(asset_id), user_id)

    async def create_asset(self, user_id: str, draft: AssetDraft) -> Asset:
        session = self._require_session()
        body = mapping.seed_body(draft, session.application)
        response = await self._call(
            "POST",
            "/assets/create",
            idempotent=False,
            params={"transferables": "true"},
            json_body=body,
        )
        return mapping.asset_from_payload(self._json(response), user_id)

    async def update_asset(self, user_id: str, asset_id: str, changes: AssetChanges) -> Asset:
        """Each field through the route Pieces uses for it: the asset for its name, the
        format for its text, tags and annotations through their own routes."""
        payload = await self._asset_payload(asset_id)
        current = mapping.parse_asset(payload)
        if changes.name is not None and changes.name != current.name:
            payload["name"] = changes.name
            await self._call("POST", "/asset/update", idempotent=True, json_body=payload)
        if changes.content is not None:
            await self._update_content(current.original.id, changes.content)
        if changes.tags is not None:
            await self._update_tags(asset_id, current, changes.tags)
        if changes.description is not None:
            await self._update_description(asset_id, payload, changes.description)
        return await self.get_asset(user_id, asset_id)

    async def _update_content(self, format_id: str, content: str) -> None:
        response = await self._call(
            "GET", f"/format/{format_id}", idempotent=True, params={"transferable": "true"}
        )
        fmt = self._json(response)
        fragment = fmt.setdefault("fragment", {})
        fragment.setdefault("string", {})["raw"] = content
        await self._call(
            "POST",
            "/format/update/value",
            idempotent=True,
            params={"transferable": "false"},
            json_body=fmt,
        )

    async def _update_tags(self, asset_id: str, current: Any, wanted: tuple[str, ...]) -> None:
        existing = {t.text: t.id for t in (current.tags.iterable if current.tags else [])}
        for text, tag_id in existing.items():
            if text not in wanted:
                await self._call(
                    "POST", f"/asset/{asset_id}/tags/disassociate/{tag_id}", idempotent=True
                )
        for text in dict.fromkeys(wanted):
            if text not in existing:
                await self._call(
                    "POST",
                    "/tags/create",
                    idempotent=False,
                    json_body=mapping.tag_body(text, asset_id),
                )

    async def _update_description(self, asset_id: str, payload: Any, text: str) -> None:
        annotations = (payload.get("annotations") or {}).get("iterable") or []
        existing = next((a for a in annotations if a.get("type") == "DESCRIPTION"), None)
        if existing is not None:
            existing["text"] = text
            await self._call("POST", "/annotation/update", idempotent=True, json_body=existing)
            return
        await self._call(
            "POST",
            "/annotations/create",
            idempotent=False,
            json_body=mapping.description_body(text, asset_id),
        )

    async def delete_asset(self, asset_id: str) -> None:
        # Deleting twice leaves the same state, so this is retried; 410 means "already gone".
        try:
            await self._call("POST", f"/assets/{asset_id}/delete", idempotent=True)
        except NotFound:
            return

    async def search(self, query: str, mode: SearchMode = SearchMode.FUZZY) -> list[SearchHit]:
        if not query.strip():
            raise InvalidInput("a search needs a query", field="query")
        if mode is SearchMode.FILTERED:
            response = await self._call(
                "POST",
                "/assets/search",
                idempotent=True,  # a read, even though it is a POST
                params={"transferables": "false"},
                json_body=mapping.filtered_search_body(query),
            )
            return mapping.parse_search(self._json(response).get("results"))
        path = {
            SearchMode.FUZZY: "/assets/search",
            SearchMode.FULL_TEXT: "/search/full_text",
            SearchMode.NEURAL_CODE: "/search/neural_code",
        }[mode]
        params = {"query": query}
        if mode is SearchMode.FUZZY:
            params["transferables"] = "false"
        response = await self._call("GET", path, idempotent=True, params=params)
        return mapping.parse_search(self._json(response))

    async def aclose(self) -> None:
        await self.transport.aclose()
