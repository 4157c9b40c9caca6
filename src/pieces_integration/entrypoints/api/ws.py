"""The `/ws` endpoint (spec 6.2) and `POST /api/v1/ws-ticket`.

Authentication: `Authorization: Bearer <jwt or API key>` or `X-API-Key` (services), or
`?ticket=` from `POST /api/v1/ws-ticket` (browsers, which cannot set WebSocket headers).
A browser's `Origin` must be one of CORS_ORIGINS. Close codes: `realtime_protocol.CloseCode`.
"""

from __future__ import annotations

import json
import math
from functools import partial
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError

from pieces_integration.bootstrap import Container
from pieces_integration.domain.auth import Principal, resolve_user
from pieces_integration.domain.errors import (
    Forbidden,
    PiecesIntegrationError,
    RateLimited,
    Unauthorized,
)
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.ws import (
    PingPayload,
    SubscribePayload,
    SyncRequestPayload,
    UnsubscribePayload,
    WsTicketPublic,
)
from pieces_integration.entrypoints.api.ws_channel import StarletteChannel
from pieces_integration.service_layer.auth import RequestMeta
from pieces_integration.service_layer.events import EVENT_TYPES, subscription_filter
from pieces_integration.service_layer.realtime_protocol import CloseCode, control
from pieces_integration.service_layer.realtime_session import Session
from pieces_integration.service_layer.realtime_sync_request import run_sync_request

router = APIRouter()


def _origin_allowed(origin: str | None, allowed: list[str], host: str | None = None) -> bool:
    # Non-browser clients send no Origin; they authenticate with a header, not ambient state.
    # The service's own pages (the console) are same-origin: their Origin names our Host.
    if origin is None or "*" in allowed or origin.rstrip("/") in allowed:
        return True
    return host is not None and origin.rstrip("/").split("://", 1)[-1] == host


async def _authenticate(websocket: WebSocket, container: Container) -> Principal:
    client = websocket.client.host if websocket.client else None
    ticket = websocket.query_params.get("ticket")
    if ticket:
        async with container.auth_throttle.attempt(kind="ticket", ip=client):
            principal = await container.realtime.tickets.redeem(ticket)
        # Issued up to a ticket's lifetime ago: the account may have been disabled since.
        await container.authenticator.ensure_active(principal.user_id)
        return principal
    authorization = websocket.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    bearer = credential.strip() if scheme.lower() == "bearer" else None
    return await container.authenticator.authenticate(
        bearer=bearer or None,
        api_key=websocket.headers.get("x-api-key"),
        meta=RequestMeta(ip=client),
    )


@router.websocket("/ws")
async def websocket_events(websocket: WebSocket) -> None:
    """Real-time events for the authenticated user (spec 6.2)."""
    container: Container = websocket.app.state.container
    hub = container.realtime.hub
    origins = container.settings.server.cors_origins
    if not _origin_allowed(websocket.headers.get("origin"), origins, websocket.headers.get("host")):
        await websocket.close(int(CloseCode.POLICY_VIOLATION), "origin not allowed")
        return
    try:
        principal = await _authenticate(websocket, container)
    except (Unauthorized, Forbidden) as exc:
        # Accept first so the client can read why (a refused handshake is just a 403).
        await websocket.accept()
        await websocket.close(int(CloseCode.UNAUTHORIZED), exc.message[:120])
        return
    except RateLimited as exc:
        await websocket.accept()
        wait = max(1, math.ceil(exc.retry_after))
        await websocket.close(
            int(CloseCode.TOO_MANY_ATTEMPTS), f"{exc.message[:80]}; retry in {wait} s"
        )
        return
    await websocket.accept()
    await hub.serve(StarletteChannel(websocket), principal, MessageRouter(container).handle)


class MessageRouter:
    """Parses one client message and runs it; a bad message gets an `error`, never a close."""

    def __init__(self, container: Container) -> None:
        self._container = container

    async def handle(self, session: Session, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            session.send_error("invalid_json", "the message is not valid JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            session.send_error("invalid_message", 'a message is {"type": string, "payload": {}}')
            return
        kind: str = message["type"]
        raw = message.get("payload", {})
        handler = {
            "ping": self._ping,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "sync_request": self._sync_request,
        }.get(kind)
        if handler is None:
            session.send_error(
                "unknown_message_type",
                f"unknown message type {kind[:64]!r}",
                {"supported": ["ping", "subscribe", "unsubscribe", "sync_request"]},
            )
            return
        try:
            await handler(session, raw if raw is not None else {})
        except ValidationError as exc:
            session.send_error(
                "invalid_message",
                f"invalid {kind} payload",
                {
                    "errors": [
                        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()
                    ]
                },
            )
        except PiecesIntegrationError as exc:
            session.send_error(exc.code, exc.message, exc.details)

    @staticmethod
    def _parse(model: type[BaseModel], raw: Any) -> Any:
        return model.model_validate(raw)

    async def _ping(self, session: Session, raw: Any) -> None:
        self._parse(PingPayload, raw)
        session.enqueue(control("pong", {}))

    async def _subscribe(self, session: Session, raw: Any) -> None:
        payload: SubscribePayload = self._parse(SubscribePayload, raw)
        user_id = resolve_user(session.principal, payload.user_id)
        events = None
        if payload.events is not None:
            events, unknown = subscription_filter(payload.events)
            if unknown:
                session.send_error(
                    "invalid_message",
                    "unknown event types in the subscribe filter",
                    {"unknown": unknown, "supported": sorted(EVENT_TYPES)},
                )
                return
        await session.subscribe(user_id, events, payload.last_event_id)

    async def _unsubscribe(self, session: Session, raw: Any) -> None:
        payload: UnsubscribePayload = self._parse(UnsubscribePayload, raw)
        user_id = resolve_user(session.principal, payload.user_id)
        removed = session.unsubscribe(user_id)
        session.enqueue(control("unsubscribed", {"user_id": user_id, "was_subscribed": removed}))

    async def _sync_request(self, session: Session, raw: Any) -> None:
        payload: SyncRequestPayload = self._parse(SyncRequestPayload, raw)
        user_id = resolve_user(session.principal, payload.user_id)
        if not session.principal.role.may_write:
            raise Forbidden("the guest role cannot start a sync", details={"role": "guest"})
        trigger = self._container.realtime.sync_trigger
        if session.busy:
            session.send_error("sync_in_progress", "a sync requested here is still running")
            return
        publish = self._container.events.publish
        session.spawn(
            partial(run_sync_request, session, trigger, publish, user_id, force=payload.force)
        )


tickets_router = APIRouter(prefix="/api/v1", tags=["realtime"])


@tickets_router.post("/ws-ticket", response_model=WsTicketPublic)
async def create_ws_ticket(principal: CurrentPrincipal, container: ContainerDep) -> WsTicketPublic:
    """A single-use ticket for opening `/ws?ticket=...` from a browser (valid a few seconds)."""
    tickets = container.realtime.tickets
    return WsTicketPublic(ticket=await tickets.issue(principal), expires_in=tickets.ttl)
