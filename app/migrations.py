"""Run Alembic from loaxa: `loaxa migrate`, the test fixtures and the setup script; and the
check that the database is at the revision this code expects before anything serves it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from alembic import command

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the repo's alembic/ folder and the given database."""
    cfg = Config(str(ALEMBIC_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database to `revision` (the newest by default)."""
    command.upgrade(alembic_config(url), revision)


@lru_cache
def head_revision() -> str:
    """The newest revision this code knows (there is one head)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every revision this code's migrations define."""
    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    """The database's revision; None for a database never migrated."""
    return MigrationContext.configure(conn).get_current_revision()


def schema_problem(conn: Connection) -> str | None:
    """Why this database cannot be served by this code, or None when it is at the head.

    The message names both revisions and what to do: a database behind (or never
    migrated) needs `loaxa migrate`; one ahead was migrated by a newer loaxa.
    """
    current = current_revision(conn)
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return (
            f"the database has not been migrated (it has no revision; this loaxa needs {head}): "
            "run `loaxa migrate`"
        )
    if current in known_revisions():
        return (
            f"the database is at revision {current}, behind this loaxa's {head}: "
            "run `loaxa migrate`"
        )
    return (
        f"the database is at revision {current}, which this loaxa does not know (its newest "
        f"is {head}): it was migrated by a newer loaxa; run that version"
    )
