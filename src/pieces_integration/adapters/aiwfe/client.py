"""Async client for the AIWFE contract: timeouts, retries, circuit breaker, error mapping.

Only idempotent calls are retried: GETs, the context PATCH (a merge patch sets values,
so applying it twice changes nothing more) and POSTs that carry an Idempotency-Key.
Errors come out as AIPlatformError / UpstreamTimeout / NotFound, never as httpx errors,
so the caller can degrade (spec 8.4) without knowing about HTTP.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from pieces_integration.adapters.aiwfe import _codec
from pieces_integration.adapters.resilience import (
    CircuitBreaker,
    CircuitOpen,
    RetryPolicy,
    Transient,
    call_with_retries,
    retry_after_seconds,
)
from pieces_integration.domain.code_findings import TaskSuggestion
from pieces_integration.domain.errors import AIPlatformError, NotFound, UpstreamTimeout
from pieces_integration.ports.aiwfe import (
    AIWFEAsset,
    AIWFEAssetWrite,
    AIWFEContextUpdate,
    AIWFEHealth,
    AIWFEUserContext,
    Chat,
    DocResult,
    FrequentItem,
    SuggestionsReceipt,
    TaskTemplate,
)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_ASSET_PAGE = 200
_MAX_ASSET_PAGES = 1000  # 200k assets: far beyond a person's library; stops a cursor loop


def _seg(value: str) -> str:
    return quote(value, safe="")


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "")[:200]
    return ""


def _circuit_open(exc: CircuitOpen) -> AIPlatformError:
    return AIPlatformError(
        "AIWFE is unavailable (circuit open); retry later",
        retry_after=round(exc.retry_after, 1),
        circuit="open",
    )


class AIWFEHttpClient:
    """Implements `ports.aiwfe.AIWFEClient` over HTTP. One instance per process (shared breaker)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._retry = retry or (RetryPolicy(rng=rng) if rng is not None else RetryPolicy())
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep

    # --- transport ----------------------------------------------------------------------

    async def _send_once(
        self, method: str, path: str, *, params: Any, json: Any, headers: Mapping[str, str]
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                self._base + path,
                params=params,
                json=json,
                headers={**self._headers, **headers},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise Transient(
                UpstreamTimeout(f"AIWFE {method} {path} timed out", upstream="aiwfe")
            ) from exc
        except httpx.TransportError as exc:
            raise Transient(
                AIPlatformError(f"AIWFE unreachable: {type(exc).__name__}", path=path)
            ) from exc
        if response.status_code in _RETRY_STATUSES or response.status_code >= 500:
            raise Transient(
                AIPlatformError(
                    f"AIWFE {method} {path} answered {response.status_code}",
                    status=response.status_code,
                    detail=_problem_detail(response),
                ),
                retry_after_seconds(response.headers),
            )
        return response

    async def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        not_found: tuple[str, str] | None = None,
    ) -> Any:
        response = await call_with_retries(
            lambda: self._send_once(method, path, params=params, json=json, headers=headers or {}),
            attempts=self._retry.attempts if idempotent else 1,
            policy=self._retry,
            breaker=self.breaker,
            sleep=self._sleep,
            circuit_open=_circuit_open,
            event="aiwfe_retry",
            method=method,
            path=path,
        )
        return self._decode(response, method, path, not_found)

    @staticmethod
    def _decode(
        response: httpx.Response, method: str, path: str, not_found: tuple[str, str] | None
    ) -> Any:
        status = response.status_code
        if status == 404 and not_found is not None:
            raise NotFound(*not_found)
        if status == 204:
            return None
        if status >= 400:
            # 401/403 mean our AIWFE_API_KEY is wrong: an upstream/config fault, not the caller's.
            raise AIPlatformError(
                f"AIWFE {method} {path} answered {status}",
                status=status,
                detail=_problem_detail(response),
            )
        try:
            return response.json()
        except ValueError as exc:
            raise AIPlatformError(f"AIWFE {method} {path} sent invalid JSON") from exc

    async def _call(self, parse: Callable[[Any], Any], *args: Any, **kwargs: Any) -> Any:
        body = await self._request(*args, **kwargs)
        try:
            return parse(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise AIPlatformError(f"AIWFE response does not match the contract: {exc!r}") from exc

    # --- the contract -------------------------------------------------------------------

    async def health_check(self) -> AIWFEHealth:
        """Never raises: an unreachable AIWFE is reported as unhealthy (spec 9.2, non-critical)."""
        try:
            response = await self._http.get(
                self._base + "/v1/health", headers=self._headers, timeout=self._timeout
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return AIWFEHealth(healthy=False, details={"error": type(exc).__name__})
        if not isinstance(body, dict):
            return AIWFEHealth(healthy=False, details={"error": "invalid body"})
        healthy = response.status_code == 200 and bool(body.get("healthy"))
        return AIWFEHealth(
            healthy=healthy,
            version=body.get("version"),
            details={"status": response.status_code, "circuit": self.breaker.state.value},
        )

    async def get_user_context(self, user_id: str) -> AIWFEUserContext:
        result: AIWFEUserContext = await self._call(
            _codec.user_context,
            "GET",
            f"/v1/users/{_seg(user_id)}/context",
            idempotent=True,
            not_found=("aiwfe_user", user_id),
        )
        return result

    async def update_user_context(
        self, user_id: str, update: AIWFEContextUpdate
    ) -> AIWFEUserContext:
        patch: dict[str, Any] = dict.fromkeys(update.clear)
        if update.current_task is not None:
            patch["current_task"] = update.current_task
        if update.active_project is not None:
            patch["active_project"] = update.active_project
        if update.keywords is not None:
            patch["keywords"] = list(update.keywords)
        if not patch:
            return await self.get_user_context(user_id)
        result: AIWFEUserContext = await self._call(
            _codec.user_context,
            "PATCH",
            f"/v1/users/{_seg(user_id)}/context",
            idempotent=True,
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
            not_found=("aiwfe_user", user_id),
        )
        return result

    async def create_suggestions(
        self,
        user_id: str,
        *,
        asset_id: str,
        suggestions: Sequence[TaskSuggestion],
        idempotency_key: str | None,
    ) -> SuggestionsReceipt:
        """Without an idempotency key the POST is sent once: a retry could duplicate it."""
        body = {
            "source": "pieces",
            "asset_id": asset_id,
            "suggestions": [_codec.suggestion(s) for s in suggestions],
        }
        result: SuggestionsReceipt = await self._call(
            lambda b: SuggestionsReceipt(
                created=tuple(str(x) for x in b["created"]),
                duplicates=tuple(str(x) for x in b["duplicates"]),
            ),
            "POST",
            f"/v1/users/{_seg(user_id)}/suggestions",
            idempotent=idempotency_key is not None,  # the key makes a repeat a no-op
            json=body,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else {},
            not_found=("aiwfe_user", user_id),
        )
        return result

    async def get_chat(self, chat_id: str) -> Chat:
        result: Chat = await self._call(
            _codec.chat,
            "GET",
            f"/v1/chats/{_seg(chat_id)}",
            idempotent=True,
            not_found=("aiwfe_chat", chat_id),
        )
        return result

    async def get_task_templates(
        self,
        user_id: str,
        *,
        keywords: Sequence[str] = (),
        current_task: str | None = None,
        limit: int = 10,
    ) -> list[TaskTemplate]:
        params: dict[str, Any] = {"limit": limit}
        if keywords:
            params["keywords"] = ",".join(keywords)
        if current_task:
            params["current_task"] = current_task
        result: list[TaskTemplate] = await self._call(
            lambda b: [_codec.task_template(t) for t in b["data"]],
            "GET",
            f"/v1/users/{_seg(user_id)}/task-templates",
            idempotent=True,
            params=params,
            not_found=("aiwfe_user", user_id),
        )
        return result

    async def search_documentation(self, query: str, *, limit: int = 5) -> list[DocResult]:
        if not query.strip():
            return []
        result: list[DocResult] = await self._call(
            lambda b: [_codec.doc_result(d) for d in b["data"]],
            "GET",
            "/v1/docs/search",
            idempotent=True,
            params={"q": query, "limit": limit},
        )
        return result

    async def get_user_frequent_items(
        self, user_id: str, *, types: Sequence[str] = (), limit: int = 10
    ) -> list[FrequentItem]:
        params: list[tuple[str, str | int]] = [("type", t) for t in types]
        params.append(("limit", limit))
        result: list[FrequentItem] = await self._call(
            lambda b: [_codec.frequent_item(i) for i in b["data"]],
            "GET",
            f"/v1/users/{_seg(user_id)}/frequent-items",
            idempotent=True,
            params=params,
            not_found=("aiwfe_user", user_id),
        )
        return result

    # --- assets (the sync engine's AIWFE side) ------------------------------------------

    async def list_assets(self, user_id: str) -> list[AIWFEAsset]:
        assets: list[AIWFEAsset] = []
        cursor: str | None = None
        for _ in range(_MAX_ASSET_PAGES):
            params: dict[str, Any] = {"limit": _ASSET_PAGE}
            if cursor:
                params["cursor"] = cursor
            page: tuple[list[AIWFEAsset], str | None] = await self._call(
                lambda b: ([_codec.asset(a) for a in b["data"]], b["next_cursor"]),
                "GET",
                f"/v1/users/{_seg(user_id)}/assets",
                idempotent=True,
                params=params,
                not_found=("aiwfe_user", user_id),
            )
            assets.extend(page[0])
            cursor = page[1]
            if not cursor:
                return assets
        raise AIPlatformError("AIWFE asset listing did not end", pages=_MAX_ASSET_PAGES)

    async def get_asset(self, user_id: str, asset_id: str) -> AIWFEAsset | None:
        try:
            result: AIWFEAsset = await self._call(
                _codec.asset,
                "GET",
                f"/v1/users/{_seg(user_id)}/assets/{_seg(asset_id)}",
                idempotent=True,
                not_found=("aiwfe_asset", asset_id),
            )
        except NotFound:
            return None
        return result

    async def put_asset(self, user_id: str, asset_id: str, asset: AIWFEAssetWrite) -> AIWFEAsset:
        result: AIWFEAsset = await self._call(
            _codec.asset,
            "PUT",
            f"/v1/users/{_seg(user_id)}/assets/{_seg(asset_id)}",
            idempotent=True,  # a PUT to a chosen id: repeating it creates nothing new
            json=_codec.asset_write(asset),
            not_found=("aiwfe_user", user_id),
        )
        return result

    async def delete_asset(self, user_id: str, asset_id: str) -> None:
        try:
            await self._request(
                "DELETE",
                f"/v1/users/{_seg(user_id)}/assets/{_seg(asset_id)}",
                idempotent=True,
                not_found=("aiwfe_asset", asset_id),
            )
        except NotFound:
            return  # already gone: the goal of a delete is met
