"""JSON of the AIWFE contract <-> the port's data classes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pieces_integration.domain.code_findings import TaskSuggestion
from pieces_integration.ports.aiwfe import (
    AIWFEAsset,
    AIWFEAssetWrite,
    AIWFEOpportunity,
    AIWFETask,
    AIWFEUserContext,
    Chat,
    ChatMessage,
    ChatRef,
    DocResult,
    FrequentItem,
    TaskTemplate,
)


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value))


def _dt_required(value: Any) -> datetime:
    parsed = _dt(value)
    if parsed is None:
        raise ValueError("missing timestamp")
    return parsed


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def user_context(obj: Mapping[str, Any]) -> AIWFEUserContext:
    task = obj.get("current_task")
    opportunity = obj.get("active_opportunity")
    return AIWFEUserContext(
        user_id=str(obj["user_id"]),
        version=int(obj["version"]),
        updated_at=_dt_required(obj["updated_at"]),
        workspace_id=obj.get("workspace_id"),
        current_task=AIWFETask(str(task["id"]), str(task["title"]), _strs(task.get("tags")))
        if task
        else None,
        active_opportunity=AIWFEOpportunity(str(opportunity["id"]), str(opportunity["name"]))
        if opportunity
        else None,
        recent_chats=tuple(
            ChatRef(str(c["id"]), c.get("title"), _dt(c.get("updated_at")))
            for c in obj.get("recent_chats") or ()
        ),
        recent_queries=_strs(obj.get("recent_queries")),
        current_agent=obj.get("current_agent"),
        keywords=_strs(obj.get("keywords")),
    )


def chat(obj: Mapping[str, Any]) -> Chat:
    return Chat(
        id=str(obj["id"]),
        user_id=str(obj["user_id"]),
        title=obj.get("title"),
        created_at=_dt(obj.get("created_at")),
        updated_at=_dt(obj.get("updated_at")),
        messages=tuple(
            ChatMessage(
                str(m["id"]), str(m["role"]), str(m["content"]), _dt_required(m["created_at"])
            )
            for m in obj["messages"]
        ),
    )


def task_template(obj: Mapping[str, Any]) -> TaskTemplate:
    return TaskTemplate(
        id=str(obj["id"]),
        name=str(obj["name"]),
        description=str(obj["description"]),
        content=str(obj["content"]),
        variables=_strs(obj.get("variables")),
        tags=_strs(obj.get("tags")),
        usage_count=int(obj.get("usage_count") or 0),
        last_used=_dt(obj.get("last_used")),
    )


def doc_result(obj: Mapping[str, Any]) -> DocResult:
    return DocResult(
        id=str(obj["id"]),
        title=str(obj["title"]),
        summary=str(obj["summary"]),
        content=str(obj["content"]),
        url=obj.get("url"),
        tags=_strs(obj.get("tags")),
    )


def frequent_item(obj: Mapping[str, Any]) -> FrequentItem:
    return FrequentItem(
        id=str(obj["id"]),
        type=str(obj["type"]),
        title=str(obj["title"]),
        usage_count=int(obj["usage_count"]),
        last_used=_dt_required(obj["last_used"]),
        content=obj.get("content"),
        language=obj.get("language"),
        tags=_strs(obj.get("tags")),
    )


def suggestion(s: TaskSuggestion) -> dict[str, Any]:
    return {
        "type": s.type,
        "title": s.title,
        "description": s.description,
        "priority": s.priority,
        "source": s.source,
        "line": s.line,
        "kind": s.kind,
        "fingerprint": s.fingerprint,
    }


def asset(obj: Mapping[str, Any]) -> AIWFEAsset:
    return AIWFEAsset(
        id=str(obj["id"]),
        name=str(obj["name"]),
        content=str(obj["content"]),
        version=int(obj["version"]),
        created_at=_dt_required(obj["created_at"]),
        updated_at=_dt_required(obj["updated_at"]),
        description=obj.get("description"),
        language=obj.get("language"),
        tags=_strs(obj.get("tags")),
    )


def asset_write(write: AIWFEAssetWrite) -> dict[str, Any]:
    return {
        "name": write.name,
        "content": write.content,
        "description": write.description,
        "language": write.language,
        "tags": list(dict.fromkeys(write.tags)),
    }
