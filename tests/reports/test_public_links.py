"""Public links come only from LOAXA_PUBLIC_BASE_URL or a trusted host, and the scheduler's
view keeps hosts, PIDs and job details to the system's admins (issue 21, finding 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from app import clock
from app.accounts.models import Role
from app.config import get_settings
from app.schedule import status
from tests.helpers import login, make_station, make_user, staff

# Generous: the machine may be busy (argon2, ffmpeg); no answer should come near it.
TIMEOUT = 60.0


def _feed(url: str, station_id: int, host: str) -> httpx.Response:
    r = httpx.get(
        f"{url}/api/v1/stations/{station_id}/podcast.xml", headers={"Host": host}, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    return r


def test_a_forged_host_never_makes_the_podcasts_links_and_host_links_are_not_cached(
    server_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    station_id = int(make_station()["station_id"])  # type: ignore[call-overload]
    port = server_url.rsplit(":", 1)[1]
    # A Host nobody trusts: the links are the address the connection really arrived at.
    r = _feed(server_url, station_id, "evil.example")
    assert "evil.example" not in r.text
    assert f"http://127.0.0.1:{port}/api/v1/stations/{station_id}/podcast.xml" in r.text
    assert r.headers["cache-control"].startswith("private")
    # This machine's own name is trusted by default.
    r = _feed(server_url, station_id, f"localhost:{port}")
    assert f"http://localhost:{port}/" in r.text
    # The operator's own list.
    monkeypatch.setattr(get_settings(), "trusted_hosts", "radio.xuanphuc.vn")
    r = _feed(server_url, station_id, "radio.xuanphuc.vn")
    assert "http://radio.xuanphuc.vn/" in r.text
    assert "localhost" not in _feed(server_url, station_id, f"localhost:{port}").text
    # The public URL: its links whatever the Host, and a feed any cache may keep.
    monkeypatch.setattr(get_settings(), "trusted_hosts", None)
    monkeypatch.setattr(get_settings(), "public_base_url", "https://loaxa.xuanphuc.vn")
    r = _feed(server_url, station_id, "evil.example")
    assert "https://loaxa.xuanphuc.vn/api/v1/stations/" in r.text and "evil" not in r.text
    assert r.headers["cache-control"].startswith("public")


def test_the_scheduler_view_shows_staff_whether_it_runs_not_hosts_pids_or_details(
    client: TestClient,
) -> None:
    """Viewers saw the host name and PID and other stations' job details."""
    ids = make_station()
    h = staff(client, ids["station_id"])
    make_user("station_admin", Role.admin, ids["station_id"])
    now = datetime(2024, 3, 20, 3, 0, tzinfo=UTC)
    holder = "may-chu-xa:4242"
    with clock.frozen(now):
        status.beat(holder=holder, now=now, started=True)
        status.record_run(
            "fill",
            started_at=now,
            finished_at=now + timedelta(seconds=2),
            outcome="ok",
            detail="station 2 (Xã Bên cạnh): filled broadcast 77",
            holder=holder,
        )
    with clock.frozen(now + timedelta(seconds=30)):
        for who in ("viewer", "editor", "approver"):
            page = client.get("/api/v1/scheduler", headers=h[who]).json()
            assert page["running"] is True
            assert page["processes"] == []
            [job] = page["jobs"]
            assert (job["job"], job["last_outcome"], job["last_detail"]) == ("fill", "ok", None)
            assert "may-chu-xa" not in str(page) and "4242" not in str(page)
        station_admin = login(client, "station_admin")
        assert client.get("/api/v1/scheduler", headers=station_admin).json()["processes"] == []
        full = client.get("/api/v1/scheduler", headers=h["admin"]).json()
    assert full["processes"][0]["holder"] == holder
    assert "filled broadcast 77" in full["jobs"][0]["last_detail"]
