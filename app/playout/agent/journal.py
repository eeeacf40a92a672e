"""The agent's local journal (SQLite): stored playlists, state, and as-run events.

An as-run event is one continuous stretch of playback ("part") of an occurrence: a playlist
item at its planned start, or an emergency. Part 0's event_id is made once, when the
occurrence first plays, and written before the player starts; a restart then finds it
"playing" and knows the item was in progress. An item cut short (emergency, restart) and
resumed gets a further part with its own event_id, so airtime is reported as it happened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS playlists (
    day TEXT PRIMARY KEY,
    etag TEXT,
    body TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    occurrence TEXT NOT NULL,
    part INTEGER NOT NULL,
    broadcast_id INTEGER,
    emergency_id INTEGER,
    sha256 TEXT NOT NULL,
    planned_start TEXT NOT NULL,
    planned_end TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    offset_ms INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    heartbeat_at TEXT,
    status TEXT NOT NULL,
    note TEXT,
    upload TEXT NOT NULL DEFAULT 'pending',
    reject_reason TEXT,
    UNIQUE (occurrence, part)
);
CREATE INDEX IF NOT EXISTS ix_events_upload ON events (upload, status);
"""
# Columns added since the first journals (added to an older file when it is opened). A
# relayed stream's event keeps sha256 '' (the column is NOT NULL in older files).
ADDED_COLUMNS = (
    ("relayed_ms", "INTEGER"),
    ("dropout_count", "INTEGER"),
    ("dropout_ms", "INTEGER"),
)
STREAM = ""  # the sha256 of a relayed stream's event in the journal
LIVE_OCCURRENCE = "live-"  # a live session's occurrence: "live-<session id>"

# Event statuses: "playing" while the player runs; the rest are final and sent to the server.
FINAL_STATUSES = ("played", "interrupted", "failed")
# Upload states: "pending" until the server answers; "accepted" or "duplicate" (acknowledged,
# never sent again); "rejected" (the server refused it for good: kept with its reason).
ACKNOWLEDGED = ("accepted", "duplicate")


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the journal")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


@dataclass(frozen=True)
class Part:
    """One as-run event as the journal holds it."""

    event_id: str
    occurrence: str
    part: int
    broadcast_id: int | None
    emergency_id: int | None
    sha256: str
    planned_start: datetime
    planned_end: datetime
    duration_ms: int
    offset_ms: int
    started_at: datetime
    ended_at: datetime | None
    heartbeat_at: datetime | None
    status: str
    note: str | None
    upload: str
    reject_reason: str | None
    relayed_ms: int | None = None
    dropout_count: int | None = None
    dropout_ms: int | None = None

    @property
    def is_stream(self) -> bool:
        return self.sha256 == STREAM

    @property
    def expected_end(self) -> datetime:
        """When this part's playback reaches the end of the file."""
        return self.started_at + timedelta(milliseconds=self.duration_ms - self.offset_ms)

    def as_run(self) -> dict[str, Any]:
        """The event as the as-run endpoint takes it."""
        assert self.ended_at is not None
        # The server wants started_at < ended_at; an item that never started (or a player
        # that died at once) is sent with one millisecond of "airtime".
        ended_at = max(self.ended_at, self.started_at + timedelta(milliseconds=1))
        event: dict[str, Any] = {
            "event_id": self.event_id,
            "broadcast_id": self.broadcast_id,
            "sha256": None if self.is_stream else self.sha256,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(ended_at),
            "status": self.status,
        }
        if self.is_stream:
            event["relayed_ms"] = self.relayed_ms or 0
            event["dropouts"] = {
                "count": self.dropout_count or 0,
                "total_ms": self.dropout_ms or 0,
            }
            if self.note:
                event["note"] = self.note[:300]
        if self.emergency_id is not None:
            event["emergency_id"] = self.emergency_id
        if self.occurrence.startswith(LIVE_OCCURRENCE):
            # A live session: a stream the server ended, no broadcast of its own.
            event["live_id"] = int(self.occurrence.removeprefix(LIVE_OCCURRENCE))
            event.pop("broadcast_id", None)
        return event


