"""Admin (admin role): users, API keys (create, revoke), the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response

from pieces_integration.domain.auth import ensure_admin
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render
from pieces_integration.service_layer.auth import create_api_key, revoke_api_key

router = APIRouter(prefix="/console/admin")

ROLES = [role.value for role in Role]


async def _page(
    request: Request,
    container: ContainerDep,
    *,
    errors: dict[str, str] | None = None,
    new_key: str | None = None,
    status_code: int = 200,
) -> Response:
    async with container.uow(readonly=True) as uow:
        user_ids = await uow.users.list_ids()
        users = [user for uid in user_ids[:500] if (user := await uow.users.get(uid))]
        keys = await uow.api_keys.list_keys()
        audit = await uow.audit.entries(user_id=None, since=None, until=None, limit=100)
    bridges = [view for user in users for view in await container.bridge.service.list(user.id)]
    context = {
        "bridges": bridges,
        "users": users,
        "keys": keys,
        "audit": audit,
        "roles": ROLES,
        "errors": errors or {},
        "new_key": new_key,
    }
    return render(request, "admin.html", context, status_code=status_code, page="admin")


@router.get("", include_in_schema=False)
async def admin_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    ensure_admin(principal)
    return await _page(request, container)


@router.post("/keys", include_in_schema=False, dependencies=[Csrf])
async def create_key(
    request: Request,
    principal: ConsolePrincipal,
    container: ContainerDep,
    user_id: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=16)] = "user",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ensure_admin(principal)
    errors: dict[str, str] = {}
    if not user_id.strip() or len(user_id.strip()) > 128:
        errors["user_id"] = "Enter a user id (at most 128 characters)."
    if role not in ROLES:
        errors["role"] = f"Choose one of: {', '.join(ROLES)}."
    if not name.strip() or len(name.strip()) > 128:
        errors["name"] = "Name the key (at most 128 characters)."
    if errors:
        return await _page(request, container, errors=errors, status_code=422)
    _, token = await create_api_key(
        container.uow,
        user_id=user_id.strip(),
        role=Role(role),
        name=name.strip(),
        actor_id=principal.user_id,
    )
    return await _page(request, container, new_key=token)


@router.post("/keys/{key_id}/revoke", include_in_schema=False, dependencies=[Csrf])
async def revoke_key(
    request: Request,
    key_id: Annotated[str, Path(max_length=64)],
    principal: ConsolePrincipal,
    container: ContainerDep,
) -> Response:
    ensure_admin(principal)
    try:
        await revoke_api_key(container.uow, key_id, actor_id=principal.user_id)
    except PiecesIntegrationError as exc:
        return await _page(request, container, errors={"keys": exc.message}, status_code=404)
    return redirect(request, "/console/admin")
