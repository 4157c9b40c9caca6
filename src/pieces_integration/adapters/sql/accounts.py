"""SQL repositories for users, API keys, connections and the audit log."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware, aware_required
from pieces_integration.adapters.sql.tables import api_keys, audit_log, connections, users
from pieces_integration.domain.model import (
    ApiKey,
    AuditEntry,
    Connection,
    ConnectionKind,
    Consent,
    Role,
    User,
    UserStanding,
)


class SqlUserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    @staticmethod
    def _values(user: User) -> dict[str, Any]:
        return {
            "role": user.role.value,
            "email": user.email,
            "display_name": user.display_name,
            "consent": asdict(user.consent),
            "settings": user.settings,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "disabled_at": user.disabled_at,
            "tenant": user.tenant,
        }

    async def get(self, user_id: str) -> User | None:
        row = (await self._conn.execute(sa.select(users).where(users.c.id == user_id))).first()
        if row is None:
            return None
        return User(
            id=row.id,
            role=Role(row.role),
            email=row.email,
            display_name=row.display_name,
            consent=Consent(**row.consent),
            settings=dict(row.settings or {}),
            created_at=aware_required(row.created_at),
            updated_at=aware_required(row.updated_at),
            disabled_at=aware(row.disabled_at),
            tenant=row.tenant,
        )

    async def disabled_at(self, user_id: str) -> datetime | None:
        """Only the column the sign-in check needs (one primary-key read per request)."""
        query = sa.select(users.c.disabled_at).where(users.c.id == user_id)
        return aware((await self._conn.execute(query)).scalar_one_or_none())

    async def standing(self, user_id: str) -> UserStanding | None:
        query = sa.select(users.c.disabled_at, users.c.tenant).where(users.c.id == user_id)
        row = (await self._conn.execute(query)).first()
        return None if row is None else UserStanding(aware(row.disabled_at), row.tenant)

    async def add(self, user: User) -> None:
        await self._conn.execute(sa.insert(users).values(id=user.id, **self._values(user)))

    async def add_if_missing(self, user: User) -> bool:
        """One statement, so two concurrent calls cannot both insert (nor fail)."""
        insert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(users)
            .values(id=user.id, **self._values(user))
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return bool((await self._conn.execute(statement)).rowcount)

    async def update(self, user: User) -> None:
        await self._conn.execute(
            sa.update(users).where(users.c.id == user.id).values(**self._values(user))
        )

    async def delete(self, user_id: str) -> bool:
        result = await self._conn.execute(sa.delete(users).where(users.c.id == user_id))
        return bool(result.rowcount)

    async def list_ids(self) -> list[str]:
        rows = await self._conn.execute(sa.select(users.c.id).order_by(users.c.id))
        return [row[0] for row in rows]

    async def disabled_ids(self) -> list[str]:
        query = sa.select(users.c.id).where(users.c.disabled_at.is_not(None)).order_by(users.c.id)
        return [row[0] for row in await self._conn.execute(query)]


def _to_key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        key_hash=row.key_hash,
        role=Role(row.role),
        created_at=aware_required(row.created_at),
        last_used_at=aware(row.last_used_at),
        expires_at=aware(row.expires_at),
        revoked_at=aware(row.revoked_at),
    )


class SqlApiKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, key: ApiKey) -> None:
        await self._conn.execute(
            sa.insert(api_keys).values(
                id=key.id,
                user_id=key.user_id,
                name=key.name,
                prefix=key.prefix,
                key_hash=key.key_hash,
                role=key.role.value,
                created_at=key.created_at,
                last_used_at=key.last_used_at,
                expires_at=key.expires_at,
                revoked_at=key.revoked_at,
            )
        )

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = (
            await self._conn.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix))
        ).first()
        return None if row is None else _to_key(row)

    async def list_keys(self, user_id: str | None = None) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        return [_to_key(row) for row in await self._conn.execute(query)]

    async def revoke(self, key_id: str, at: datetime) -> bool:
        result = await self._conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(result.rowcount)

    async def mark_used(self, key_id: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at)
        )


class SqlConnectionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, user_id: str, kind: ConnectionKind) -> Connection | None:
        row = (
            await self._conn.execute(
                sa.select(connections).where(
                    connections.c.user_id == user_id, connections.c.kind == kind.value
                )
            )
        ).first()
        if row is None:
            return None
        return Connection(
            id=row.id,
            user_id=row.user_id,
            kind=ConnectionKind(row.kind),
            url=row.url,
            state=row.state,
            application_id=row.application_id,
            remote_user_id=row.remote_user_id,
            remote_version=row.remote_version,
            last_successful_sync=aware(row.last_successful_sync),
            error_message=row.error_message,
            settings=dict(row.settings or {}),
            created_at=aware_required(row.created_at),
            updated_at=aware_required(row.updated_at),
        )

    async def save(self, connection: Connection, secret_ciphertext: bytes | None) -> None:
        """Insert or update; the plaintext `connection.secret` is never written."""
        values = {
            "id": connection.id,
            "url": connection.url,
            "state": connection.state,
            "secret_ciphertext": secret_ciphertext,
            "application_id": connection.application_id,
            "remote_user_id": connection.remote_user_id,
            "remote_version": connection.remote_version,
            "last_successful_sync": connection.last_successful_sync,
            "error_message": connection.error_message,
            "settings": connection.settings,
            "updated_at": connection.updated_at,
        }
        result = await self._conn.execute(
            sa.update(connections)
            .where(
                connections.c.user_id == connection.user_id,
                connections.c.kind == connection.kind.value,
            )
            .values(**values)
        )
        if result.rowcount == 0:
            await self._conn.execute(
                sa.insert(connections).values(
                    user_id=connection.user_id,
                    kind=connection.kind.value,
                    created_at=connection.created_at,
                    **values,
                )
            )

    async def get_secret_ciphertext(self, user_id: str, kind: ConnectionKind) -> bytes | None:
        row = (
            await self._conn.execute(
                sa.select(connections.c.secret_ciphertext).where(
                    connections.c.user_id == user_id, connections.c.kind == kind.value
                )
            )
        ).first()
        return None if row is None else row[0]

    async def delete(self, user_id: str, kind: ConnectionKind) -> bool:
        result = await self._conn.execute(
            sa.delete(connections).where(
                connections.c.user_id == user_id, connections.c.kind == kind.value
            )
        )
        return bool(result.rowcount)

    async def user_ids(self, kind: ConnectionKind) -> list[str]:
        rows = await self._conn.execute(
            sa.select(connections.c.user_id)
            .where(connections.c.kind == kind.value)
            .order_by(connections.c.user_id)
        )
        return [row[0] for row in rows]

    async def list_all_secrets(self) -> list[tuple[str, ConnectionKind, bytes]]:
        rows = await self._conn.execute(
            sa.select(connections.c.user_id, connections.c.kind, connections.c.secret_ciphertext)
            .where(connections.c.secret_ciphertext.is_not(None))
            .order_by(connections.c.user_id, connections.c.kind)
        )
        return [(row[0], ConnectionKind(row[1]), row[2]) for row in rows]


# What is left of an audit entry's details once its user has been deleted.
SCRUBBED: dict[str, Any] = {"scrubbed": True}


class SqlAuditRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, entry: AuditEntry) -> None:
        await self._conn.execute(
            sa.insert(audit_log).values(
                at=entry.at,
                actor_id=entry.actor_id,
                user_id=entry.user_id,
                action=entry.action,
                target=entry.target,
                details=entry.details,
                ip=entry.ip,
                request_id=entry.request_id,
            )
        )

    async def scrub_user(self, user_id: str, *, keep_actions: Collection[str] = ()) -> int:
        about = sa.update(audit_log).where(audit_log.c.user_id == user_id)
        if keep_actions:
            about = about.where(audit_log.c.action.not_in(list(keep_actions)))
        changed = await self._conn.execute(about.values(details=SCRUBBED, target=None, ip=None))
        by = await self._conn.execute(
            sa.update(audit_log)
            .where(
                audit_log.c.actor_id == user_id,
                sa.or_(audit_log.c.user_id.is_(None), audit_log.c.user_id != user_id),
                audit_log.c.ip.is_not(None),
            )
            .values(ip=None)
        )
        return int(changed.rowcount or 0) + int(by.rowcount or 0)

    async def entries(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        query = sa.select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        if user_id is not None:
            query = query.where(
                sa.or_(audit_log.c.user_id == user_id, audit_log.c.actor_id == user_id)
            )
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        if until is not None:
            query = query.where(audit_log.c.at < until)
        rows = await self._conn.execute(query.limit(limit))
        return [
            AuditEntry(
                id=row.id,
                at=aware_required(row.at),
                actor_id=row.actor_id,
                user_id=row.user_id,
                action=row.action,
                target=row.target,
                details=dict(row.details or {}),
                ip=row.ip,
                request_id=row.request_id,
            )
            for row in rows
        ]
