"""A user's preferences (spec 7.1 step 5): read, change (audited), and their effects.

Privacy choices are the user's consent (spec 8.1), so a change to them here is the same
change `PUT /consent` makes: same record, same audit action, in the same transaction as
the other preferences (nothing is half-saved). The effects follow the commit: the
scheduler takes the new sync frequency, the live stream the new notification choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from pieces_integration.domain.auth import Principal, ensure_can_write, resolve_user
from pieces_integration.domain.errors import Forbidden, InvalidInput, NotFound
from pieces_integration.domain.model import AuditEntry, Consent, Role, User, utcnow
from pieces_integration.domain.preferences import SHARING_PRIVATE, Preferences, apply_changes
from pieces_integration.domain.teams import TeamAction
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.team_access import require

PreferencesListener = Callable[[str, Preferences], None]

CONSENT_FIELDS = frozenset(f.name for f in fields(Consent))  # one list: the dataclass


async def _ensure_may_share_into(
    uow: UnitOfWork, user: User, team_id: str, consent: dict[str, Any]
) -> None:
    """A team sharing default must be a team the user may share into, with team collaboration
    on; an unknown team and one the user is not in read alike (nothing leaks)."""
    if not consent.get("team_collaboration", True):
        raise InvalidInput(
            "a team sharing default needs team collaboration on in the privacy choices "
            "(consent scope team_collaboration)",
            field="sharing_default",
        )
    as_user = Principal(user_id=user.id, role=user.role, via="sharing_default")
    try:
        await require(uow, as_user, team_id, TeamAction.SHARE)
    except (NotFound, Forbidden):
        raise InvalidInput(
            f"{team_id!r} is not a team this user may share into (member or above)",
            field="sharing_default",
            value=f"team:{team_id}",
        ) from None


@dataclass(frozen=True, slots=True)
class UserPreferences:
    user_id: str
    preferences: Preferences
    consent: Consent
    effective_sync_seconds: float  # the preference, or the service default it follows


@dataclass
class PreferencesService:
    uow: UnitOfWorkFactory
    default_sync_seconds: float
    listeners: list[PreferencesListener] = field(default_factory=list)

    def _view(self, owner: str, preferences: Preferences, consent: Consent) -> UserPreferences:
        seconds = preferences.sync_interval(self.default_sync_seconds)
        return UserPreferences(owner, preferences, consent, seconds)

    async def get(self, principal: Principal, user_id: str) -> UserPreferences:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            user = await uow.users.get(owner)
            preferences = await uow.preferences.get(owner) if user else None
        consent = user.consent if user else Consent()
        return self._view(owner, preferences or Preferences(), consent)

    async def update(
        self,
        principal: Principal,
        user_id: str,
        changes: dict[str, Any],
        privacy: dict[str, Any] | None = None,
    ) -> UserPreferences:
        """Apply `changes` (preference fields) and `privacy` (consent fields) together."""
        ensure_can_write(principal)
        owner = resolve_user(principal, user_id)
        privacy = privacy or {}
        unknown = sorted(set(privacy) - CONSENT_FIELDS)
        if unknown:
            raise InvalidInput(f"unknown privacy fields: {', '.join(unknown)}", field="privacy")
        if privacy.get("context_sharing") not in (None, "full", "limited"):
            raise InvalidInput(
                'context_sharing must be "full" or "limited"', field="privacy.context_sharing"
            )
        async with self.uow() as uow:
            user = await uow.users.get(owner)
            if user is None:
                role = Role.USER if owner != principal.user_id else principal.role
                user = User(id=owner, role=role)
                await uow.users.add(user)
            before = await uow.preferences.get(owner) or Preferences()
            after = apply_changes(before, changes)  # InvalidInput before anything is written
            consent_before = asdict(user.consent)
            consent_after = {**consent_before, **privacy}
            if after.default_team is not None:
                if "sharing_default" in changes:
                    if after.sharing_default != before.sharing_default or privacy:
                        await _ensure_may_share_into(uow, user, after.default_team, consent_after)
                elif not consent_after.get("team_collaboration", True):
                    # Collaboration turned off: new assets are private from now on.
                    after = replace(after, sharing_default=SHARING_PRIVATE)
            if consent_after != consent_before:
                user.consent = Consent(**consent_after)
                user.updated_at = utcnow()
                await uow.users.update(user)
                await uow.audit.add(
                    AuditEntry(
                        "consent_changed",
                        actor_id=principal.user_id,
                        user_id=owner,
                        details={"from": consent_before, "to": consent_after},
                    )
                )
            await uow.preferences.save(owner, after)
            await uow.audit.add(
                AuditEntry(
                    "preferences_changed",
                    actor_id=principal.user_id,
                    user_id=owner,
                    details={"from": before.to_record(), "to": after.to_record()},
                )
            )
            await uow.commit()
        for listener in self.listeners:
            listener(owner, after)
        return self._view(owner, after, user.consent)
