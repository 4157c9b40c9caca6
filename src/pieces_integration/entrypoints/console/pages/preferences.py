"""Preferences (spec 7.1 step 5): the form over `PreferencesService`, errors by field."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pieces_integration.bootstrap import Container
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.preferences import (
    MAX_SYNC_SECONDS,
    MIN_SYNC_SECONDS,
    SHARING_TEAM_PREFIX,
    WEBHOOK_EVENTS,
    WEBSOCKET_EVENTS,
)
from pieces_integration.domain.teams import TeamAction, allows
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.pages.wizard_steps import STEPS
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render
from pieces_integration.service_layer.preferences import UserPreferences

router = APIRouter(prefix="/console/preferences")


def _chosen(values: frozenset[str] | None, everything: frozenset[str]) -> set[str]:
    return set(everything if values is None else values)


async def share_targets(container: Container, principal: Principal) -> list[dict[str, str]]:
    """The teams the user may share into: the sharing default's choices besides private."""
    views = await container.teams.of_caller(principal)
    return [
        {"value": SHARING_TEAM_PREFIX + v.team.id, "name": v.team.name}
        for v in sorted(views, key=lambda v: v.team.name.lower())
        if allows(v.role, TeamAction.SHARE)
    ]


def form_context(
    view: UserPreferences,
    *,
    teams: list[dict[str, str]],
    next_url: str = "/console/preferences?saved=1",
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prefs, consent = view.preferences, view.consent
    notes = prefs.notifications
    values = {
        "sync_frequency_seconds": ""
        if prefs.sync_frequency_seconds is None
        else str(prefs.sync_frequency_seconds),
        "asset_sync": consent.asset_sync,
        "context_sharing": consent.context_sharing,
        "analytics": consent.analytics,
        "team_collaboration": consent.team_collaboration,
        "websocket_events": _chosen(notes.websocket_events, WEBSOCKET_EVENTS),
        "webhook_events": _chosen(notes.webhook_events, WEBHOOK_EVENTS),
        "sharing_default": prefs.sharing_default,
        **(submitted or {}),
    }
    return {
        "prefs": values,
        "effective_seconds": view.effective_sync_seconds,
        "all_websocket_events": sorted(WEBSOCKET_EVENTS),
        "all_webhook_events": sorted(WEBHOOK_EVENTS),
        "min_seconds": MIN_SYNC_SECONDS,
        "max_seconds": MAX_SYNC_SECONDS,
        "next_url": next_url,
        "errors": errors or {},
        "share_teams": teams,
    }


def _parse(form: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, Any]]:
    """(changes, privacy, errors, what was submitted) from the posted form."""
    errors: dict[str, str] = {}
    raw_seconds = str(form.get("sync_frequency_seconds", "")).strip()
    changes: dict[str, Any] = {}
    if raw_seconds == "":
        changes["sync_frequency_seconds"] = None
    else:
        try:
            changes["sync_frequency_seconds"] = int(raw_seconds)
        except ValueError:
            errors["sync_frequency_seconds"] = "Enter a whole number of seconds, or leave it empty."
    websocket = {str(v) for v in form.getlist("websocket_events")}
    webhook = {str(v) for v in form.getlist("webhook_events")}
    changes["notifications"] = {
        # Everything ticked means "all", so event types added later are pushed too.
        "websocket_events": None if websocket == WEBSOCKET_EVENTS else sorted(websocket),
        "webhook_events": None if webhook == WEBHOOK_EVENTS else sorted(webhook),
    }
    changes["sharing_default"] = str(form.get("sharing_default", "private"))
    privacy = {
        "asset_sync": form.get("asset_sync") == "on",
        "context_sharing": str(form.get("context_sharing", "full")),
        "analytics": form.get("analytics") == "on",
        "team_collaboration": form.get("team_collaboration") == "on",
    }
    submitted = {
        "sync_frequency_seconds": raw_seconds,
        "websocket_events": websocket,
        "webhook_events": webhook,
        "sharing_default": changes["sharing_default"],
        **privacy,
    }
    return changes, privacy, errors, submitted


@router.get("", include_in_schema=False)
async def preferences_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    view = await container.preferences.get(principal, principal.user_id)
    context = form_context(view, teams=await share_targets(container, principal))
    context["saved"] = bool(request.query_params.get("saved"))
    return render(request, "preferences.html", context, page="preferences")


@router.post("", include_in_schema=False, dependencies=[Csrf])
async def save_preferences(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    form = await request.form()
    next_url = str(form.get("next", "/console/preferences?saved=1"))
    if not next_url.startswith("/console"):
        next_url = "/console/preferences?saved=1"
    changes, privacy, errors, submitted = _parse(form)
    if not errors:
        try:
            await container.preferences.update(principal, principal.user_id, changes, privacy)
            return redirect(request, next_url)
        except InvalidInput as exc:
            errors[_form_field(exc.field)] = exc.message
    view = await container.preferences.get(principal, principal.user_id)
    teams = await share_targets(container, principal)
    context = form_context(view, teams=teams, next_url=next_url, errors=errors, submitted=submitted)
    template = "setup/preferences.html" if next_url.startswith("/console/setup") else None
    if template:
        context.update({"steps": STEPS, "step": "preferences"})
    return render(
        request, template or "preferences.html", context, status_code=422, page="preferences"
    )


def _form_field(field: str | None) -> str:
    names = {
        "notifications.websocket_events": "websocket_events",
        "notifications.webhook_events": "webhook_events",
        "privacy.context_sharing": "context_sharing",
    }
    return names.get(field or "", field or "form")
