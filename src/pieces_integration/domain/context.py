"""User context rules (spec 6.3 UserContext): which fields change, and what may be shared."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass, replace
from typing import Any

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.model import (
    AIWFEContextState,
    Consent,
    ContextChange,
    UserContext,
    utcnow,
)

SCALAR_FIELDS = ("workspace_id", "current_task", "active_project")
LIST_FIELDS = ("active_files", "recent_assets", "keywords", "language_preferences")
# "limited" context sharing sends only these toward AIWFE (spec 8.1).
LIMITED_FIELDS = frozenset({"current_task", "active_project"})
MAX_LIST_ITEMS = 200
MAX_TEXT = 2000


def _check_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} must be text of at most {MAX_TEXT} characters", field=name)
    return value


def _check_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        raise InvalidInput(f"{name} must be a list of at most {MAX_LIST_ITEMS} items", field=name)
    cleaned: list[str] = []
    for item in value:
        text = _check_text(name, item)
        if text is not None and text not in cleaned:
            cleaned.append(text)
    return cleaned


def apply_update(
    current: UserContext, updates: dict[str, Any], *, source: str
) -> tuple[UserContext, list[ContextChange]]:
    """A new context with `updates` applied, and one change record per field that changed."""
    changed: dict[str, Any] = {}
    changes: list[ContextChange] = []
    now = utcnow()
    for name, raw in updates.items():
        if name in SCALAR_FIELDS:
            value: Any = _check_text(name, raw)
        elif name in LIST_FIELDS:
            value = _check_list(name, raw)
        elif name == "aiwfe_context":
            value = _aiwfe_state(raw)
        else:
            raise InvalidInput(f"unknown context field {name!r}", field=name)
        old = getattr(current, name)
        if old != value:
            changed[name] = value
            changes.append(
                ContextChange(current.user_id, name, _recorded(old), _recorded(value), source, now)
            )
    if not changes:
        return current, []
    updated = replace(current, **changed, version=current.version + 1, last_updated=now)
    return updated, changes


def _recorded(value: Any) -> Any:
    """A change record holds plain data (it is stored as JSON), not a nested dataclass."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def _aiwfe_state(raw: Any) -> AIWFEContextState | None:
    if raw is None:
        return None
    if isinstance(raw, AIWFEContextState):
        return raw
    if not isinstance(raw, dict):
        raise InvalidInput("aiwfe_context must be an object", field="aiwfe_context")
    return AIWFEContextState(
        active_chat=_check_text("aiwfe_context.active_chat", raw.get("active_chat")),
        recent_queries=_check_list("aiwfe_context.recent_queries", raw.get("recent_queries", [])),
        current_agent=_check_text("aiwfe_context.current_agent", raw.get("current_agent")),
    )


def shareable(changes: list[ContextChange], consent: Consent) -> list[ContextChange]:
    """The changes this user's consent lets us send to the other side."""
    if consent.context_sharing == "limited":
        return [change for change in changes if change.field in LIMITED_FIELDS]
    return list(changes)
