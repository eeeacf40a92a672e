"""Engine, declarative Base and the request-scoped session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import annotated_types
from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from app.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite hands back what it was given without the offset: it was UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


# Every integer a request carries is bounded in its schema by what its column holds, so a
# value past it is a 422 naming it, never a database error, and the OpenAPI document says
# the bounds. Ids and versions live in INTEGER columns (32 bits on PostgreSQL, which refuses
# to compare one with a larger number: the fuzzer found that 500); counts and offsets only
# meet BIGINT arithmetic.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
DbId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(INT32_MAX)]
DbCount = Annotated[int, annotated_types.Ge(0), annotated_types.Le(INT64_MAX)]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with SQLite set up for a service: WAL, foreign keys, a busy timeout."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A connection that died while the server was away is replaced at checkout, so the
    # service recovers by itself once the server is back.
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql") and "connect_timeout" not in make_url(url).query:
        # A server that cannot be reached (not one that refuses) answers 503 in seconds,
        # not after the operating system's two-minute TCP timeout.
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling is off (see _sqlite_pragmas); we emit BEGIN. A unit
    # of work that will write asks for IMMEDIATE: it takes the write lock up front, so a read
    # followed by a write cannot fail half-way on a snapshot another writer has moved on.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener own transactions
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    return make_engine(get_settings().sqlalchemy_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def unit_of_work(*, write: bool = True) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    session = get_sessionmaker()()
    if write and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: the request's unit of work (the only place that commits)."""
    with unit_of_work(write=request.method not in SAFE_METHODS) as session:
        yield session


# The request's session, for route signatures. scope="function": the session commits before
# the response is sent, so a failed commit is reported to the caller instead of after a 2xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def add_unique(session: Session, obj: Base) -> bool:
    """Insert obj inside a savepoint; False (and nothing written) when a unique key clashes.

    Pending changes are flushed first so that only this row can hit the constraint; a
    concurrent request that inserted the same key leaves this transaction usable.
    """
    session.flush()
    try:
        with session.begin_nested():
            session.add(obj)
            session.flush()
    except IntegrityError:
        return False
    return True


def check_version(
    what: str, *, current: int, expected: int | None, required: bool = False
) -> None:
    """Refuse a write based on an older version of a row (optimistic locking).

    `what` names the row for the caller, e.g. "segment 12". Without an expected version
    the write goes ahead, unless `required` (then 428: the caller must say what it saw).
    """
    from app.errors import PreconditionFailed, PreconditionRequired

    if expected is None:
        if required:
            raise PreconditionRequired(
                f"send the {what.split()[0]}'s version (the 'version' field or an If-Match "
                "header with its ETag) so that a concurrent edit is not overwritten"
            )
        return
    if expected != current:
        raise PreconditionFailed(
            f"{what} has changed (version {current}, you sent {expected}); reload it and "
            "apply your change again"
        )


def flush_versioned(session: Session, what: str) -> None:
    """Flush; when a versioned row was changed by a concurrent writer, 409 instead of overwrite.

    `what` names the row for the caller, e.g. "segment 12".
    """
    from app.errors import Conflict

    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"{what} was changed by someone else; reload it") from exc
