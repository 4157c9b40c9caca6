"""Conflicts: ours / theirs / base side by side with a diff; resolve: ours, theirs or a merge."""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response

from pieces_integration.domain.errors import Conflict, InvalidInput
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render

router = APIRouter(prefix="/console/conflicts")

ConflictId = Annotated[str, Path(min_length=1, max_length=64)]


def diff_lines(before: str, after: str) -> list[tuple[str, str]]:
    """(kind, text) per unified-diff line: kind is add, del, hunk or same."""
    lines = []
    for line in difflib.unified_diff(
        before.splitlines(), after.splitlines(), "theirs", "ours", lineterm="", n=3
    ):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        lines.append((kind, line))
    return lines


@router.get("", include_in_schema=False)
async def conflicts_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    conflicts = await container.sync.conflicts.for_user(principal, None, None)
    return render(request, "conflicts.html", {"conflicts": conflicts}, page="conflicts")


async def _detail(
    request: Request,
    principal: Any,
    container: Any,
    conflict_id: str,
    *,
    errors: dict[str, str] | None = None,
    merged: str | None = None,
    status_code: int = 200,
) -> Response:
    conflict = await container.sync.conflicts.get(principal, conflict_id)
    ours = str(conflict.ours.get("content", ""))
    theirs = str(conflict.theirs.get("content", ""))
    context = {
        "c": conflict,
        "ours": ours,
        "theirs": theirs,
        "base": None if conflict.base is None else str(conflict.base.get("content", "")),
        "diff": diff_lines(theirs, ours),
        "merged": ours if merged is None else merged,
        "errors": errors or {},
    }
    return render(request, "conflict.html", context, status_code=status_code, page="conflicts")


@router.get("/{conflict_id}", include_in_schema=False)
async def conflict_page(
    request: Request, conflict_id: ConflictId, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    return await _detail(request, principal, container, conflict_id)


@router.post("/{conflict_id}", include_in_schema=False, dependencies=[Csrf])
async def resolve_conflict(
    request: Request,
    conflict_id: ConflictId,
    principal: ConsolePrincipal,
    container: ContainerDep,
    resolution: Annotated[str, Form(max_length=16)] = "",
    content: Annotated[str, Form(max_length=10_000_000)] = "",
) -> Response:
    try:
        conflict = await container.sync.conflicts.resolve(
            principal, conflict_id, resolution, content if resolution == "merged" else None
        )
    except InvalidInput as exc:
        errors = {exc.field or "resolution": exc.message}
        return await _detail(
            request, principal, container, conflict_id, errors=errors, merged=content,
            status_code=422,
        )  # fmt: skip
    except Conflict as exc:
        return await _detail(
            request, principal, container, conflict_id, errors={"resolution": exc.message},
            merged=content, status_code=409,
        )  # fmt: skip
    container.sync.scheduler.poke(conflict.user_id)  # carry the choice to both sides
    return redirect(request, f"/console/conflicts/{conflict_id}?resolved=1")
