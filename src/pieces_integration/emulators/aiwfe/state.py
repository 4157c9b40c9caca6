"""The emulator's in-memory AIWFE: users' contexts, chats, templates, docs, suggestions."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class UnknownUser(KeyError):
    pass


@dataclass(slots=True)
class Faults:
    """Make the next `fail_next` contract calls answer `status` (tests of retries/breaker)."""

    fail_next: int = 0
    status: int = 503
    delay: float = 0.0
    retry_after: float | None = None
    clock_skew: float = 0.0  # seconds this AIWFE's clock runs ahead (+) or behind (-)


@dataclass(slots=True)
class AIWFEState:
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    chats: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: list[dict[str, Any]] = field(default_factory=list)
    docs: list[dict[str, Any]] = field(default_factory=list)
    frequent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    suggestions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def now_iso(self) -> str:
        """This AIWFE's own clock: the machine's, plus any injected skew."""
        moment = datetime.now(UTC) + timedelta(seconds=self.faults.clock_skew)
        return moment.isoformat().replace("+00:00", "Z")

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # --- users and contexts -------------------------------------------------------------

    def add_user(self, user_id: str, **context: Any) -> dict[str, Any]:
        ctx = self.contexts.get(user_id)
        if ctx is None:
            ctx = {
                "user_id": user_id,
                "workspace_id": context.get("workspace_id"),
                "current_task": None,
                "active_opportunity": None,
                "recent_chats": [],
                "recent_queries": list(context.get("recent_queries") or []),
                "current_agent": context.get("current_agent"),
                "keywords": list(context.get("keywords") or []),
                "version": 0,
                "updated_at": self.now_iso(),
            }
            self.contexts[user_id] = ctx
            self.frequent.setdefault(user_id, [])
            self.suggestions.setdefault(user_id, [])
        patch = {k: v for k, v in context.items() if k in ("current_task", "active_project")}
        if patch:
            self.patch_context(user_id, patch)
        return ctx

    def context(self, user_id: str) -> dict[str, Any]:
        try:
            return self.contexts[user_id]
        except KeyError:
            raise UnknownUser(user_id) from None

    def patch_context(self, user_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        ctx = self.context(user_id)
        before = json.dumps(ctx, sort_keys=True)
        if "current_task" in patch:
            title = patch["current_task"]
            current = ctx["current_task"]
            if title is None:
                ctx["current_task"] = None
            elif current is None or current["title"] != title:
                ctx["current_task"] = {"id": self.next_id("task"), "title": title, "tags": []}
        if "active_project" in patch:
            name = patch["active_project"]
            current = ctx["active_opportunity"]
            if name is None:
                ctx["active_opportunity"] = None
            elif current is None or current["name"] != name:
                ctx["active_opportunity"] = {"id": self.next_id("opp"), "name": name}
        if "keywords" in patch:
            ctx["keywords"] = list(patch["keywords"] or [])
        if json.dumps(ctx, sort_keys=True) != before:
            ctx["version"] += 1
            ctx["updated_at"] = self.now_iso()
        return ctx

    # --- chats --------------------------------------------------------------------------

    def add_chat(
        self, user_id: str, title: str | None = None, chat_id: str | None = None
    ) -> dict[str, Any]:
        ctx = self.context(user_id)
        chat_id = chat_id or self.next_id("chat")
        stamp = self.now_iso()
        chat: dict[str, Any] = {
            "id": chat_id,
            "user_id": user_id,
            "title": title,
            "created_at": stamp,
            "updated_at": stamp,
            "messages": [],
        }
        self.chats[chat_id] = chat
        ctx["recent_chats"] = [{"id": chat_id, "title": title, "updated_at": stamp}] + [
            c for c in ctx["recent_chats"] if c["id"] != chat_id
        ][:9]
        return chat

    def add_message(
        self, chat_id: str, role: str, content: str, message_id: str | None = None
    ) -> dict[str, Any]:
        chat = self.chats[chat_id]
        message = {"id": message_id or self.next_id("msg"), "role": role, "content": content,
                   "created_at": self.now_iso()}  # fmt: skip
        chat["messages"].append(message)
        chat["updated_at"] = message["created_at"]
        return message

    # --- assets -------------------------------------------------------------------------

    def user_assets(self, user_id: str) -> dict[str, dict[str, Any]]:
        self.context(user_id)
        return self.assets.setdefault(user_id, {})

    def put_asset(
        self, user_id: str, asset_id: str, write: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace; returns (asset, created). Unchanged fields keep the version."""
        assets = self.user_assets(user_id)
        fields = {
            "name": write["name"],
            "content": write["content"],
            "description": write.get("description"),
            "language": write.get("language"),
            "tags": list(dict.fromkeys(write.get("tags") or [])),
        }
        current = assets.get(asset_id)
        stamp = self.now_iso()
        if current is None:
            asset = {
                "id": asset_id,
                **fields,
                "version": 1,
                "created_at": stamp,
                "updated_at": stamp,
            }
            assets[asset_id] = asset
            return asset, True
        if any(current[k] != v for k, v in fields.items()):
            current.update(fields, version=current["version"] + 1, updated_at=stamp)
        return current, False

    # --- suggestions --------------------------------------------------------------------

    def create_suggestions(
        self, user_id: str, batch: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        self.context(user_id)
        digest = hashlib.sha256(json.dumps(batch, sort_keys=True).encode()).hexdigest()
        if idempotency_key is not None:
            seen = self.idempotency.get((user_id, idempotency_key))
            if seen is not None:
                if seen[0] != digest:
                    raise ValueError("Idempotency-Key reused with a different body")
                return seen[1]
        stored = self.suggestions.setdefault(user_id, [])
        known = {s["fingerprint"] for s in stored}
        created: list[str] = []
        duplicates: list[str] = []
        for suggestion in batch["suggestions"]:
            if suggestion["fingerprint"] in known:
                duplicates.append(suggestion["fingerprint"])
                continue
            known.add(suggestion["fingerprint"])
            item = {**suggestion, "id": self.next_id("sug"), "asset_id": batch["asset_id"],
                    "created_at": self.now_iso()}  # fmt: skip
            stored.append(item)
            created.append(item["id"])
        receipt = {"created": created, "duplicates": duplicates}
        if idempotency_key is not None:
            self.idempotency[(user_id, idempotency_key)] = (digest, receipt)
        return receipt

    # --- search helpers -----------------------------------------------------------------

    @staticmethod
    def _terms(text: str) -> set[str]:
        return {t for t in "".join(c.lower() if c.isalnum() else " " for c in text).split() if t}

    def search_docs(self, query: str, limit: int) -> list[dict[str, Any]]:
        terms = self._terms(query)
        scored = []
        for doc in self.docs:
            words = self._terms(
                " ".join([doc["title"], doc["summary"], doc["content"], *doc["tags"]])
            )
            score = len(terms & words)
            if score:
                scored.append((score, doc["id"], doc))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [d for _, _, d in scored[:limit]]

    def match_templates(
        self, keywords: list[str], current_task: str | None, limit: int
    ) -> list[dict[str, Any]]:
        terms = self._terms(" ".join(keywords) + " " + (current_task or ""))
        scored = []
        for template in self.templates:
            words = self._terms(
                " ".join([template["name"], template["description"], *template["tags"]])
            )
            scored.append((len(terms & words), template["usage_count"], template["id"], template))
        scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
        return [t for score, _, _, t in scored if score or not terms][:limit]

    def summary(self) -> dict[str, Any]:
        return {
            "users": sorted(self.contexts),
            "chats": len(self.chats),
            "suggestions": {u: len(s) for u, s in self.suggestions.items()},
            "deliveries": len(self.deliveries),
            "requests": self.requests,
        }

    # --- demo data ----------------------------------------------------------------------

    def seed_demo(self, user_id: str = "demo-user") -> None:
        self.add_user(user_id, keywords=["fastapi", "postgres"], current_agent="coder")
        self.patch_context(user_id, {"current_task": "Add pagination to the assets API",
                                     "active_project": "pieces-integration"})  # fmt: skip
        chat = self.add_chat(user_id, "Pagination in FastAPI", chat_id="chat_demo")
        self.add_message(chat["id"], "user", "How do I paginate a SQLAlchemy query in FastAPI?")
        self.add_message(
            chat["id"],
            "assistant",
            'Use `limit`/`offset` query parameters:\n\n```python\n@app.get("/items")\n'
            "async def items(limit: int = 50, offset: int = 0):\n"
            "    return await repo.page(limit=limit, offset=offset)\n```\n",
        )
        self.templates.extend(
            [
                {
                    "id": "tpl_bugfix",
                    "name": "Bug fix",
                    "description": "Reproduce, fix and test a bug",
                    "content": "1. Reproduce {{bug}}\n2. Write a failing test\n3. Fix",
                    "variables": ["bug"],
                    "tags": ["bug", "testing"],
                    "usage_count": 12,
                    "last_used": self.now_iso(),
                },
                {
                    "id": "tpl_api",
                    "name": "New API endpoint",
                    "description": "Add a REST endpoint with tests",
                    "content": "Route {{path}} -> service -> repository",
                    "variables": ["path"],
                    "tags": ["api", "fastapi", "pagination"],
                    "usage_count": 7,
                    "last_used": None,
                },
            ]
        )
        self.docs.extend(
            [
                {
                    "id": "doc_pagination",
                    "title": "Pagination guidelines",
                    "summary": "Cursor vs offset",
                    "content": "Prefer keyset pagination for large tables; offset for small ones.",
                    "url": "https://docs.aiwfe.example/pagination",
                    "tags": ["api", "postgres"],
                },
                {
                    "id": "doc_webhooks",
                    "title": "Webhooks",
                    "summary": "Signed event delivery",
                    "content": "Events are signed with HMAC-SHA256 and retried for 24 hours.",
                    "url": "https://docs.aiwfe.example/webhooks",
                    "tags": ["integration"],
                },
            ]
        )
        self.frequent[user_id] = [
            {
                "id": "fi_1",
                "type": "code_snippet",
                "title": "async SQLAlchemy session",
                "content": "async with session.begin(): ...",
                "language": "python",
                "tags": ["sqlalchemy"],
                "usage_count": 31,
                "last_used": self.now_iso(),
            },
            {
                "id": "fi_2",
                "type": "template",
                "title": "Bug fix",
                "content": None,
                "language": None,
                "tags": ["bug"],
                "usage_count": 12,
                "last_used": self.now_iso(),
            },
            {
                "id": "fi_3",
                "type": "task",
                "title": "Review PRs",
                "content": None,
                "language": None,
                "tags": [],
                "usage_count": 9,
                "last_used": self.now_iso(),
            },
        ]
