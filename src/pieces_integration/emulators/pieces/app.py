"""The emulator's ASGI app: the Pieces OS routes of reference §8 plus a small control API.

Control API (never subject to faults):
    GET  /_emulator/faults           current fault configuration
    POST /_emulator/faults           JSON object of FaultConfig fields to change
    POST /_emulator/faults/clear     lift every fault
    POST /_emulator/streams/drop     cut every open WebSocket now
    POST /_emulator/refuse           {"seconds": N}: stop listening for N seconds
    GET  /_emulator/stats            asset count, requests seen, failures injected
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pieces_integration.emulators.pieces.faults import FaultInjector, FaultMiddleware
from pieces_integration.emulators.pieces.records import timestamp
from pieces_integration.emulators.pieces.state import EmulatorState, UnknownApplication

RefuseHook = Callable[[float], None]
HEALTH_INTERVAL = 5.0


def _json(payload: Any) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


def _gone(identifier: str) -> PlainTextResponse:
    return PlainTextResponse(f"{identifier} is gone", status_code=410)


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


class StreamRegistry:
    """Open WebSockets, so faults and the control API can cut them."""

    def __init__(self) -> None:
        self.sockets: set[WebSocket] = set()
        self._drop = asyncio.Event()

    def drop_all(self) -> None:
        self._drop.set()
        self._drop = asyncio.Event()

    @property
    def drop_event(self) -> asyncio.Event:
        return self._drop


def build_app(
    state: EmulatorState,
    faults: FaultInjector,
    *,
    refuse: RefuseHook | None = None,
) -> Starlette:
    streams = StreamRegistry()
    state.clock_skew = lambda: faults.config.clock_skew_seconds

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def version(request: Request) -> Response:
        return PlainTextResponse(state.version)

    async def installation_path(request: Request) -> Response:
        return PlainTextResponse("/opt/pieces-os-emulator")

    async def connect(request: Request) -> Response:
        try:
            return _json(state.connect(await _body(request)))
        except UnknownApplication as exc:
            return PlainTextResponse(str(exc), status_code=400)

    async def user(request: Request) -> Response:
        signed_in = state.signed_in and not faults.config.signed_out
        return _json({"user": state.user_profile() if signed_in else None})

    async def models(request: Request) -> Response:
        created = timestamp(datetime(2024, 1, 1, tzinfo=UTC))
        # The SDK wrapper requires the first by name; the `pieces` CLI picks the second as its
        # default by `unique`.
        models = [
            {
                "id": "00000000-0000-4000-8000-000000000035",
                "name": "GPT-3.5-turbo Chat Model",
                "unique": "gpt-3.5-turbo",
                "cloud": True,
                "downloaded": False,
                "created": created,
                "type": "BALANCED",
                "usage": "CODE_CONVERSATION",
                "version": "1",
            },
            {
                "id": "00000000-0000-4000-8000-0000000000f1",
                "name": "Gemini-2.0 Flash Lite Chat Model",
                "unique": "gemini-2.0-flash-lite-001",
                "cloud": True,
                "downloaded": False,
                "created": created,
                "type": "SPEED",
                "usage": "CODE_CONVERSATION",
                "version": "001",
            },
        ]
        return _json({"iterable": models})

    async def applications(request: Request) -> Response:
        return _json({"iterable": state.all_applications()})

    async def assets_snapshot(request: Request) -> Response:
        return Response(state.snapshot_bytes(), media_type="application/json")

    async def assets_identifiers(request: Request) -> Response:
        return _json({"iterable": [{"id": asset_id} for asset_id in state.assets]})

    async def asset_snapshot(request: Request) -> Response:
        asset_id = request.path_params["asset"]
        record = state.assets.get(asset_id)
        if record is None:
            return _gone(asset_id)
        return Response(state.render_bytes(record), media_type="application/json")

    async def asset_formats(request: Request) -> Response:
        asset_id = request.path_params["asset"]
        record = state.assets.get(asset_id)
        if record is None:
            return _gone(asset_id)
        return _json({"iterable": [state.render_format(record, full=True)]})

    async def create_asset(request: Request) -> Response:
        try:
            return _json(state.create_from_seed(await _body(request)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return PlainTextResponse(f"invalid seed: {exc}", status_code=500)

    async def update_asset(request: Request) -> Response:
        body = await _body(request)
        updated = state.update_from_asset(body)
        if updated is None:
            return _gone(str(body.get("id") if isinstance(body, dict) else ""))
        return _json(updated)

    async def delete_asset(request: Request) -> Response:
        asset_id = request.path_params["asset"]
        if not state.delete(asset_id):
            return _gone(asset_id)
        return PlainTextResponse(asset_id)

    async def format_snapshot(request: Request) -> Response:
        format_id = request.path_params["format"]
        record = state.asset_for_format(format_id)
        if record is None:
            return _gone(format_id)
        return _json(state.render_format(record, full=True))

    async def format_update_value(request: Request) -> Response:
        body = await _body(request)
        updated = state.update_format_value(body)
        if updated is None:
            return _gone(str(body.get("id") if isinstance(body, dict) else ""))
        return _json(updated)

    async def create_tag(request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return PlainTextResponse("SeededTag.text is required", status_code=500)
        return _json(state.create_tag(body))

    async def disassociate_tag(request: Request) -> Response:
        if not state.disassociate_tag(request.path_params["asset"], request.path_params["tag"]):
            return _gone(request.path_params["tag"])
        return Response(status_code=204)

    async def create_annotation(request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return PlainTextResponse("SeededAnnotation.text is required", status_code=500)
        return _json(state.create_annotation(body))

    async def update_annotation(request: Request) -> Response:
        body = await _body(request)
        updated = state.update_annotation(body)
        if updated is None:
            return _gone(str(body.get("id") if isinstance(body, dict) else ""))
        return _json(updated)

    async def search_get(request: Request) -> Response:
        query = request.query_params.get("query") or ""
        tags = request.query_params.get("searchable_tags") or ""
        if not query and not tags:
            return PlainTextResponse("a query or searchable_tags is required", status_code=500)
        return _json(state.search(f"{query} {tags.replace(',', ' ')}".strip()))

    async def search_text(request: Request) -> Response:
        query = request.query_params.get("query") or ""
        if not query:
            return PlainTextResponse("a query is required", status_code=500)
        return _json(state.search(query))

    async def search_post(request: Request) -> Response:
        body = await _body(request)
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query:
            return PlainTextResponse("a query is required", status_code=500)
        return _json({"results": state.search(query)})

    # --- streams ------------------------------------------------------------------------------

    async def _serve_stream(websocket: WebSocket, producer: Callable[[], Awaitable[None]]) -> None:
        await websocket.accept()
        streams.sockets.add(websocket)
        drop = streams.drop_event
        limit = faults.config.drop_websockets_after
        tasks = [
            asyncio.ensure_future(producer()),
            asyncio.ensure_future(drop.wait()),
            asyncio.ensure_future(_wait_disconnect(websocket)),
        ]
        if limit is not None:
            tasks.append(asyncio.ensure_future(asyncio.sleep(limit)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            streams.sockets.discard(websocket)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=1011)

    async def _wait_disconnect(websocket: WebSocket) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return

    async def asset_identifiers_stream(websocket: WebSocket) -> None:
        async def produce() -> None:
            queue = state.subscribe()
            try:
                await websocket.send_text(json.dumps(state.identifiers_frame()))
                while True:
                    await websocket.send_text(json.dumps(await queue.get()))
            finally:
                state.unsubscribe(queue)

        await _serve_stream(websocket, produce)

    async def health_stream(websocket: WebSocket) -> None:
        async def produce() -> None:
            while True:
                await websocket.send_text("ok")
                await asyncio.sleep(HEALTH_INTERVAL)

        await _serve_stream(websocket, produce)

    async def user_stream(websocket: WebSocket) -> None:
        async def produce() -> None:
            await websocket.send_text(json.dumps(state.user_profile()))
            await asyncio.Event().wait()

        await _serve_stream(websocket, produce)

    async def empty_identifiers_stream(websocket: WebSocket) -> None:
        async def produce() -> None:
            await websocket.send_text(json.dumps({"iterable": []}))
            await asyncio.Event().wait()

        await _serve_stream(websocket, produce)

    async def idle_stream(websocket: WebSocket) -> None:
        async def produce() -> None:
            await asyncio.Event().wait()

        await _serve_stream(websocket, produce)

    # --- control ------------------------------------------------------------------------------

    async def control_faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if not isinstance(body, dict):
                return PlainTextResponse("expected a JSON object", status_code=400)
            try:
                faults.apply(body)
            except (ValueError, TypeError) as exc:
                return PlainTextResponse(str(exc), status_code=400)
        return JSONResponse(faults.config.as_dict())

    async def control_clear(request: Request) -> Response:
        faults.clear()
        return JSONResponse(faults.config.as_dict())

    async def control_drop(request: Request) -> Response:
        count = len(streams.sockets)
        streams.drop_all()
        return JSONResponse({"dropped": count})

    async def control_refuse(request: Request) -> Response:
        if refuse is None:
            return PlainTextResponse("refusing is not available here", status_code=501)
        body = await _body(request)
        seconds = float(body.get("seconds", 5)) if isinstance(body, dict) else 5.0
        refuse(seconds)  # the server owns the timer; answering first lets the caller see this
        return JSONResponse({"refusing_for": seconds})

    async def control_stats(request: Request) -> Response:
        return JSONResponse(
            {
                "assets": len(state.assets),
                "applications": len(state.applications),
                "open_streams": len(streams.sockets),
                "requests_seen": faults.requests_seen,
                "failures_injected": faults.failures_injected,
            }
        )

    idle_paths = (
        "/conversations/stream/identifiers",
        "/anchors/stream/identifiers",
        "/ranges/stream/identifiers",
        "/workstream_summaries/stream/identifiers",
    )
    routes = [
        Route("/.well-known/health", health, methods=["GET", "HEAD"]),
        Route("/.well-known/version", version, methods=["GET", "HEAD"]),
        Route("/.well-known/installation/path", installation_path, methods=["GET"]),
        Route("/connect", connect, methods=["POST"]),
        Route("/user", user, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/applications", applications, methods=["GET"]),
        Route("/assets", assets_snapshot, methods=["GET"]),
        Route("/assets/identifiers", assets_identifiers, methods=["GET"]),
        Route("/assets/create", create_asset, methods=["POST"]),
        Route("/assets/search", search_get, methods=["GET"]),
        Route("/assets/search", search_post, methods=["POST"]),
        Route("/assets/{asset}", asset_snapshot, methods=["GET"]),
        Route("/assets/{asset}/formats", asset_formats, methods=["GET"]),
        Route("/assets/{asset}/delete", delete_asset, methods=["POST"]),
        Route("/asset/update", update_asset, methods=["POST"]),
        Route("/asset/{asset}", asset_snapshot, methods=["GET"]),
        Route("/asset/{asset}/formats", asset_formats, methods=["GET"]),
        Route("/asset/{asset}/tags/disassociate/{tag}", disassociate_tag, methods=["POST"]),
        Route("/format/update/value", format_update_value, methods=["POST"]),
        Route("/format/{format}", format_snapshot, methods=["GET"]),
        Route("/tags/create", create_tag, methods=["POST"]),
        Route("/annotations/create", create_annotation, methods=["POST"]),
        Route("/annotation/update", update_annotation, methods=["POST"]),
        Route("/search/full_text", search_text, methods=["GET"]),
        Route("/search/neural_code", search_text, methods=["GET"]),
        WebSocketRoute("/assets/stream/identifiers", asset_identifiers_stream),
        WebSocketRoute("/.well-known/stream/health", health_stream),
        WebSocketRoute("/user/stream", user_stream),
        *(WebSocketRoute(path, empty_identifiers_stream) for path in idle_paths),
        WebSocketRoute("/workstream_pattern_engine/processors/vision/status/stream", idle_stream),
        WebSocketRoute("/qgpt/stream", idle_stream),
        Route("/_emulator/faults", control_faults, methods=["GET", "POST"]),
        Route("/_emulator/faults/clear", control_clear, methods=["POST"]),
        Route("/_emulator/streams/drop", control_drop, methods=["POST"]),
        Route("/_emulator/refuse", control_refuse, methods=["POST"]),
        Route("/_emulator/stats", control_stats, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(FaultMiddleware, injector=faults)
    return app
