"""The polls' way to the database: one prebuilt statement, raw DB-API on PostgreSQL.

Every playout PC polls its playlist and, every few seconds, its emergencies: thousands of
requests a second that each run ONE indexed statement (the device found by its token hash
and its rows in the same round trip). At that rate SQLAlchemy's per-execution work (ORM
session, result objects, compiling) costs more CPU than the query itself, so on PostgreSQL
these statements bypass the ORM: compiled once to SQL text, sent to psycopg on a pooled
autocommit connection, rows handed back as tuples. On SQLite (tests, a single small
station) they run in an ordinary unit of work. Nothing is cached between requests, so a
cancelled broadcast or a changed rundown shows at once.

Everything else in loaxa goes through the ORM and the request's unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from starlette.concurrency import run_in_threadpool

from app import clock
from app.db import get_engine, make_engine, unit_of_work
from app.devices.service import DeviceState, Telemetry, telemetry_changes, telemetry_statement

Row = Sequence[Any]
T = TypeVar("T")


@lru_cache(maxsize=4)
def _poll_engine(engine: Engine) -> Engine | None:
    """For PostgreSQL, a second pool beside the application's engine; None elsewhere."""
    # Each poll is one statement, so autocommit makes it one round trip (no BEGIN/COMMIT)
    # and psycopg's prepared statements survive (a ROLLBACK drops them, and planning a poll
    # costs more than running it). No pre-ping: a dead connection fails one statement, is
    # replaced, and the statement is tried once more. The only writes here are device
    # health columns, so their commits need not wait for the disk.
    if engine.dialect.name != "postgresql":
        return None
    return make_engine(
        engine.url.render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_reset_on_return=None,  # autocommit: there is never a transaction to end
        pool_size=4,
        max_overflow=8,
        # Polls run on the event loop: never let one wait long for the server.
        connect_args={
            "options": "-c synchronous_commit=off -c statement_timeout=5000",
            "connect_timeout": 5,
        },
    )


def _poll_bind() -> Engine | None:
    return _poll_engine(get_engine())


@lru_cache(maxsize=64)
def _sql(statement: Executable, dialect: Dialect) -> str:
    assert isinstance(statement, ClauseElement)
    return str(statement.compile(dialect=dialect))


def poll_execute(statement: Executable, params: dict[str, Any], *, fetch: bool = True) -> list[Row]:
    """Run one poll statement (built once, with named bind parameters); rows as tuples.

    On PostgreSQL the statement, compiled once, goes straight to psycopg on a pooled
    autocommit connection: SQLAlchemy's per-execution work costs more CPU than the query
    itself, and these run thousands of times a second. Elsewhere (SQLite) it runs in a
    unit of work like any other statement. Datetimes in the rows may be in any zone.
    """
    engine = _poll_bind()
    if engine is None:
        with unit_of_work(write=not fetch) as session:
            result = session.execute(statement, params)
            return [tuple(r) for r in result] if fetch else []
    sql = _sql(statement, engine.dialect)
    dbapi = engine.dialect.loaded_dbapi
    for attempt in (1, 2):
        conn = engine.raw_connection()  # pooled; close() hands it back
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            rows = list(cursor.fetchall()) if fetch else []
            cursor.close()
            return rows
        except (dbapi.OperationalError, dbapi.InterfaceError):
            # The connection died (a server restart): drop it and try a fresh one.
            conn.invalidate()
            if attempt == 2:
                raise
        finally:
            conn.close()
    raise AssertionError("unreachable")  # pragma: no cover


async def run_db(fn: Callable[[], T]) -> T:
    """Run a poll's database work from an async endpoint.

    PostgreSQL: inline. The work is one or two short autocommit statements that wait on
    no lock (see touch_device), and a hop to the thread pool costs more CPU than the
    round trip it would free the event loop for. SQLite: in the thread pool, since a
    write there may wait for the database's single write lock.
    """
    if _poll_bind() is not None:
        return fn()
    return await run_in_threadpool(fn)


def touch_device(
    device: DeviceState, telemetry: Telemetry, *, pulled_playlist: bool = False
) -> None:
    """After a poll: write the device's health columns when they are stale (rarely)."""
    values = telemetry_changes(device, telemetry, now=clock.now(), pulled_playlist=pulled_playlist)
    if values:
        poll_execute(
            telemetry_statement(frozenset(values)), {**values, "device_id": device.id}, fetch=False
        )
