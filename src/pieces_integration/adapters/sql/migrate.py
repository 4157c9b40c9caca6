"""Run Alembic migrations programmatically (the CLI's `migrate` and `serve` use this).

The migration scripts ship inside the package so an installed service can migrate itself.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str, *, schema: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def upgrade(url: str, revision: str = "head", *, schema: str | None = None) -> None:
    """Blocking; call it before the event loop starts or from a worker thread."""
    command.upgrade(alembic_config(url, schema=schema), revision)


def downgrade(url: str, revision: str = "base", *, schema: str | None = None) -> None:
    command.downgrade(alembic_config(url, schema=schema), revision)
