"""`sync --user U`: run one user's sync now, with a progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from pieces_integration.domain.model import SyncRun
from pieces_integration.entrypoints.cli._common import (
    ensure_schema,
    fail,
    run_with_container,
    settings_or_exit,
)

if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container


def sync(user: str = typer.Option(..., "--user", help="The user to synchronise.")) -> None:
    """Synchronise USER's assets with Pieces OS and AIWFE now (joins a running sync)."""
    from pieces_integration.bootstrap import Overrides

    settings = settings_or_exit()
    ensure_schema(settings)
    console = Console(stderr=True)
    tasks: dict[str, TaskID] = {}

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:

        def report(user_id: str, phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        async def work(container: Container) -> SyncRun:
            async with container.uow(readonly=True) as uow:
                if await uow.users.get(user) is None:
                    fail(f"no user {user!r}")
            return await container.sync.engine.sync_user(user, trigger="cli")

        run = run_with_container(settings, work, Overrides(sync_progress=report))
    typer.echo(
        f"sync {run.id}: {run.status}; to Pieces {run.aiwfe_to_pieces}, "
        f"to AIWFE {run.pieces_to_aiwfe}, conflicts resolved {run.conflicts_resolved}"
    )
    for error in run.errors:
        typer.echo(f"  {error.severity}: {error.code}: {error.message}", err=True)
    if run.status == "failed":
        raise typer.Exit(1)
