"""The database goes away under a running `loaxa serve`, then comes back.

The shared PostgreSQL is never stopped: the server reaches it through a TCP proxy the test
owns, and the test cuts that. While it is cut, every request that needs the database gets
503 with Retry-After and a message saying so (never a bare 500), /readyz fails and /healthz
does not; once the proxy is back, the same process answers again without a restart.
SQLite has no server to lose: this fault is PostgreSQL's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.accounts.models import Role
from tests.faults.procs import TcpProxy, env_with, serving
from tests.helpers import PASSWORD, make_station, make_user

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        not os.environ.get("LOAXA_TEST_DATABASE_URL"), reason="a database server to lose"
    ),
]


def _token(base: str, username: str) -> str:
    r = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_requests_get_503_while_the_database_is_away_and_work_again_after(
    database_url: str, tmp_path: Path
) -> None:
    ids = make_station()
    make_user("quantri", Role.admin)
    make_user("bientap", Role.editor, ids["station_id"])
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        with serving(tmp_path / "serve.log", env=env_with(LOAXA_DATABASE_URL=via_proxy)) as srv:
            base = srv.url
            admin = {"Authorization": f"Bearer {_token(base, 'quantri')}"}
            editor = {"Authorization": f"Bearer {_token(base, 'bientap')}"}
            assert httpx.get(f"{base}/api/v1/stations", headers=admin).status_code == 200
            assert httpx.get(f"{base}/readyz").status_code == 200

            proxy.cut()
            outage = time.monotonic()
            answers = []
            # Requests keep arriving while it is away: reads, writes and sign-ins.
            for n in range(5):
                answers += [
                    httpx.get(f"{base}/api/v1/stations", headers=admin, timeout=30),
                    httpx.post(
                        f"{base}/api/v1/segments",
                        json={"title": f"Tin {n}", "programme": "cchc", "topic": "progress"},
                        headers=editor,
                        timeout=30,
                    ),
                    httpx.post(
                        f"{base}/api/v1/auth/token",
                        data={"username": "bientap", "password": PASSWORD},
                        timeout=30,
                    ),
                ]
            for r in answers:
                assert r.status_code == 503, (r.request.url, r.status_code, r.text)
                assert r.headers["Retry-After"] == "5"
                assert "database is unavailable" in r.json()["detail"]
            ready = httpx.get(f"{base}/readyz", timeout=30)
            assert ready.status_code == 503 and ready.json()["database"] == "unavailable"
            assert httpx.get(f"{base}/healthz").status_code == 200
            away_s = time.monotonic() - outage

            proxy.restore()
            back = time.monotonic()
            while True:
                r = httpx.get(f"{base}/api/v1/stations", headers=admin, timeout=30)
                if r.status_code == 200:
                    break
                assert r.status_code == 503, r.text
                assert time.monotonic() - back < 15, "loaxa did not recover"
                time.sleep(0.1)
            recovered_s = time.monotonic() - back
            assert httpx.get(f"{base}/readyz").status_code == 200
            created = httpx.post(
                f"{base}/api/v1/segments",
                json={"title": "Sau sự cố", "programme": "cchc", "topic": "progress"},
                headers=editor,
            )
            assert created.status_code == 201, created.text
            assert srv.proc.poll() is None  # the same process, never restarted
            print(
                f"\n{len(answers)} requests during a {away_s:.2f} s outage: all 503; "
                f"answering again {recovered_s:.2f} s after the database came back"
            )
            assert "Traceback" not in srv.output()
    finally:
        proxy.close()
