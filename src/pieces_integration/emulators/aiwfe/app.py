"""The emulator's HTTP surface: the contract under /v1, control endpoints under /_emulator.

Control endpoints (not part of the contract) let tests and demos add users, chats and
messages, inject faults, and make the emulator deliver signed webhooks to a service.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pieces_integration.emulators.aiwfe.state import AIWFEState, UnknownUser
from pieces_integration.emulators.aiwfe.webhooks import build_event, deliver

Handler = Callable[[Request], Awaitable[Response]]
_MAX_LIMIT = 100
_SUGGESTION_TYPES = {"task", "issue"}
_PRIORITIES = {"low", "medium", "high", "critical"}
_FREQUENT_TYPES = {"code_snippet", "template", "task"}


def problem(status: int, title: str, detail: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class _Invalid(Exception):
    pass


def _limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Invalid("limit must be an integer") from None
    if not 1 <= value <= _MAX_LIMIT:
        raise _Invalid(f"limit must be between 1 and {_MAX_LIMIT}")
    return value


def _query(request: Request, **max_lengths: int) -> None:
    """Reject query parameters the contract does not declare, or longer than it allows."""
    for name, value in request.query_params.multi_items():
        if name not in max_lengths:
            raise _Invalid(f"unknown query parameter {name!r}")
        if len(value) > max_lengths[name]:
            raise _Invalid(f"query parameter {name!r} is longer than {max_lengths[name]}")


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _Invalid("body is not JSON") from None
    if not isinstance(body, dict):
        raise _Invalid("body must be a JSON object")
    return body


def _check_suggestion_batch(body: dict[str, Any]) -> None:
    if set(body) != {"source", "asset_id", "suggestions"} or body["source"] != "pieces":
        raise _Invalid("body must have exactly source='pieces', asset_id, suggestions")
    if not isinstance(body["asset_id"], str) or not body["asset_id"]:
        raise _Invalid("asset_id must be a non-empty string")
    items = body["suggestions"]
    if not isinstance(items, list) or not 1 <= len(items) <= _MAX_LIMIT:
        raise _Invalid("suggestions must be a list of 1 to 100 items")
    required = {"type", "title", "description", "priority", "source", "fingerprint"}
    allowed = required | {"line", "kind"}
    for item in items:
        if not isinstance(item, dict) or not required <= set(item) <= allowed:
            raise _Invalid("suggestion has missing or unknown fields")
        fp = item["fingerprint"]
        if not (isinstance(fp, str) and len(fp) == 64 and all(c in "0123456789abcdef" for c in fp)):
            raise _Invalid("fingerprint must be 64 hex characters")
        if item["type"] not in _SUGGESTION_TYPES or item["priority"] not in _PRIORITIES:
            raise _Invalid("bad suggestion type or priority")
        if not isinstance(item["title"], str) or not 1 <= len(item["title"]) <= 200:
            raise _Invalid("title must be 1 to 200 characters")


def _check_asset_write(body: dict[str, Any]) -> None:
    if (
        not {"name", "content"}
        <= set(body)
        <= {"name", "content", "description", "language", "tags"}
    ):
        raise _Invalid("asset needs name and content, and nothing unknown")
    if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 500:
        raise _Invalid("name must be 1 to 500 characters")
    if not isinstance(body["content"], str) or len(body["content"]) > 1_000_000:
        raise _Invalid("content must be a string of at most 1,000,000 characters")
    for key, limit in (("description", 5000), ("language", 50)):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise _Invalid(f"{key} must be null or a string of at most {limit} characters")
    tags = body.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > 50
        or not all(isinstance(t, str) and 1 <= len(t) <= 100 for t in tags)
    ):
        raise _Invalid("tags must be at most 50 strings of 1 to 100 characters")


def _check_context_patch(body: dict[str, Any]) -> None:
    if not body or not set(body) <= {"current_task", "active_project", "keywords"}:
        raise _Invalid("patch must set current_task, active_project and/or keywords")
    for key in ("current_task", "active_project"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise _Invalid(f"{key} must be a string or null")
    if "keywords" in body and not (
        isinstance(body["keywords"], list) and all(isinstance(k, str) for k in body["keywords"])
    ):
        raise _Invalid("keywords must be a list of strings")


def build_app(
    state: AIWFEState,
    *,
    api_key: str | None = None,
    webhook_url: str | None = None,
    webhook_secrets: list[str] | None = None,
) -> Starlette:
    """The emulator app. `webhook_url`: where to deliver events of control-made changes."""
    target: dict[str, Any] = {"url": webhook_url, "secrets": list(webhook_secrets or [])}

    def contract(handler: Handler, *, public: bool = False) -> Handler:
        async def wrapped(request: Request) -> Response:
            state.requests += 1
            if not public and api_key is not None:
                given = request.headers.get("Authorization", "")
                if not _secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                    return problem(401, "Unauthorized", "missing or wrong API key")
            faults = state.faults
            if faults.delay:
                await anyio.sleep(faults.delay)
            if faults.fail_next > 0:
                faults.fail_next -= 1
                response = problem(faults.status, "Injected fault")
                if faults.retry_after is not None:
                    response.headers["Retry-After"] = str(faults.retry_after)
                return response
            try:
                return await handler(request)
            except UnknownUser as exc:
                return problem(404, "Not Found", f"user {exc.args[0]!r} not found")
            except _Invalid as exc:
                return problem(422, "Unprocessable Content", str(exc))

        return wrapped

    # --- contract -----------------------------------------------------------------------

    async def health(request: Request) -> Response:
        return JSONResponse({"healthy": True, "version": "emulator-1.0", "time": state.now_iso()})

    async def get_context(request: Request) -> Response:
        return JSONResponse(state.context(request.path_params["user_id"]))

    async def patch_context(request: Request) -> Response:
        body = await _json_object(request)
        _check_context_patch(body)
        return JSONResponse(state.patch_context(request.path_params["user_id"], body))

    async def create_suggestions(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        state.context(user_id)
        body = await _json_object(request)
        _check_suggestion_batch(body)
        key = request.headers.get("Idempotency-Key")
        try:
            receipt = state.create_suggestions(user_id, body, key)
        except ValueError as exc:
            return problem(422, "Unprocessable Content", str(exc))
        return JSONResponse(receipt, status_code=201)

    async def list_suggestions(request: Request) -> Response:
        _query(request, asset_id=200)
        user_id = request.path_params["user_id"]
        state.context(user_id)
        asset_id = request.query_params.get("asset_id")
        items = [s for s in reversed(state.suggestions.get(user_id, []))
                 if asset_id is None or s["asset_id"] == asset_id]  # fmt: skip
        return JSONResponse({"data": items})

    async def get_chat(request: Request) -> Response:
        chat = state.chats.get(request.path_params["chat_id"])
        if chat is None:
            return problem(404, "Not Found", "chat not found")
        return JSONResponse(chat)

    async def task_templates(request: Request) -> Response:
        _query(request, keywords=2000, current_task=500, limit=10)
        state.context(request.path_params["user_id"])
        limit = _limit(request, 10)
        raw = request.query_params.get("keywords", "")
        keywords = [k.strip() for k in raw.split(",") if k.strip()]
        data = state.match_templates(keywords, request.query_params.get("current_task"), limit)
        return JSONResponse({"data": data})

    async def docs_search(request: Request) -> Response:
        _query(request, q=1000, limit=10)
        query = request.query_params.get("q", "")
        if not query.strip():
            raise _Invalid("q is required")
        return JSONResponse({"data": state.search_docs(query, _limit(request, 10))})

    async def frequent_items(request: Request) -> Response:
        _query(request, type=20, limit=10)
        user_id = request.path_params["user_id"]
        state.context(user_id)
        types = request.query_params.getlist("type")
        if not set(types) <= _FREQUENT_TYPES:
            raise _Invalid("unknown item type")
        items = [i for i in state.frequent.get(user_id, []) if not types or i["type"] in types]
        items.sort(key=lambda i: -i["usage_count"])
        return JSONResponse({"data": items[: _limit(request, 10)]})

    async def list_assets(request: Request) -> Response:
        _query(request, limit=10, cursor=200)
        assets = list(state.user_assets(request.path_params["user_id"]).values())
        raw_limit = request.query_params.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
            raise _Invalid("limit must be between 1 and 500")
        limit = int(raw_limit)
        cursor = request.query_params.get("cursor")
        start = 0
        if cursor is not None:
            if not (cursor.startswith("o") and cursor[1:].isdigit()):
                raise _Invalid("invalid cursor")
            start = int(cursor[1:])
        page = assets[start : start + limit]
        more = start + limit < len(assets)
        return JSONResponse({"data": page, "next_cursor": f"o{start + limit}" if more else None})

    async def get_asset(request: Request) -> Response:
        asset = state.user_assets(request.path_params["user_id"]).get(
            request.path_params["asset_id"]
        )
        if asset is None:
            return problem(404, "Not Found", "asset not found")
        return JSONResponse(asset)

    async def put_asset(request: Request) -> Response:
        user_id, asset_id = request.path_params["user_id"], request.path_params["asset_id"]
        if len(asset_id) > 128:
            raise _Invalid("asset id longer than 128 characters")
        state.user_assets(user_id)
        body = await _json_object(request)
        _check_asset_write(body)
        asset, created = state.put_asset(user_id, asset_id, body)
        return JSONResponse(asset, status_code=201 if created else 200)

    async def delete_asset(request: Request) -> Response:
        assets = state.user_assets(request.path_params["user_id"])
        if assets.pop(request.path_params["asset_id"], None) is None:
            return problem(404, "Not Found", "asset not found")
        return Response(status_code=204)

    # --- control ------------------------------------------------------------------------

    async def send_event(event: dict[str, Any], url: str | None = None) -> dict[str, Any] | None:
        url = url or target["url"]
        if not url:
            return None
        if not target["secrets"]:
            raise _Invalid("no webhook secret configured")
        async with httpx.AsyncClient() as http:
            delivery = await deliver(http, url, event, target["secrets"])
        state.deliveries.append(delivery.as_dict())
        return delivery.as_dict()

    async def control_state(request: Request) -> Response:
        return JSONResponse(state.summary())

    async def control_user(request: Request) -> Response:
        body = await _json_object(request)
        user_id = body.pop("user_id", None)
        if not isinstance(user_id, str) or not user_id:
            raise _Invalid("user_id is required")
        return JSONResponse(state.add_user(user_id, **body), status_code=201)

    async def control_chat(request: Request) -> Response:
        body = await _json_object(request)
        chat = state.add_chat(str(body["user_id"]), body.get("title"), body.get("id"))
        return JSONResponse(chat, status_code=201)

    async def control_message(request: Request) -> Response:
        chat_id = request.path_params["chat_id"]
        chat = state.chats.get(chat_id)
        if chat is None:
            return problem(404, "Not Found", "chat not found")
        body = await _json_object(request)
        message = state.add_message(chat_id, str(body.get("role", "assistant")),
                                    str(body["content"]), body.get("id"))  # fmt: skip
        event = build_event(
            "chat_message_created",
            chat["user_id"],
            {"chat_id": chat_id, "chat_title": chat["title"], "message": message},
            event_id=body.get("event_id"),
        )
        delivery = await send_event(event)
        return JSONResponse({"message": message, "event": event, "delivery": delivery}, 201)

    async def control_send(request: Request) -> Response:
        """Deliver an arbitrary event: {"type","user_id","data", "id"?, "url"?}."""
        body = await _json_object(request)
        event = build_event(str(body["type"]), str(body["user_id"]), dict(body.get("data") or {}),
                            event_id=body.get("id"))  # fmt: skip
        delivery = await send_event(event, body.get("url"))
        if delivery is None:
            raise _Invalid("no webhook url: pass 'url' or start with --webhook-url")
        return JSONResponse({"event": event, "delivery": delivery})

    async def control_target(request: Request) -> Response:
        body = await _json_object(request)
        target["url"] = body.get("url")
        if "secrets" in body:
            target["secrets"] = [str(s) for s in body["secrets"]]
        return JSONResponse({"url": target["url"], "secrets": len(target["secrets"])})

    async def control_faults(request: Request) -> Response:
        body = await _json_object(request)
        for key in ("fail_next", "status", "delay", "retry_after", "clock_skew"):
            if key in body:
                setattr(state.faults, key, body[key])
        return JSONResponse({"fail_next": state.faults.fail_next, "status": state.faults.status})

    def control(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except (_Invalid, KeyError, UnknownUser) as exc:
                return problem(422, "Unprocessable Content", str(exc))

        return wrapped

    def methods(**handlers: Handler) -> Handler:
        # One route per path, so a 405 lists every method the path supports in `Allow`.
        allow = ", ".join(sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])}))

        async def dispatch(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            handler = handlers.get(method)
            if handler is None:
                response = problem(405, "Method Not Allowed")
                response.headers["Allow"] = allow
                return response
            return await handler(request)

        return dispatch

    everything = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    contract_routes = {
        "/v1/health": methods(GET=contract(health, public=True)),
        "/v1/users/{user_id}/context": methods(
            GET=contract(get_context), PATCH=contract(patch_context)
        ),
        "/v1/users/{user_id}/suggestions": methods(
            POST=contract(create_suggestions), GET=contract(list_suggestions)
        ),
        "/v1/chats/{chat_id}": methods(GET=contract(get_chat)),
        "/v1/users/{user_id}/assets": methods(GET=contract(list_assets)),
        "/v1/users/{user_id}/assets/{asset_id}": methods(
            GET=contract(get_asset), PUT=contract(put_asset), DELETE=contract(delete_asset)
        ),
        "/v1/users/{user_id}/task-templates": methods(GET=contract(task_templates)),
        "/v1/docs/search": methods(GET=contract(docs_search)),
        "/v1/users/{user_id}/frequent-items": methods(GET=contract(frequent_items)),
        "/_emulator/state": methods(GET=control(control_state)),
        "/_emulator/users": methods(POST=control(control_user)),
        "/_emulator/chats": methods(POST=control(control_chat)),
        "/_emulator/chats/{chat_id}/messages": methods(POST=control(control_message)),
        "/_emulator/webhooks/send": methods(POST=control(control_send)),
        "/_emulator/webhooks/target": methods(PUT=control(control_target)),
        "/_emulator/faults": methods(POST=control(control_faults)),
    }
    return Starlette(
        routes=[
            Route(path, handler, methods=everything) for path, handler in contract_routes.items()
        ]
    )
