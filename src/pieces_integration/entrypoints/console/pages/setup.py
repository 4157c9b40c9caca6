"""The setup wizard (spec 7.1): detect → connect → initial sync → AIWFE → preferences → done.

Every step calls the same use cases as the API. The initial sync runs in the scheduler, not
in the request, so closing the browser does not stop it; the progress fragment reads where
it is now (counts, rate, ETA, errors) whenever the page is open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from pieces_integration.domain.auth import ensure_can_write
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.pages.preferences import form_context, share_targets
from pieces_integration.entrypoints.console.pages.wizard_steps import STEP_NAMES, STEPS
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render
from pieces_integration.service_layer.auth import ensure_user

router = APIRouter(prefix="/console/setup")


def _page(request: Request, step: str, **context: object) -> Response:
    values = {"steps": STEPS, "step": step, **context}
    return render(request, f"setup/{step}.html", values, page="setup")


@router.get("", include_in_schema=False)
async def wizard(
    request: Request,
    principal: ConsolePrincipal,
    container: ContainerDep,
    step: str = "detect",
    url: str | None = None,
) -> Response:
    if step not in STEP_NAMES:
        step = "detect"
    context: dict[str, object] = {"url": url or container.sync.pieces.default_url, "errors": {}}
    if step == "aiwfe":
        context["aiwfe_url"] = container.settings.aiwfe_api_url
    if step == "preferences":
        view = await container.preferences.get(principal, principal.user_id)
        teams = await share_targets(container, principal)
        context.update(form_context(view, teams=teams, next_url="/console/setup?step=done"))
    return _page(request, step, **context)


@router.post("/detect", include_in_schema=False, dependencies=[Csrf])
async def detect(
    request: Request,
    principal: ConsolePrincipal,
    container: ContainerDep,
    url: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    try:
        found = await container.sync.pieces.detect(url.strip() or None)
    except PiecesIntegrationError as exc:
        errors = {"url": exc.message}
        return _page(request, "detect", url=url, errors=errors)
    return _page(request, "detect", url=found.url or url, detection=found, errors={})


@router.post("/connect", include_in_schema=False, dependencies=[Csrf])
async def connect(
    request: Request,
    principal: ConsolePrincipal,
    container: ContainerDep,
    url: Annotated[str, Form(max_length=2048)] = "",
    api_key: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    ensure_can_write(principal)
    if not url.strip():
        return _page(request, "connect", url=url, errors={"url": "Enter the Pieces OS URL."})
    try:
        result = await container.sync.pieces.connect(
            principal.user_id,
            url.strip(),
            api_key=api_key or None,
            preferences={"initial_sync": False},  # the wizard starts it on the next step
            actor_id=principal.user_id,
        )
    except PiecesIntegrationError as exc:
        return _page(request, "connect", url=url, errors={"url": exc.message})
    if not result.success:
        return _page(request, "connect", url=url, result=result, errors={})
    return redirect(request, "/console/setup?step=sync")


@router.post("/sync", include_in_schema=False, dependencies=[Csrf])
async def start_sync(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    ensure_can_write(principal)
    async with container.uow() as uow:
        await ensure_user(uow, principal.user_id, principal.role)
        await uow.commit()
    container.sync.progress.clear(principal.user_id)
    # Owned by the scheduler: it goes on when the browser closes.
    container.sync.scheduler.start(principal.user_id, trigger="initial", join=True)
    return redirect(request, "/console/setup?step=sync&started=1")


@router.get("/progress", include_in_schema=False)
async def progress(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    owner = principal.user_id
    running = container.sync.scheduler.running(owner)
    async with container.uow(readonly=True) as uow:
        last = await uow.sync_runs.latest(owner)
        library = await uow.assets.count(owner)
    context = {
        "library": library,
        "running": running,
        "report": container.sync.progress.current(owner),
        "last": last,
    }
    return render(request, "setup/_progress.html", context)


@router.post("/aiwfe", include_in_schema=False, dependencies=[Csrf])
async def test_aiwfe(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    client = container.sync.aiwfe
    context: dict[str, object] = {"aiwfe_url": container.settings.aiwfe_api_url, "errors": {}}
    if client is None:
        context["errors"] = {"aiwfe": "AIWFE is not configured on this service."}
        return _page(request, "aiwfe", **context)
    try:
        context["health"] = await client.health_check()
    except PiecesIntegrationError as exc:
        context["errors"] = {"aiwfe": f"AIWFE did not answer: {exc.message}"}
    return _page(request, "aiwfe", **context)
