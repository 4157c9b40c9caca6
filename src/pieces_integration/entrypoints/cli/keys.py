"""`keys generate` and `keys rotate`: encryption keys of the secrets at rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import typer
from sqlalchemy.exc import SQLAlchemyError

from pieces_integration.config import ConfigError, Settings
from pieces_integration.entrypoints.cli._common import fail, settings_or_exit

if TYPE_CHECKING:
    from pieces_integration.service_layer.key_rotation import RotationReport

app = typer.Typer(
    help=(
        "Encryption keys of the secrets at rest (AES-256-GCM).\n\n"
        "ENCRYPTION_KEY holds `kid:base64key[,kid:base64key...]`: the first key seals every "
        "new value, the others only open older ones. Without ENCRYPTION_KEY (not allowed in "
        "production) the key lives in <data dir>/encryption.key."
    ),
    no_args_is_help=True,
)

ROTATION_PROCEDURE = "\n\n".join(
    [
        "Re-encrypt every stored secret under the primary (first) key.",
        "Rotation without downtime:",
        "1. `pieces-integration keys generate` prints a new key line.",
        "2. Deploy with ENCRYPTION_KEY=<new>,<old> (new FIRST). Every replica now seals with "
        "the new key and still opens values sealed with the old one.",
        "3. Run `pieces-integration keys rotate` (same configuration). Each secret is "
        "re-encrypted in its own short transaction; it is safe to interrupt and rerun "
        "(done rows are skipped).",
        "4. When it reports `remaining under old keys: 0`, deploy with ENCRYPTION_KEY=<new> alone.",
        "Exit code 1 if any secret could not be decrypted (listed, and left untouched).",
    ]
)


@app.command()
def generate(
    kid: str | None = typer.Option(None, help="Key id (default: k<date>-<random>)."),
) -> None:
    """Print a new key line to put FIRST in ENCRYPTION_KEY."""
    from pieces_integration.adapters.crypto import generate_key

    try:
        typer.echo(generate_key(kid))
    except ValueError as exc:
        fail(str(exc))


@app.command(help=ROTATION_PROCEDURE)
def rotate(
    batch_size: int = typer.Option(100, min=1, max=10_000, help="Rows read per page."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only check that every secret opens; write nothing."
    ),
) -> None:
    settings = settings_or_exit()
    report = anyio.run(_rotate, settings, batch_size, dry_run)
    verb = "would rotate" if report.dry_run else "rotated"
    typer.echo(f"primary key: {report.primary_key_id}")
    typer.echo(f"scanned: {report.scanned}")
    typer.echo(f"{verb}: {report.rotated}")
    typer.echo(f"already under primary key: {report.already_current}")
    if not report.dry_run:
        typer.echo(f"changed meanwhile (left as is): {report.changed_concurrently}")
    seen = ", ".join(f"{kid}={n}" for kid, n in sorted(report.key_ids_seen.items())) or "none"
    typer.echo(f"key ids before: {seen}")
    remaining = report.failed + (report.rotated if report.dry_run else 0)
    typer.echo(f"remaining under old keys: {remaining}")
    typer.echo(f"failed: {report.failed}")
    if report.changed_concurrently:
        typer.echo("some rows changed during the run: rerun to confirm nothing is left")
    for failure in report.failures:
        typer.echo(f"  {failure.ref.user_id} {failure.ref.kind.value}: {failure.message}", err=True)
    if report.failures:
        raise typer.Exit(1)


async def _rotate(settings: Settings, batch_size: int, dry_run: bool) -> RotationReport:
    from pieces_integration.adapters.crypto import build_secret_box
    from pieces_integration.adapters.sql.secrets import SqlSecretStore
    from pieces_integration.bootstrap import bootstrap
    from pieces_integration.service_layer.key_rotation import rotate_secrets

    key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    try:
        box = build_secret_box(key, env=settings.env, data_dir=settings.data_dir)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}")
    container = bootstrap(settings)
    try:
        return await rotate_secrets(
            SqlSecretStore(container.uow), box, batch_size=batch_size, dry_run=dry_run
        )
    except SQLAlchemyError as exc:
        fail(f"database error: {type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        await container.aclose()
