"""What a backup holds and how it comes back.

Backup: one consistent copy of the database (SQLite's online backup API; PostgreSQL's
pg_dump, run on a snapshot exported from a REPEATABLE READ transaction), and, read from
that same copy or snapshot, the stored audio files the database names (segment audio and
uploads, broadcast masters, emergencies), the generated secret key when there is one, and
a manifest: sha256 of every member, loaxa's version, the database's Alembic revision.
Files written while the backup runs are not in it, and nothing in it is missing from it.

Restore: into an empty database (a migrated one with no rows counts as empty) and a data
directory, or with `force` over whatever is there. The archive is checked whole before
anything is changed (archive.py); audio goes into the store first (content-addressed, so
files already there are kept), then the database in one step (a file moved into place;
psql in one transaction), then it is migrated to this code's newest revision. Stop `loaxa
serve` and `loaxa scheduler` before restoring.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, inspect, select, text, union

from app import __version__, clock, migrations
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.backup.archive import (
    DATABASE_MEMBERS,
    SECRET_MEMBER,
    BackupError,
    Member,
    audio_member,
    extract_verified,
    write_archive,
)
from app.config import SECRET_FILE_NAME, get_settings
from app.db import get_engine


@dataclass
class BackupResult:
    path: Path
    size_bytes: int
    seconds: float
    revision: str
    audio_files: int
    audio_bytes: int
    missing_audio: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    seconds: float
    revision: str
    migrated_to: str
    audio_files: int
    rows: int


def _audio_columns() -> list[Any]:
    from app.schedule.runner import AUDIO_KEPT_BY

    return [AudioAsset.sha256, AudioAsset.source_sha256, AudioAsset.listen_sha256, *AUDIO_KEPT_BY]


def _named_audio(conn: Connection) -> set[str]:
    """Every sha256 the database names as a stored file."""
    query = union(*(select(c.label("sha")).where(c.is_not(None)) for c in _audio_columns()))
    return set(conn.scalars(query))


def _revision(conn: Connection) -> str:
    revision = migrations.current_revision(conn)
    if revision is None:
        raise BackupError("the database has not been migrated: there is nothing to back up")
    return revision


# Backup.


def backup(out: Path) -> BackupResult:
    """Write the archive to `out` (see the module's docstring)."""
    started = time.monotonic()
    settings = get_settings()
    engine = get_engine()
    staging = Path(tempfile.mkdtemp(prefix="backup-", dir=audio.work_dir()))
    try:
        dialect = engine.dialect.name
        dump = staging / Path(DATABASE_MEMBERS[dialect]).name
        if dialect == "sqlite":
            revision, named = _dump_sqlite(engine, dump)
        else:
            revision, named = _dump_postgres(engine, dump)
        members = [Member(DATABASE_MEMBERS[dialect], dump)]
        found = {sha: path for sha, path in audio.store().iter_all() if sha in named}
        members += [Member(audio_member(p), p) for _, p in sorted(found.items())]
        key = settings.data_dir / SECRET_FILE_NAME
        if settings.secret_key is None and key.is_file():
            members.append(Member(SECRET_MEMBER, key))
        manifest = write_archive(
            out,
            members,
            {
                "created_at": clock.now().isoformat(),
                "loaxa_version": __version__,
                "alembic_revision": revision,
                "database": {"dialect": dialect, "member": DATABASE_MEMBERS[dialect]},
                "missing_audio": sorted(named - set(found)),
            },
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(
        path=out,
        size_bytes=out.stat().st_size,
        seconds=time.monotonic() - started,
        revision=revision,
        audio_files=len(found),
        audio_bytes=sum(p.stat().st_size for p in found.values()),
        missing_audio=manifest["missing_audio"],
    )


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up or restored")
    return Path(database)


def _dump_sqlite(engine: Engine, dump: Path) -> tuple[str, set[str]]:
    """SQLite's online backup API: a consistent copy while others read and write."""
    source = sqlite3.connect(_sqlite_path(engine))
    copy = sqlite3.connect(dump)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    reader = create_engine(f"sqlite:///{dump}")
    try:
        with reader.connect() as conn:
            return _revision(conn), _named_audio(conn)
    finally:
        reader.dispose()


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """A URL for pg_dump and psql, and an environment with the password (never on a command
    line, where `ps` would show it)."""
    url = engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client "
            "(Debian/Ubuntu: apt-get install postgresql-client), of the server's major "
            "version or newer"
        )
    return found


def _dump_postgres(engine: Engine, dump: Path) -> tuple[str, set[str]]:
    """pg_dump on the snapshot of a REPEATABLE READ transaction that also reads which audio
    files the database names: the dump and the file list agree."""
    pg_dump = _tool("pg_dump")
    target, env = _libpq(engine)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision, named = _revision(conn), _named_audio(conn)
            done = subprocess.run(
                [
                    pg_dump, "--format=plain", "--no-owner", "--no-privileges",
                    f"--snapshot={snapshot}", f"--file={dump}", f"--dbname={target}",
                ],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-2000:]}")
    return revision, named


