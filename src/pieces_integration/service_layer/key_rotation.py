"""Re-seal every stored secret under the primary key, while the service keeps running.

Procedure (also in `pieces-integration keys rotate --help`): deploy with the new key first in
ENCRYPTION_KEY and the old one after it, so every replica seals with the new key and still
opens the old values; run the rotation; then drop the old key.

The rotation walks the secrets in pages and replaces each one in its own short transaction,
with a compare-and-swap, so a value the service rewrote meanwhile is never overwritten with a
stale one. Values already under the primary key are skipped: a rerun, or a run resumed after
an interruption, does only the remaining work. A value that cannot be opened is reported and
left untouched; it does not stop the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pieces_integration.domain.model import ConnectionKind
from pieces_integration.domain.secrets import (
    SecretDecryptionError,
    SecretRef,
    StoredSecret,
    connection_secret_binding,
)
from pieces_integration.ports.secrets import SecretCipher, SecretStore

BindingOf = Callable[[str, ConnectionKind], str]


@dataclass(frozen=True, slots=True)
class RotationFailure:
    ref: SecretRef
    reason: str
    message: str


@dataclass(slots=True)
class RotationReport:
    primary_key_id: str
    dry_run: bool = False
    scanned: int = 0
    rotated: int = 0
    already_current: int = 0
    changed_concurrently: int = 0
    # Key ids found before the run (a dry run shows whether an old key is still needed).
    key_ids_seen: Counter[str] = field(default_factory=Counter)
    failures: list[RotationFailure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def complete(self) -> bool:
        """True when every stored secret is (or, in a dry run, can be) under the primary key."""
        return not self.failures


async def rotate_secrets(
    store: SecretStore,
    cipher: SecretCipher,
    *,
    batch_size: int = 100,
    dry_run: bool = False,
    binding_of: BindingOf = connection_secret_binding,
) -> RotationReport:
    """Re-seal every secret not under `cipher.primary_key_id`; a dry run only checks they open."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(primary_key_id=cipher.primary_key_id, dry_run=dry_run)
    after: SecretRef | None = None
    while True:
        page = await store.page(after=after, limit=batch_size)
        for item in page:
            await _rotate_one(item, store, cipher, binding_of, report)
        if len(page) < batch_size:
            return report
        after = page[-1].ref


async def _rotate_one(
    item: StoredSecret,
    store: SecretStore,
    cipher: SecretCipher,
    binding_of: BindingOf,
    report: RotationReport,
) -> None:
    report.scanned += 1
    binding = binding_of(item.ref.user_id, item.ref.kind)
    try:
        kid = cipher.key_id_of(item.ciphertext)
        report.key_ids_seen[kid] += 1
        if kid == cipher.primary_key_id:
            report.already_current += 1
            return
        plaintext = cipher.decrypt(item.ciphertext, binding)
    except SecretDecryptionError as exc:
        report.failures.append(RotationFailure(item.ref, exc.reason.value, exc.message))
        return
    if report.dry_run:
        report.rotated += 1
        return
    resealed = cipher.encrypt(plaintext, binding)
    if await store.replace(item.ref, expected=item.ciphertext, new=resealed):
        report.rotated += 1
    else:
        report.changed_concurrently += 1
