"""`loaxa serve` and `loaxa scheduler` on a database that is not migrated, or is behind.

Before, the server started and the first sign-in answered a bare 500. Now neither process
starts, and each says which revision the database is at, which one this loaxa needs, and
that `loaxa migrate` fixes it; /readyz says the same if the database falls behind under a
running server.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app import migrations
from app.migrations import head_revision
from tests.faults.procs import env_with, run_loaxa

pytestmark = pytest.mark.faults


def test_serve_and_scheduler_refuse_a_database_never_migrated(scratch_url: str) -> None:
    env = env_with(LOAXA_DATABASE_URL=scratch_url)
    for argv in (("serve", "--port", "9"), ("scheduler", "--once")):
        r = run_loaxa(*argv, env=env, timeout=60)
        assert r.returncode == 1, (argv, r.stdout, r.stderr)
        assert "has not been migrated" in r.stderr
        assert head_revision() in r.stderr and "loaxa migrate" in r.stderr
        assert "Traceback" not in r.stderr


def test_serve_and_scheduler_refuse_a_database_behind(scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "0003")
    env = env_with(LOAXA_DATABASE_URL=scratch_url)
    for argv in (("serve", "--port", "9"), ("scheduler", "--once")):
        r = run_loaxa(*argv, env=env, timeout=60)
        assert r.returncode == 1, (argv, r.stdout, r.stderr)
        assert f"at revision 0003, behind this loaxa's {head_revision()}" in r.stderr
        assert "run `loaxa migrate`" in r.stderr

    assert run_loaxa("migrate", env=env).returncode == 0
    r = run_loaxa("scheduler", "--once", "--at", "2024-03-01T08:00:00+07:00", env=env)
    assert r.returncode == 0, r.stderr


def test_readyz_names_the_revisions_when_the_database_falls_behind(client: TestClient) -> None:
    from app.db import get_engine

    assert client.get("/readyz").status_code == 200
    with get_engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["database"] == "not migrated"
        assert "revision 0003" in r.json()["detail"] and "loaxa migrate" in r.json()["detail"]
        with get_engine().begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")
        detail = client.get("/readyz").json()["detail"]
        assert "newer loaxa" in detail and head_revision() in detail
    finally:
        with get_engine().begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{head_revision()}'")
    assert client.get("/readyz").status_code == 200