# Restore.


def restore(archive: Path, *, force: bool = False) -> RestoreResult:
    """Bring back what `archive` holds (see the module's docstring)."""
    started = time.monotonic()
    settings = get_settings()
    engine = get_engine()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=settings.data_dir))
    try:
        manifest = extract_verified(archive, staging)
        dialect = manifest["database"]["dialect"]
        revision = str(manifest["alembic_revision"])
        _check_target(engine, manifest, force=force)
        key = staging / SECRET_MEMBER
        secret = settings.data_dir / SECRET_FILE_NAME
        replaces_key = secret.is_file() and key.is_file() and not force
        if replaces_key and settings.secret_key is None and secret.read_bytes() != key.read_bytes():
            raise BackupError(
                f"{secret} holds another secret key: restore into an empty data "
                "directory, or pass --force to replace it (signed-in users sign in again)"
            )
        # Every check is done: from here on things change.
        store = audio.store()
        restored_audio = 0
        for path in sorted((staging / "audio").glob("*/*")):
            sha, ext = path.name.split(".", 1)
            if not store.exists(sha, ext):
                store.put(path, ext=ext)
            restored_audio += 1
        dump = staging / DATABASE_MEMBERS[dialect]
        engine.dispose()
        if dialect == "sqlite":
            _restore_sqlite(engine, dump)
        else:
            _restore_postgres(engine, dump)
        engine.dispose()
        if key.is_file() and settings.secret_key is None:
            os.chmod(key, 0o600)
            os.replace(key, secret)
        migrations.upgrade(engine.url.render_as_string(hide_password=False))
        with engine.connect() as conn:
            rows = _row_count(conn)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(
        seconds=time.monotonic() - started,
        revision=revision,
        migrated_to=migrations.head_revision(),
        audio_files=restored_audio,
        rows=rows,
    )


def _tables(conn: Connection) -> list[str]:
    return [t for t in inspect(conn).get_table_names() if t != "alembic_version"]


def _row_count(conn: Connection) -> int:
    return sum(
        conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in _tables(conn)
    )


def _check_target(engine: Engine, manifest: dict[str, Any], *, force: bool) -> None:
    dialect = manifest["database"]["dialect"]
    if dialect != engine.dialect.name:
        raise BackupError(
            f"the archive holds a {dialect} database and loaxa is configured for "
            f"{engine.dialect.name}: restore it into a {dialect} database"
        )
    revision = manifest.get("alembic_revision")
    if revision not in migrations.known_revisions():
        raise BackupError(
            f"the archive's database is at revision {revision}, which this loaxa does not "
            f"know (its newest is {migrations.head_revision()}): restore it with the loaxa "
            f"that made it ({manifest.get('loaxa_version')}) or a newer one"
        )
    if force:
        return
    with engine.connect() as conn:
        for table in _tables(conn):
            if conn.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1')).first() is not None:
                raise BackupError(
                    f"the database is not empty (table {table} has rows): restore into an "
                    "empty database, or pass --force to replace everything in it"
                )


def _restore_sqlite(engine: Engine, dump: Path) -> None:
    """Move the copy into place (one rename); the old file's WAL must not outlive it."""
    target = _sqlite_path(engine)
    target.parent.mkdir(parents=True, exist_ok=True)
    placed = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(dump, placed)
    with sqlite3.connect(placed) as check:
        if check.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            placed.unlink()
            raise BackupError("the archive's SQLite database fails its integrity check")
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(placed, target)


def _restore_postgres(engine: Engine, dump: Path) -> None:
    """Drop every table there is and load the dump, all in one transaction (psql)."""
    psql = _tool("psql")
    target, env = _libpq(engine)
    with engine.connect() as conn:
        existing = inspect(conn).get_table_names()
    drops = dump.with_name("drop.sql")
    drops.write_text(
        "".join(f'DROP TABLE IF EXISTS public."{t}" CASCADE;\n' for t in existing),
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            psql, "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
            f"--file={drops}", f"--file={dump}", f"--dbname={target}",
        ],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        error = done.stderr.strip()[-2000:]
        raise BackupError(f"psql could not load the dump (the database is unchanged): {error}")

