"""Test database and app: migrations build the schema; each test starts from empty tables.

Set LOAXA_TEST_DATABASE_URL to a PostgreSQL server URL to run on PostgreSQL: the suite
creates a database of its own there (so runs cannot collide) and drops it at the end.
Without it, the suite runs on a SQLite file in a temporary directory.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import clock
from app.accounts.security import use_hasher

# Real argon2, with the cheapest parameters: hashing is what is tested, not its cost.
use_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))


def _create_pg_database(server_url: str) -> tuple[str, str]:
    import psycopg

    url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"loaxa_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_pg_database(server_url: str, name: str) -> None:
    import psycopg

    admin = make_url(server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test run, configured as loaxa's database."""
    data_dir = tmp_path_factory.mktemp("loaxa-data")
    server = os.environ.get("LOAXA_TEST_DATABASE_URL")
    pg_name = None
    if server:
        url, pg_name = _create_pg_database(server)
    else:
        url = f"sqlite:///{data_dir / 'test.db'}"
    os.environ["LOAXA_DATABASE_URL"] = url
    os.environ["LOAXA_DATA_DIR"] = str(data_dir)
    os.environ["LOAXA_SECRET_KEY"] = "test-secret-" + "x" * 40
    # No push publisher in the app under test (tests/push starts its own broker and one).
    os.environ["LOAXA_MQTT_ENABLED"] = "0"
    _clear_caches()
    from app import migrations

    migrations.upgrade(url)
    try:
        yield url
    finally:
        from app.db import get_engine

        get_engine().dispose()
        if server and pg_name:
            _drop_pg_database(server, pg_name)


def _clear_caches() -> None:
    from app.config import get_settings
    from app.db import get_engine, get_sessionmaker

    get_settings.cache_clear()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    from app.db import get_engine

    return get_engine()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touches the database starts from empty tables, the real clock and
    no sign-in attempts counted."""
    yield
    clock.reset()
    if "database_url" not in request.fixturenames:
        return
    _truncate_all(request.getfixturevalue("engine"))
    from app.accounts import throttle

    throttle.reset()


def _truncate_all(engine: Engine) -> None:
    import app.models  # noqa: F401
    from app.db import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for service-level tests; committed data is cleaned up after the test."""
    from app.db import get_sessionmaker

    with get_sessionmaker()() as s:
        yield s


@pytest.fixture
def data_dir(database_url: str) -> Path:
    from app.config import get_settings

    return get_settings().data_dir


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    """An empty, never migrated database of its own (the suite's is at head and in use)."""
    server = os.environ.get("LOAXA_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    url, name = _create_pg_database(server)
    try:
        yield url
    finally:
        _drop_pg_database(server, name)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def server_url(database_url: str) -> Iterator[str]:
    """The real loaxa app served by uvicorn in this process, on a free loopback port."""
    from app.main import create_app

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(), log_level="warning", lifespan="off", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
