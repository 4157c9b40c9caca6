"""POST /api/v1/integrations/aiwfe/webhook: signed AIWFE events (docs/aiwfe-contract.yaml).

Order matters: bound the body before reading it whole, verify the signature before
parsing anything, and only then hand the event to the service layer.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pieces_integration.domain.webhook_events import (
    MAX_WEBHOOK_BODY_BYTES,
    MalformedWebhookBody,
    parse_webhook_event,
)
from pieces_integration.domain.webhook_signature import SIGNATURE_HEADER, verify
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.api.errors import PayloadTooLarge, problem
from pieces_integration.service_layer.webhooks import handle_aiwfe_event

router = APIRouter(prefix="/api/v1/integrations/aiwfe", tags=["integrations"])


class WebhookResponse(BaseModel):
    received: Literal[True] = True
    event_id: str
    status: Literal["processed", "ignored"]
    actions: int
    reason: str | None = None


def webhook_secrets(container: ContainerDep) -> list[str]:
    """AIWFE_WEBHOOK_SECRET, comma-separated while a secret is being rotated."""
    secret = container.settings.aiwfe_webhook_secret
    if secret is None:
        return []
    return [s.strip() for s in secret.get_secret_value().split(",") if s.strip()]


def webhook_clock() -> float:
    return time.time()


async def read_bounded_body(request: Request, limit: int = MAX_WEBHOOK_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"webhook body exceeds {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a lying or absent Content-Length: stop reading here
            raise PayloadTooLarge(f"webhook body exceeds {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhook",
    response_model=WebhookResponse,
    responses={
        400: {"description": "Body is not JSON"},
        401: {"description": "Missing, invalid or stale signature"},
        409: {"description": "Event id already processed (treat as delivered)"},
        413: {"description": "Body too large"},
        422: {"description": "JSON that is not a valid event envelope"},
    },
)
async def receive_aiwfe_webhook(
    request: Request,
    container: ContainerDep,
    secrets: Annotated[list[str], Depends(webhook_secrets)],
    now: Annotated[float, Depends(webhook_clock)],
) -> WebhookResponse | JSONResponse:
    """Receive an AIWFE event signed with `X-AIWFE-Signature` (HMAC-SHA256, 5-minute window).

    A redelivered event id answers 409 and changes nothing; AIWFE treats 409 as delivered.
    """
    body = await read_bounded_body(request)
    verify(request.headers.get(SIGNATURE_HEADER), body, secrets, now=now)
    try:
        event = parse_webhook_event(body)
    except MalformedWebhookBody as exc:
        return problem(400, exc.message, code=exc.code)
    outcome = await handle_aiwfe_event(event, uow_factory=container.uow, events=container.events)
    return WebhookResponse(
        event_id=outcome.event_id,
        status="processed" if outcome.status == "processed" else "ignored",
        actions=outcome.actions,
        reason=outcome.reason,
    )
