"""Running Alembic migrations from code (the CLI and the tests use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to a revision (blocking; runs its own event loop)."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # this user's alone
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Take the schema down to a revision."""
    command.downgrade(alembic_config(database_url), revision)