def _part(row: sqlite3.Row) -> Part:
    started_at = _dt(row["started_at"])
    planned_start = _dt(row["planned_start"])
    planned_end = _dt(row["planned_end"])
    assert started_at and planned_start and planned_end
    return Part(
        event_id=row["event_id"],
        occurrence=row["occurrence"],
        part=row["part"],
        broadcast_id=row["broadcast_id"],
        emergency_id=row["emergency_id"],
        sha256=row["sha256"],
        planned_start=planned_start,
        planned_end=planned_end,
        duration_ms=row["duration_ms"],
        offset_ms=row["offset_ms"],
        started_at=started_at,
        ended_at=_dt(row["ended_at"]),
        heartbeat_at=_dt(row["heartbeat_at"]),
        status=row["status"],
        note=row["note"],
        upload=row["upload"],
        reject_reason=row["reject_reason"],
        relayed_ms=row["relayed_ms"],
        dropout_count=row["dropout_count"],
        dropout_ms=row["dropout_ms"],
    )


@dataclass(frozen=True)
class StoredPlaylist:
    """A day's playlist as last fetched."""

    day: date
    etag: str | None
    body: dict[str, Any]
    fetched_at: datetime


class JournalLocked(Exception):
    """Another agent already uses this journal (two agents would play over each other)."""


def _hold_lock(journal: Path) -> sqlite3.Connection:
    """Take the journal's single-instance lock: `<journal>.lock`, held until closed.

    The lock is SQLite's own on a small database beside the journal (a byte-range lock:
    fcntl on POSIX, LockFileEx on Windows), so it works the same on every system, including
    between two agents in one process, and the system releases it when the agent dies,
    however it dies: a crashed agent never leaves a stale lock behind.
    """
    lock_path = journal.with_name(journal.name + ".lock")
    db = sqlite3.connect(str(lock_path), timeout=0, isolation_level=None)
    try:
        # In exclusive locking mode a connection keeps the lock of its first write until
        # it closes; with timeout 0 a second agent fails at once instead of waiting.
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)")
        db.execute("DELETE FROM holder")
        db.execute("INSERT INTO holder (pid) VALUES (?)", (os.getpid(),))
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        db.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise JournalLocked(f"another agent is running with the journal {journal}") from exc
        raise
    except sqlite3.DatabaseError:
        # Not a database (e.g. the empty lock file of an older agent): start it afresh.
        db.close()
        lock_path.unlink()
        return _hold_lock(journal)
    return db


