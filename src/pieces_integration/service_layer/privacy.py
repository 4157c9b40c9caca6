"""Privacy (spec 8.1): export all of a user's data, import it back, purge it, consent.

The export is one JSON document, streamed so a library of any size never sits in memory.
Import restores exactly what was exported (ids, versions, timestamps, sync links).
Deletion removes the user from the database, the cache, the event log, the rate limiter and
every registered index (the vector store registers itself); the audit record of the deletion
stays, and the user's other audit entries keep only who did what and when. Assets the user
shared into teams stay there as "deleted user"'s (`team_departure`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pieces_integration.domain.auth import Principal, ensure_can_write, resolve_user
from pieces_integration.domain.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    UpstreamError,
)
from pieces_integration.domain.model import (
    AIWFEContextState,
    Asset,
    AssetLink,
    AssetSource,
    AuditEntry,
    Consent,
    ContextChange,
    PiecesContextState,
    Role,
    Side,
    SuggestionFeedback,
    User,
    UserContext,
    is_deleted_user,
    utcnow,
)
from pieces_integration.domain.preferences import Preferences, apply_changes
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.ports.event_log import EventLog
from pieces_integration.ports.infrastructure import Cache
from pieces_integration.ports.rate_limit import RateLimiter
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.events import asset_payload, to_jsonable
from pieces_integration.service_layer.revocation import Revocations, user_subject
from pieces_integration.service_layer.team_departure import depart_teams
from pieces_integration.service_layer.team_events import TeamEvents

EXPORT_FORMAT = "pieces-integration-export"
EXPORT_VERSION = 1
_PAGE = 500

UserPurgeHook = Callable[[str], Awaitable[object]]

log = logging.getLogger(__name__)


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _dt_required(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _person(user_id: str) -> str:
    """The reserved deleted-user principal holds every deleted user's team assets: it is
    not an account to delete, import into or set choices for."""
    if is_deleted_user(user_id):
        raise NotFound("user", user_id)
    return user_id


def user_cache_prefix(user_id: str) -> str:
    """Every cache key about a user starts with this, so deletion can find them all.

    The id is percent-encoded: user "alice"'s prefix must not also cover "alice:x"'s keys.
    """
    return f"user:{quote(user_id, safe='')}:"


@dataclass
class PrivacyService:
    uow: UnitOfWorkFactory
    cache: Cache
    event_log: EventLog | None = None
    rate_limiter: RateLimiter | None = None
    purge_hooks: list[UserPurgeHook] = field(default_factory=list)
    # Ends the deleted user's live sessions (WebSocket, MCP, bridge) on every replica.
    revocations: Revocations | None = None
    # Tells the remaining members of the deleted user's teams (issue 16).
    team_events: TeamEvents | None = None

    # --- consent -------------------------------------------------------------------------

    async def consent(self, principal: Principal, user_id: str) -> Consent:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            user = await uow.users.get(owner)
        return user.consent if user else Consent()

    async def set_consent(
        self, principal: Principal, user_id: str, changes: dict[str, Any]
    ) -> Consent:
        ensure_can_write(principal)
        owner = _person(resolve_user(principal, user_id))
        async with self.uow() as uow:
            user = await uow.users.get(owner)
            if user is None:
                user = User(
                    id=owner, role=Role.USER if owner != principal.user_id else principal.role
                )
                await uow.users.add(user)
            before = asdict(user.consent)
            user.consent = Consent(**{**before, **changes})
            user.updated_at = utcnow()
            await uow.users.update(user)
            await uow.audit.add(
                AuditEntry(
                    "consent_changed",
                    actor_id=principal.user_id,
                    user_id=owner,
                    details={"from": before, "to": asdict(user.consent)},
                )
            )
            await uow.commit()
        return user.consent

    # --- export --------------------------------------------------------------------------

    async def export(self, principal: Principal, user_id: str) -> AsyncIterator[bytes]:
        """Check access and audit now; the returned iterator streams the document."""
        owner = resolve_user(principal, user_id)
        async with self.uow() as uow:
            if await uow.users.get(owner) is None:
                raise NotFound("user", owner)
            await uow.audit.add(
                AuditEntry("user_exported", actor_id=principal.user_id, user_id=owner)
            )
            await uow.commit()
        return self._stream(owner)

    async def _stream(self, owner: str) -> AsyncIterator[bytes]:
        async with self.uow(readonly=True) as uow:
            user = await uow.users.get(owner)
            if user is None:  # deleted between the check and the stream
                return
            head = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "exported_at": utcnow().isoformat(),
                "user": to_jsonable(user),
            }
            yield json.dumps(head)[:-1].encode() + b', "assets": ['
            cursor: str | None = None
            first = True
            while True:
                page = await uow.assets.page(owner, AssetQuery(limit=_PAGE, cursor=cursor))
                links = await uow.assets.links_for([asset.id for asset in page.items])
                for asset in page.items:
                    record = asset_payload(asset)
                    record["links"] = [to_jsonable(link) for link in links.get(asset.id, [])]
                    yield (b"" if first else b", ") + json.dumps(record).encode()
                    first = False
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            context = await uow.contexts.get(owner)
            history = await uow.contexts.history(owner, limit=1_000_000)
            feedback = await uow.feedback.for_user(owner)
            preferences = await uow.preferences.get(owner)
            memberships = await uow.teams.teams_of(owner)
            revisions = await uow.revisions.by_author(owner)
            tail = {
                "preferences": preferences.to_record() if preferences else None,
                # Teams (issue 16): what the user belongs to and what they wrote there.
                # Informational: an import restores the user's own library, not teams.
                "team_memberships": [
                    {"team_id": team.id, "team_name": team.name, "role": role.value}
                    for team, role in memberships
                ],
                "team_revisions": to_jsonable(revisions),
                "context": to_jsonable(context) if context else None,
                "context_history": to_jsonable(list(reversed(history))),
                "suggestion_feedback": to_jsonable(feedback),
            }
            yield b"], " + json.dumps(tail)[1:].encode()

    # --- import --------------------------------------------------------------------------

    async def import_(self, principal: Principal, user_id: str, document: dict[str, Any]) -> int:
        """Restore an export into an empty account; returns the number of assets restored."""
        ensure_can_write(principal)
        owner = _person(resolve_user(principal, user_id))
        if document.get("format") != EXPORT_FORMAT or document.get("version") != EXPORT_VERSION:
            raise InvalidInput(
                f"not a {EXPORT_FORMAT} version {EXPORT_VERSION} document", field="format"
            )
        try:
            user, assets, context, history, feedback = _parse(owner, document)
            raw_preferences = document.get("preferences") or None
            if raw_preferences is not None and not isinstance(raw_preferences, dict):
                raise TypeError("preferences must be an object")
            # Checked by the same rules as a PUT (an edited export cannot smuggle -5 in).
            preferences = (
                None if raw_preferences is None else apply_changes(Preferences(), raw_preferences)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed export document: {exc}", field="body") from None
        async with self.uow() as uow:
            existing = await uow.users.get(owner)
            if existing is not None and (
                await uow.assets.count(owner) or await uow.contexts.get(owner)
            ):
                raise Conflict(
                    "the user already has data; delete the user before importing",
                    details={"user_id": owner},
                )
            if existing is None:
                await uow.users.add(user)
            else:
                await uow.users.update(user)
            for asset, links in assets:
                await uow.assets.add(asset)
                for link in links:
                    await uow.assets.save_link(owner, link)
            if context is not None:
                await uow.contexts.save(context)
            for change in history:
                await uow.contexts.add_change(change)
            for item in feedback:
                await uow.feedback.add(item)
            if preferences is not None:
                await uow.preferences.save(owner, preferences)
            await uow.audit.add(
                AuditEntry(
                    "user_imported",
                    actor_id=principal.user_id,
                    user_id=owner,
                    details={"assets": len(assets)},
                )
            )
            await uow.commit()
        return len(assets)

    # --- deletion ------------------------------------------------------------------------

    async def delete(self, principal: Principal, user_id: str) -> None:
        """Purge the user everywhere. Safe to retry after any failure.

        The stores outside the database are purged first (every purge is idempotent): if one
        fails, the user is still there and the DELETE is simply retried. Then the rows go, in
        one transaction with the deletion record, and the outside stores are purged once more
        for whatever a concurrent request wrote meanwhile. Should that last step fail, a retried
        DELETE of the now absent user still purges them before answering 404.
        """
        ensure_can_write(principal)
        owner = _person(resolve_user(principal, user_id))
        async with self.uow(readonly=True) as uow:
            exists = await uow.users.get(owner) is not None
            key_ids = [key.id for key in await uow.api_keys.list_keys(owner)]
        await self._purge_outside(owner, key_ids, deleted=not exists)
        if not exists:
            raise NotFound("user", owner)
        async with self.uow() as uow:
            if await uow.users.get(owner) is None:  # a concurrent DELETE won
                raise NotFound("user", owner)
            key_ids += [k.id for k in await uow.api_keys.list_keys(owner) if k.id not in key_ids]
            await uow.purger.purge(owner)  # rows without a foreign key to users
            # Team assets stay (as "deleted user"'s), teams keep an owner (issue 16).
            departure = await depart_teams(uow, owner, actor_id=principal.user_id)
            # The audit log outlives the user (accountability: who deleted their assets,
            # changed their role, failed to sign in as them), but what it quotes of theirs
            # (asset names, consent choices, addresses) is their data: scrub, don't delete.
            # Earlier deletion records of the same id hold nothing personal and stay whole.
            await uow.audit.scrub_user(owner, keep_actions={"user_deleted"})
            await uow.users.delete(owner)  # cascades to everything else
            await uow.audit.add(
                AuditEntry(
                    "user_deleted",
                    actor_id=principal.user_id,
                    user_id=owner,
                    details=departure.summary(),
                )
            )
            await uow.commit()
        if self.revocations is not None:
            await self.revocations.revoke(user_subject(owner), reason="user deleted")
        if self.team_events is not None:
            try:
                await departure.tell(self.team_events, owner, by=principal.user_id)
            except Exception as exc:  # the deletion stands; the events are a courtesy
                log.warning("telling the teams of user %s's deletion failed: %r", owner, exc)
        await self._purge_outside(owner, key_ids, deleted=True)

    async def _purge_outside(self, owner: str, key_ids: list[str], *, deleted: bool) -> None:
        """Cache, event log, rate-limit buckets and the registered indexes (vectors)."""
        # `key:<id>` buckets predate the per-user limit (issue 20); purged all the same.
        buckets = [Principal(owner, Role.USER, "jwt").rate_limit_key] + [
            f"key:{key_id}" for key_id in key_ids
        ]
        try:
            await self.cache.delete_prefix(user_cache_prefix(owner))
            if self.event_log is not None:
                await self.event_log.purge(owner)
            if self.rate_limiter is not None:
                for bucket in buckets:
                    await self.rate_limiter.forget(bucket)
            for hook in self.purge_hooks:
                await hook(owner)
        except Exception as exc:
            log.warning("purging user %s outside the database failed: %r", owner, exc)
            state = "deleted, but some of its data remains" if deleted else "kept"
            upstream = exc.upstream if isinstance(exc, UpstreamError) else "purge"
            raise DependencyUnavailable(
                f"purging the user's data failed; the user is {state}: retry the DELETE",
                upstream=upstream,
            ) from exc


def _parse(
    owner: str, document: dict[str, Any]
) -> tuple[
    User,
    list[tuple[Asset, list[AssetLink]]],
    UserContext | None,
    list[ContextChange],
    list[SuggestionFeedback],
]:
    raw_user = document["user"]
    user = User(
        id=owner,
        role=Role(raw_user.get("role", "user")),
        email=raw_user.get("email"),
        display_name=raw_user.get("display_name"),
        consent=Consent(**raw_user.get("consent", {})),
        settings=dict(raw_user.get("settings", {})),
        created_at=_dt_required(raw_user["created_at"]),
        updated_at=_dt_required(raw_user["updated_at"]),
    )
    assets = []
    for raw in document.get("assets", []):
        asset = Asset(
            id=str(raw["id"]),
            user_id=owner,
            name=str(raw["name"]),
            content=str(raw["content"]),
            description=raw.get("description"),
            language=raw.get("language"),
            tags=[str(tag) for tag in raw.get("tags", [])],
            source=AssetSource(raw.get("source", "user")),
            source_id=raw.get("source_id"),
            metadata=dict(raw.get("metadata", {})),
            created_at=_dt_required(raw["created_at"]),
            updated_at=_dt_required(raw["updated_at"]),
            last_accessed=_dt(raw.get("last_accessed")),
            usage_count=int(raw.get("usage_count", 0)),
            version=int(raw.get("version", 1)),
        )
        links = [
            AssetLink(
                asset_id=asset.id,
                side=Side(link["side"]),
                remote_id=str(link["remote_id"]),
                base_hash=link.get("base_hash"),
                base_version=link.get("base_version"),
                synced_at=_dt(link.get("synced_at")),
            )
            for link in raw.get("links", [])
        ]
        assets.append((asset, links))
    context = None
    if document.get("context"):
        raw_ctx = document["context"]
        pieces = raw_ctx.get("pieces_context")
        aiwfe = raw_ctx.get("aiwfe_context")
        context = UserContext(
            user_id=owner,
            workspace_id=raw_ctx.get("workspace_id"),
            current_task=raw_ctx.get("current_task"),
            active_project=raw_ctx.get("active_project"),
            active_files=list(raw_ctx.get("active_files", [])),
            recent_assets=list(raw_ctx.get("recent_assets", [])),
            keywords=list(raw_ctx.get("keywords", [])),
            language_preferences=list(raw_ctx.get("language_preferences", [])),
            last_updated=_dt_required(raw_ctx["last_updated"]),
            pieces_context=PiecesContextState(
                connected=bool(pieces.get("connected")),
                last_sync=_dt(pieces.get("last_sync")),
                sync_status=str(pieces.get("sync_status", "idle")),
            )
            if pieces
            else None,
            aiwfe_context=AIWFEContextState(**aiwfe) if aiwfe else None,
            version=int(raw_ctx.get("version", 0)),
        )
    history = [
        ContextChange(
            user_id=owner,
            field=str(raw["field"]),
            old_value=raw.get("old_value"),
            new_value=raw.get("new_value"),
            source=str(raw["source"]),
            changed_at=_dt_required(raw["changed_at"]),
        )
        for raw in document.get("context_history", [])
    ]
    feedback = [
        SuggestionFeedback(
            user_id=owner,
            suggestion_id=str(raw["suggestion_id"]),
            action=str(raw["action"]),
            asset_id=raw.get("asset_id"),
            context_hash=raw.get("context_hash"),
            created_at=_dt_required(raw["created_at"]),
        )
        for raw in document.get("suggestion_feedback", [])
    ]
    return user, assets, context, history, feedback
