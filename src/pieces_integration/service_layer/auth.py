"""Authentication: turn a presented credential into a Principal; manage API keys and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from pieces_integration.domain.auth import (
    API_KEY_PREFIX,
    Principal,
    api_key_matches,
    mint_api_key,
    split_api_key,
)
from pieces_integration.domain.errors import InvalidInput, NotFound, Unauthorized
from pieces_integration.domain.model import ApiKey, AuditEntry, Role, User, new_id, utcnow
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.ports.tokens import TokenVerifier

log = structlog.get_logger(__name__)
_MARK_USED_EVERY = timedelta(minutes=1)  # avoid a write per request


@dataclass(frozen=True, slots=True)
class RequestMeta:
    ip: str | None = None
    request_id: str | None = None


class Authenticator:
    def __init__(self, uow: UnitOfWorkFactory, jwt: TokenVerifier) -> None:
        self._uow = uow
        self._jwt = jwt

    async def authenticate(
        self, *, bearer: str | None, api_key: str | None, meta: RequestMeta
    ) -> Principal:
        credential = api_key or bearer
        if not credential:
            raise Unauthorized("authentication required: send a Bearer token or X-API-Key")
        try:
            if credential.startswith(API_KEY_PREFIX):
                return await self._by_api_key(credential)
            return await self._by_jwt(credential, meta)
        except (Unauthorized, InvalidInput) as exc:
            await self._audit_failure(str(exc), meta)
            if isinstance(exc, InvalidInput):
                raise Unauthorized(exc.message) from None
            raise

    async def _by_jwt(self, token: str, meta: RequestMeta) -> Principal:
        user_id, role = await self._jwt.verify(token)
        async with self._uow(readonly=True) as uow:
            user = await uow.users.get(user_id)
        if user is None or user.role is not role:
            await self._provision(user_id, role, meta)
        return Principal(user_id=user_id, role=role, via="jwt")

    async def _provision(self, user_id: str, role: Role, meta: RequestMeta) -> None:
        """First sight of a user, or the identity provider changed their role: record it."""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                await uow.users.add(User(id=user_id, role=role))
            elif user.role is not role:
                previous = user.role
                user.role, user.updated_at = role, utcnow()
                await uow.users.update(user)
                await uow.audit.add(
                    AuditEntry(
                        "role_changed",
                        actor_id=user_id,
                        user_id=user_id,
                        details={"from": previous.value, "to": role.value, "via": "jwt"},
                        ip=meta.ip,
                        request_id=meta.request_id,
                    )
                )
            else:
                return
            await uow.commit()

    async def _by_api_key(self, token: str) -> Principal:
        prefix = split_api_key(token)
        async with self._uow(readonly=True) as uow:
            key = await uow.api_keys.get_by_prefix(prefix)
        if key is None or not api_key_matches(token, key.key_hash):
            raise Unauthorized("invalid API key")
        if not key.active:
            raise Unauthorized("API key revoked or expired")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at > _MARK_USED_EVERY:
            async with self._uow() as uow:
                await uow.api_keys.mark_used(key.id, now)
                await uow.commit()
        return Principal(user_id=key.user_id, role=key.role, via="api_key", key_id=key.id)

    async def _audit_failure(self, reason: str, meta: RequestMeta) -> None:
        log.info("sign_in_failed", reason=reason, ip=meta.ip)
        async with self._uow() as uow:
            await uow.audit.add(
                AuditEntry(
                    "sign_in_failed",
                    actor_id=None,
                    details={"reason": reason[:200]},
                    ip=meta.ip,
                    request_id=meta.request_id,
                )
            )
            await uow.commit()


async def ensure_user(uow: UnitOfWork, user_id: str, role: Role) -> User:
    user = await uow.users.get(user_id)
    if user is None:
        user = User(id=user_id, role=role)
        await uow.users.add(user)
    return user


async def create_api_key(
    uow_factory: UnitOfWorkFactory,
    *,
    user_id: str,
    role: Role,
    name: str,
    actor_id: str | None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Mint a key; returns the stored record and the token (shown once, never stored)."""
    minted = mint_api_key()
    key = ApiKey(
        id=new_id(),
        user_id=user_id,
        name=name,
        prefix=minted.prefix,
        key_hash=minted.digest,
        role=role,
        expires_at=expires_at,
    )
    async with uow_factory() as uow:
        await ensure_user(uow, user_id, role if role is not Role.SERVICE else Role.USER)
        await uow.api_keys.add(key)
        await uow.audit.add(
            AuditEntry(
                "api_key_created",
                actor_id=actor_id,
                user_id=user_id,
                target=key.id,
                details={"name": name, "role": role.value},
            )
        )
        await uow.commit()
    return key, minted.token


async def revoke_api_key(
    uow_factory: UnitOfWorkFactory, key_id: str, *, actor_id: str | None
) -> None:
    async with uow_factory() as uow:
        keys = {key.id: key for key in await uow.api_keys.list_keys()}
        if key_id not in keys or not await uow.api_keys.revoke(key_id, utcnow()):
            raise NotFound("api key", key_id)
        await uow.audit.add(
            AuditEntry(
                "api_key_revoked", actor_id=actor_id, user_id=keys[key_id].user_id, target=key_id
            )
        )
        await uow.commit()