class Journal:
    """The SQLite journal; ":memory:" gives a throwaway one (dry runs)."""

    def __init__(self, path: Path | str) -> None:
        self._lock: sqlite3.Connection | None = None
        if str(path) != ":memory:":
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _hold_lock(path)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # Playout PCs lose power: the "playing" mark must be on disk before the player runs.
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(events)")}
        for name, kind in ADDED_COLUMNS:
            if name not in have:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")

    def close(self) -> None:
        """Close the database and let another agent use it."""
        self._db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # Playlists and state.

    def save_playlist(
        self, day: date, *, etag: str | None, body: dict[str, Any], fetched_at: datetime
    ) -> None:
        """Store (or replace) a day's playlist."""
        self._db.execute(
            "INSERT INTO playlists (day, etag, body, fetched_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (day) DO UPDATE SET etag = excluded.etag, body = excluded.body, "
            "fetched_at = excluded.fetched_at",
            (day.isoformat(), etag, json.dumps(body, ensure_ascii=False), _iso(fetched_at)),
        )

    def touch_playlist(self, day: date, *, fetched_at: datetime) -> None:
        """Note that a day's stored playlist is still current."""
        self._db.execute(
            "UPDATE playlists SET fetched_at = ? WHERE day = ?", (_iso(fetched_at), day.isoformat())
        )

    def playlist(self, day: date) -> StoredPlaylist | None:
        """A day's stored playlist, if any."""
        row = self._db.execute(
            "SELECT day, etag, body, fetched_at FROM playlists WHERE day = ?", (day.isoformat(),)
        ).fetchone()
        if row is None:
            return None
        fetched_at = _dt(row["fetched_at"])
        assert fetched_at is not None
        return StoredPlaylist(
            day=date.fromisoformat(row["day"]),
            etag=row["etag"],
            body=json.loads(row["body"]),
            fetched_at=fetched_at,
        )

    def drop_playlists_before(self, day: date) -> None:
        """Forget playlists of days before `day`."""
        self._db.execute("DELETE FROM playlists WHERE day < ?", (day.isoformat(),))

    def get_state(self, key: str) -> str | None:
        """A stored value."""
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_state(self, key: str, value: str) -> None:
        """Store a value."""
        self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # As-run events.

    def parts(self, occurrence: str) -> list[Part]:
        """The parts of an occurrence, in order."""
        rows = self._db.execute(
            "SELECT * FROM events WHERE occurrence = ? ORDER BY part", (occurrence,)
        ).fetchall()
        return [_part(r) for r in rows]

    def add_part(
        self,
        *,
        occurrence: str,
        broadcast_id: int | None,
        emergency_id: int | None,
        sha256: str,
        planned_start: datetime,
        planned_end: datetime,
        duration_ms: int,
        offset_ms: int,
        started_at: datetime,
        status: str = "playing",
        ended_at: datetime | None = None,
        note: str | None = None,
    ) -> Part:
        """Write the next part of an occurrence (committed before the caller plays it)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT COALESCE(MAX(part) + 1, 0) AS n FROM events WHERE occurrence = ?",
                (occurrence,),
            ).fetchone()
            event_id = str(uuid.uuid4())
            self._db.execute(
                "INSERT INTO events (event_id, occurrence, part, broadcast_id, emergency_id, "
                "sha256, planned_start, planned_end, duration_ms, offset_ms, started_at, "
                "ended_at, heartbeat_at, status, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event_id,
                    occurrence,
                    row["n"],
                    broadcast_id,
                    emergency_id,
                    sha256,
                    _iso(planned_start),
                    _iso(planned_end),
                    duration_ms,
                    offset_ms,
                    _iso(started_at),
                    None if ended_at is None else _iso(ended_at),
                    _iso(started_at),
                    status,
                    note,
                ),
            )
        part = self.get(event_id)
        assert part is not None
        return part

    def get(self, event_id: str) -> Part | None:
        """One event by id."""
        row = self._db.execute("SELECT * FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else _part(row)

    def heartbeat(self, event_id: str, at: datetime) -> None:
        """Note that a part is still playing at `at`."""
        self._db.execute(
            "UPDATE events SET heartbeat_at = ? WHERE event_id = ? AND status = 'playing'",
            (_iso(at), event_id),
        )

    def finish(
        self,
        event_id: str,
        *,
        status: str,
        ended_at: datetime,
        note: str | None = None,
        relayed: tuple[int, int, int] | None = None,
    ) -> None:
        """Close a playing part with its final status (and, for a relayed stream, what it
        heard: relayed ms, dropout count, dropout ms)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status}")
        if relayed is not None:
            self._db.execute(
                "UPDATE events SET relayed_ms = ?, dropout_count = ?, dropout_ms = ? "
                "WHERE event_id = ? AND status = 'playing'",
                (*relayed, event_id),
            )
        self._db.execute(
            "UPDATE events SET status = ?, ended_at = ?, note = COALESCE(?, note) "
            "WHERE event_id = ?",
            (status, _iso(ended_at), note, event_id),
        )

    def playing(self) -> list[Part]:
        """Parts still marked as playing (after a crash: none of them is playing now)."""
        rows = self._db.execute("SELECT * FROM events WHERE status = 'playing'").fetchall()
        return [_part(r) for r in rows]

    def pending_uploads(self, limit: int) -> list[Part]:
        """Final events the server has not acknowledged yet, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM events WHERE upload = 'pending' AND status IN (?, ?, ?) "
            "ORDER BY started_at, part LIMIT ?",
            (*FINAL_STATUSES, limit),
        ).fetchall()
        return [_part(r) for r in rows]

    def mark_uploaded(self, event_ids: list[str], state: str) -> None:
        """Record the server's acknowledgement ("accepted" or "duplicate")."""
        if state not in ACKNOWLEDGED:
            raise ValueError(f"not an acknowledgement: {state}")
        self._db.executemany(
            "UPDATE events SET upload = ? WHERE event_id = ?", [(state, e) for e in event_ids]
        )

    def mark_rejected(self, event_id: str, reason: str) -> None:
        """Record that the server refused an event for good (it is not sent again)."""
        self._db.execute(
            "UPDATE events SET upload = 'rejected', reject_reason = ? WHERE event_id = ?",
            (reason, event_id),
        )

    def events(self) -> list[Part]:
        """Every event, oldest first (for tests and diagnostics)."""
        rows = self._db.execute("SELECT * FROM events ORDER BY started_at, part").fetchall()
        return [_part(r) for r in rows]

    def prune_events(self, before: datetime) -> None:
        """Forget acknowledged or rejected events that ended before `before`."""
        self._db.execute(
            "DELETE FROM events WHERE upload != 'pending' AND ended_at < ?", (_iso(before),)
        )
