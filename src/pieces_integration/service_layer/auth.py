"""Authentication: turn a presented credential into a Principal; manage API keys and tokens."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import structlog

from pieces_integration.domain.auth import (
    API_KEY_PREFIX,
    Principal,
    api_key_matches,
    mint_api_key,
    split_api_key,
)
from pieces_integration.domain.errors import AccountDisabled, InvalidInput, NotFound, Unauthorized
from pieces_integration.domain.model import (
    ApiKey,
    AuditEntry,
    Role,
    User,
    is_deleted_user,
    new_id,
    utcnow,
)
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.ports.tokens import TokenVerifier
from pieces_integration.service_layer.auth_throttle import AuthThrottle
from pieces_integration.service_layer.revocation import Revocations, api_key_subject, user_subject

log = structlog.get_logger(__name__)
_MARK_USED_EVERY = timedelta(minutes=1)  # avoid a write per request
_NO_KEY = "0" * 64  # a digest no key has


@dataclass(frozen=True, slots=True)
class RequestMeta:
    ip: str | None = None
    request_id: str | None = None


class Authenticator:
    def __init__(
        self, uow: UnitOfWorkFactory, jwt: TokenVerifier, throttle: AuthThrottle | None = None
    ) -> None:
        """`throttle`: brute-force limits on failures (none: failures are only audited)."""
        self._uow = uow
        self._jwt = jwt
        self._throttle = throttle

    async def authenticate(
        self, *, bearer: str | None, api_key: str | None, meta: RequestMeta
    ) -> Principal:
        credential = api_key or bearer
        if not credential:
            raise Unauthorized("authentication required: send a Bearer token or X-API-Key")
        is_key = credential.startswith(API_KEY_PREFIX)
        kind = "api_key" if is_key else "token"
        identity = self._identity(credential, is_key=is_key)
        if self._throttle is not None:
            await self._throttle.check(ip=meta.ip, identity=identity)
        try:
            if is_key:
                principal = await self._by_api_key(credential)
            else:
                principal = await self._by_jwt(credential, meta)
        except AccountDisabled:
            # A genuine credential, so no guess: it must not count towards a lockout that
            # would outlast the re-enabling.
            log.info("sign_in_refused_disabled", ip=meta.ip)
            raise
        except (Unauthorized, InvalidInput) as exc:
            if self._throttle is not None:
                await self._throttle.failed(
                    kind=kind,
                    ip=meta.ip,
                    identity=identity,
                    reason=str(exc),
                    request_id=meta.request_id,
                )
            else:
                await self._audit_failure(str(exc), meta)
            if isinstance(exc, InvalidInput):
                raise Unauthorized(exc.message) from None
            raise
        if self._throttle is not None:
            await self._throttle.succeeded(ip=meta.ip, identity=identity)
        return principal

    def _identity(self, credential: str, *, is_key: bool) -> str | None:
        """Whom a failure counts against: the key's prefix, or the token's claimed user."""
        if is_key:
            try:
                return "key:" + split_api_key(credential)
            except InvalidInput:
                return None
        subject = self._jwt.claimed_subject(credential)
        return "user:" + subject if subject else None

    async def _by_jwt(self, token: str, meta: RequestMeta) -> Principal:
        verified = await self._jwt.verify(token)
        user_id, role, tenant = verified.user_id, verified.role, verified.tenant
        _refuse_reserved(user_id)
        async with self._uow(readonly=True) as uow:
            user = await uow.users.get(user_id)
            if user is None and await _deleted_since(uow, user_id, verified.issued_at):
                # A token minted before the deletion must not bring the user back.
                raise Unauthorized("this user was deleted after the token was issued")
        if user is not None and user.disabled:
            raise AccountDisabled(user_id)
        # Without a tenant claim configured, the recorded tenant is left as it is.
        tenant_changed = self._jwt.reads_tenant and user is not None and user.tenant != tenant
        if user is None or user.role is not role or tenant_changed:
            await self._provision(user_id, role, tenant, meta)
        return Principal(
            user_id=user_id,
            role=role,
            via="jwt",
            tenant=tenant if self._jwt.reads_tenant else None,
        )

    async def _provision(
        self, user_id: str, role: Role, tenant: str | None, meta: RequestMeta
    ) -> None:
        """First sight of a user, or the identity provider changed their role or tenant:
        record it (one write, only on change; each change audited)."""
        reads_tenant = self._jwt.reads_tenant
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                await uow.users.add(
                    User(id=user_id, role=role, tenant=tenant if reads_tenant else None)
                )
                await uow.commit()
                return
            changes: list[AuditEntry] = []
            if user.role is not role:
                changes.append(
                    self._change("role_changed", user_id, user.role.value, role.value, meta)
                )
                user.role = role
            if reads_tenant and user.tenant != tenant:
                changes.append(self._change("tenant_changed", user_id, user.tenant, tenant, meta))
                user.tenant = tenant
            if not changes:
                return
            user.updated_at = utcnow()
            await uow.users.update(user)
            for entry in changes:
                await uow.audit.add(entry)
            await uow.commit()

    @staticmethod
    def _change(
        action: str, user_id: str, before: str | None, after: str | None, meta: RequestMeta
    ) -> AuditEntry:
        return AuditEntry(
            action,
            actor_id=user_id,
            user_id=user_id,
            details={"from": before, "to": after, "via": "jwt"},
            ip=meta.ip,
            request_id=meta.request_id,
        )

    async def _by_api_key(self, token: str) -> Principal:
        prefix = split_api_key(token)
        async with self._uow(readonly=True) as uow:
            key = await uow.api_keys.get_by_prefix(prefix)
            # Same transaction, one primary-key read: no cache to invalidate on disable, and
            # the key carries its user's recorded tenant (keys have no claims).
            standing = await uow.users.standing(key.user_id) if key is not None else None
        disabled = standing is not None and standing.disabled_at is not None
        # An unknown prefix costs the same hash comparison as a wrong secret.
        if not api_key_matches(token, key.key_hash if key else _NO_KEY) or key is None:
            raise Unauthorized("invalid API key")
        if not key.active:
            raise Unauthorized("API key revoked or expired")
        _refuse_reserved(key.user_id)
        if disabled:
            raise AccountDisabled(key.user_id)
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at > _MARK_USED_EVERY:
            async with self._uow() as uow:
                await uow.api_keys.mark_used(key.id, now)
                await uow.commit()
        tenant = standing.tenant if standing is not None and self._jwt.reads_tenant else None
        return Principal(
            user_id=key.user_id, role=key.role, via="api_key", key_id=key.id, tenant=tenant
        )

    async def ensure_active(self, user_id: str) -> None:
        """For credentials checked elsewhere (WebSocket tickets, bridges): refuse a disabled
        account, or the reserved deleted-user principal, with 401."""
        _refuse_reserved(user_id)
        async with self._uow(readonly=True) as uow:
            disabled = await uow.users.disabled_at(user_id) is not None
        if disabled:
            raise AccountDisabled(user_id)

    async def invalid_subjects(self, subjects: Collection[str]) -> list[str]:
        """Of the revocation subjects live sessions watch, those no longer valid (a user
        deleted or disabled, an API key revoked or expired). Other kinds are their owners'
        to check."""
        users = {s: unquote(s.partition(":")[2]) for s in subjects if s.startswith("user:")}
        keys = {s: unquote(s.partition(":")[2]) for s in subjects if s.startswith("api_key:")}
        gone: list[str] = []
        async with self._uow(readonly=True) as uow:
            for subject, user_id in users.items():
                user = await uow.users.get(user_id)
                if user is None or user.disabled:
                    gone.append(subject)
            if keys:
                active = {key.id for key in await uow.api_keys.list_keys() if key.active}
                gone += [subject for subject, key_id in keys.items() if key_id not in active]
        return gone

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


def _refuse_reserved(user_id: str) -> None:
    if is_deleted_user(user_id):
        raise Unauthorized("this principal is reserved and cannot sign in")


async def _deleted_since(uow: UnitOfWork, user_id: str, issued_at: float | None) -> bool:
    since = datetime.fromtimestamp(issued_at, UTC) if issued_at is not None else None
    entries = await uow.audit.entries(user_id=user_id, since=since, limit=50)
    return any(entry.action == "user_deleted" for entry in entries)


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
    if is_deleted_user(user_id):
        raise InvalidInput("this principal is reserved and has no keys", field="user_id")
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
    uow_factory: UnitOfWorkFactory,
    key_id: str,
    *,
    actor_id: str | None,
    revocations: Revocations | None = None,
) -> None:
    """Revoke the key; with `revocations`, its live sessions end at once everywhere."""
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
    if revocations is not None:
        await revocations.revoke(api_key_subject(key_id), reason="API key revoked")


async def revoke_user(revocations: Revocations, user_id: str, *, reason: str) -> int:
    """End every live session of the user (deleted, disabled, removed), on every replica."""
    return await revocations.revoke(user_subject(user_id), reason=reason)
