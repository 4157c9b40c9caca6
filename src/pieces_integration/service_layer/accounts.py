"""Disabling and re-enabling accounts (issue 20): admin only, audited, at once everywhere.

A disabled account keeps all its data (unlike a deletion) but every way in refuses it with
401 (`Authenticator` reads `users.disabled_at` on every request, in the transaction that
checks the credential, so there is no cache to invalidate), and disabling publishes the
same revocation a deletion does, so its live sessions (WebSocket, MCP, bridge) end within a
second on every replica. Re-enabling restores access with the same keys and tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from pieces_integration.domain.auth import Principal, ensure_admin
from pieces_integration.domain.errors import Conflict, NotFound
from pieces_integration.domain.model import AuditEntry, User, is_deleted_user, utcnow
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.revocation import Revocations, user_subject


@dataclass
class AccountService:
    uow: UnitOfWorkFactory
    revocations: Revocations | None = None

    async def set_disabled(self, principal: Principal, user_id: str, *, disabled: bool) -> User:
        """Disable or re-enable `user_id`; doing it twice changes nothing (nor audits)."""
        ensure_admin(principal)
        if disabled and user_id == principal.user_id:
            # The caller would lock themselves out, and could be the last admin.
            raise Conflict(
                "you cannot disable your own account; ask another admin",
                details={"user_id": user_id},
            )
        if is_deleted_user(user_id):  # not a person: never enabled, never listed
            raise NotFound("user", user_id)
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise NotFound("user", user_id)
            if user.disabled is not disabled:
                now = utcnow()
                user.disabled_at, user.updated_at = (now if disabled else None), now
                await uow.users.update(user)
                await uow.audit.add(
                    AuditEntry(
                        "user_disabled" if disabled else "user_enabled",
                        actor_id=principal.user_id,
                        user_id=user_id,
                    )
                )
                await uow.commit()
        if disabled and self.revocations is not None:
            # Also when it already was: a replica that missed the first message catches up.
            await self.revocations.revoke(user_subject(user_id), reason="user disabled")
        return user
