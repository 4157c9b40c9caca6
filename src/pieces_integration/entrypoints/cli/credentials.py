"""`token` and `apikey`: credentials for people and services. Tokens print alone on the
last line so scripts can take them: `TOKEN=$(pieces-integration token create ... | tail -1)`.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from pieces_integration.domain.auth import valid_tenant
from pieces_integration.domain.model import ApiKey, Role, utcnow
from pieces_integration.entrypoints.cli._common import (
    ensure_schema,
    fail,
    run_with_container,
    settings_or_exit,
)
from pieces_integration.service_layer.auth import create_api_key, revoke_api_key

if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container

token_app = typer.Typer(help="Issue JWT bearer tokens (HS256 mode).", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        fail(f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}")


@token_app.command("create")
def create_token(
    user: str = typer.Option(..., "--user", help="User id (the token's subject)."),
    role: str = typer.Option("user", "--role", help="admin | user | service | guest"),
    ttl: int = typer.Option(3600, "--ttl", min=60, help="Lifetime in seconds."),
    tenant: str | None = typer.Option(
        None, "--tenant", help="The user's tenant, in the TENANT_CLAIM claim (issue 20)."
    ),
) -> None:
    """Print a signed token for USER."""
    from pieces_integration.bootstrap.infrastructure import jwt_codec

    settings = settings_or_exit()
    codec = jwt_codec(settings)
    if not codec.can_issue:
        fail("tokens come from the identity provider when JWT_PUBLIC_KEY / JWKS_URL is set")
    chosen = _role(role)  # before any output: a bad role is one error line, nothing else
    if tenant is not None and not codec.reads_tenant:
        fail("--tenant needs TENANT_CLAIM (auth.tenant_claim) configured")
    if tenant is not None and not valid_tenant(tenant):
        fail(f"bad --tenant {tenant!r}: 1 to 128 printable characters without spaces")
    typer.echo(f"token for {user} ({chosen.value}), valid {ttl}s:", err=True)
    typer.echo(codec.issue(user, chosen, ttl_seconds=ttl, tenant=tenant))


@apikey_app.command("create")
def create_key(
    user: str = typer.Option(..., "--user"),
    role: str = typer.Option("service", "--role"),
    name: str = typer.Option("api key", "--name"),
    days: int | None = typer.Option(None, "--days", min=1, help="Expire after this many days."),
) -> None:
    """Create an API key; it is shown once, on the last line."""
    settings = settings_or_exit()
    chosen = _role(role)
    ensure_schema(settings)
    expires = utcnow() + timedelta(days=days) if days else None

    async def work(container: Container) -> tuple[ApiKey, str]:
        return await create_api_key(
            container.uow,
            user_id=user,
            role=chosen,
            name=name,
            actor_id="cli",
            expires_at=expires,
        )

    key, token = run_with_container(settings, work)
    typer.echo(f"api key {key.id} for {user} ({key.role.value}); store it now:", err=True)
    typer.echo(token)


_KEY_COLUMNS = ("id", "user", "name", "role", "prefix", "created", "last used", "state")


def key_row(key: ApiKey) -> tuple[str, ...]:
    state = "active" if key.active else ("revoked" if key.revoked_at else "expired")
    return (
        key.id,
        key.user_id,
        key.name,
        key.role.value,
        key.prefix,
        key.created_at.isoformat(timespec="seconds"),
        key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "-",
        state,
    )


def keys_table(rows: list[tuple[str, ...]]) -> Table:
    """The terminal view: other columns fold to fit, the id column is never cut or folded
    (`apikey revoke ID` needs it whole)."""
    table = Table()
    for name in _KEY_COLUMNS:
        if name == "id":
            width = max((len(row[0]) for row in rows), default=len(name))
            table.add_column(name, no_wrap=True, min_width=width)
        else:
            table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


@apikey_app.command("list")
def list_keys(user: str | None = typer.Option(None, "--user")) -> None:
    """List API keys (never the secrets). Tab-separated when the output is not a terminal."""
    settings = settings_or_exit()
    ensure_schema(settings)

    async def work(container: Container) -> list[ApiKey]:
        async with container.uow(readonly=True) as uow:
            return await uow.api_keys.list_keys(user)

    rows = [key_row(key) for key in run_with_container(settings, work)]
    if not sys.stdout.isatty():
        # Scripts and pipes: whole values, never cut to a terminal width.
        for line in (_KEY_COLUMNS, *rows):
            typer.echo("\t".join(line))
        return
    Console().print(keys_table(rows))


@apikey_app.command("revoke")
def revoke_key(key_id: str = typer.Argument(..., help="The key's id (see `apikey list`).")) -> None:
    """Revoke an API key at once."""
    settings = settings_or_exit()
    ensure_schema(settings)

    async def work(container: Container) -> None:
        await revoke_api_key(
            container.uow, key_id, actor_id="cli", revocations=container.revocations
        )

    run_with_container(settings, work)
    typer.echo(f"revoked {key_id}")
