"""Privacy (spec 8.1): export, import, delete, consent; disabling accounts and the audit
log (admin)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Path, Query, Response, status
from fastapi.responses import StreamingResponse

from pieces_integration.domain.auth import ensure_admin
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.users import (
    AuditEntryPublic,
    ConsentPublic,
    ConsentUpdate,
    ImportResult,
    UserAccountPublic,
    UserUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["privacy"])

UserId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get(
    "/users/{user_id}/export",
    summary="Download all of a user's data as one JSON document (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def export_user(
    user_id: UserId, principal: CurrentPrincipal, container: ContainerDep
) -> StreamingResponse:
    stream = await container.privacy.export(principal, user_id)
    # Header values are latin-1 and a user id may be any text: an ASCII fallback name, and the
    # exact one percent-encoded (RFC 6266 filename*).
    filename = f"pieces-integration-{user_id}.json"
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    disposition = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    )
    return StreamingResponse(
        stream, media_type="application/json", headers={"Content-Disposition": disposition}
    )


@router.post(
    "/users/{user_id}/import",
    status_code=status.HTTP_201_CREATED,
    summary="Restore an export into an empty account",
)
async def import_user(
    user_id: UserId,
    document: Annotated[dict[str, Any], Body(description="A document from /export")],
    principal: CurrentPrincipal,
    container: ContainerDep,
) -> ImportResult:
    count = await container.privacy.import_(principal, user_id, document)
    return ImportResult(user_id=user_id, assets=count)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete the user and all their data (the audit record of the deletion stays)",
)
async def delete_user(
    user_id: UserId, principal: CurrentPrincipal, container: ContainerDep
) -> Response:
    await container.privacy.delete(principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/users/{user_id}",
    summary="Disable or re-enable an account (admin only; the data stays)",
    tags=["users"],
)
async def update_user(
    user_id: UserId, body: UserUpdate, principal: CurrentPrincipal, container: ContainerDep
) -> UserAccountPublic:
    user = await container.accounts.set_disabled(principal, user_id, disabled=body.disabled)
    return UserAccountPublic.of(user)


@router.get("/users/{user_id}/consent", summary="The user's privacy choices")
async def read_consent(
    user_id: UserId, principal: CurrentPrincipal, container: ContainerDep
) -> ConsentPublic:
    return ConsentPublic.of(await container.privacy.consent(principal, user_id))


@router.put("/users/{user_id}/consent", summary="Change the user's privacy choices")
async def update_consent(
    user_id: UserId, body: ConsentUpdate, principal: CurrentPrincipal, container: ContainerDep
) -> ConsentPublic:
    consent = await container.privacy.set_consent(principal, user_id, body.changes())
    return ConsentPublic.of(consent)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get("/audit", summary="The audit log (admin only)", tags=["audit"])
async def read_audit(
    principal: CurrentPrincipal,
    container: ContainerDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryPublic]:
    ensure_admin(principal)
    async with container.uow(readonly=True) as uow:
        entries = await uow.audit.entries(
            user_id=user_id, since=_utc(since), until=_utc(until), limit=limit
        )
    return [AuditEntryPublic.of(entry) for entry in entries]
