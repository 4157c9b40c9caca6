"""The spec 6.3 Suggestion object a chosen candidate is answered as."""

from __future__ import annotations

from typing import Any

from pieces_integration.domain.ranking import ScoredSuggestion, SuggestionAction
from pieces_integration.service_layer.suggestions.candidates import Extra

_ACTION_LABELS = {
    SuggestionAction.COPY: "Copy",
    SuggestionAction.INSERT: "Insert",
    SuggestionAction.CREATE_TASK: "Create task",
    SuggestionAction.OPEN_FILE: "Open file",
}


def suggestion_payload(item: ScoredSuggestion, extra: Extra) -> dict[str, Any]:
    c = item.candidate
    actions = []
    for action in item.actions:
        if action is SuggestionAction.COPY:
            payload: dict[str, Any] = {"text": c.text}
        elif action is SuggestionAction.INSERT:
            payload = {"text": c.text, "language": c.language}
        elif action is SuggestionAction.CREATE_TASK:
            payload = {"title": c.title, "description": extra.description or c.text[:500]}
        else:
            payload = {"file_path": c.file_path, "line_numbers": extra.line_numbers}
        actions.append({"type": action.value, "label": _ACTION_LABELS[action], "payload": payload})
    return {
        "id": c.key,
        "type": c.kind.value,
        "title": c.title,
        "description": extra.description,
        "content": extra.content,
        "relevance_score": item.score,
        "source": c.source,
        "metadata": {
            "language": c.language,
            "tags": list(c.tags),
            "usage_count": c.usage_count,
            "last_used": c.last_used.isoformat() if c.last_used else None,
            "reasoning": "; ".join(item.reasons),
        },
        "actions": actions,
        "attribution": extra.attribution,
    }
