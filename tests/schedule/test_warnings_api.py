"""Warnings through the API: acknowledged by staff of their own station only; a scheduler
that stopped beating is told on every answer, on `GET /api/v1/scheduler` and in `/readyz`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app import clock
from app.accounts.models import Role
from app.schedule import jobs, status
from app.schedule.rolling import roll
from app.schedule.runs import HOLDER
from tests.helpers import login, make_station, make_user, staff

NOW = datetime(2024, 3, 20, 3, 0, tzinfo=UTC)


def _missing_groups(client: TestClient, headers: dict[str, str]) -> list[dict]:
    items = client.get("/api/v1/warnings?kind=cchc-missing", headers=headers).json()["items"]
    return [i for i in items if i["kind"] == "cchc-missing"]


def test_staff_acknowledge_their_own_stations_warnings_only(client: TestClient) -> None:
    ours, theirs = make_station(name="Xã A", villages=0), make_station(name="Xã B", villages=0)
    h = staff(client, ours["station_id"])
    make_user("bientap-b", Role.editor, theirs["station_id"])
    other = login(client, "bientap-b")
    with clock.frozen(NOW):
        jobs.check_cchc(NOW)  # nothing planned: three months without their column, each
        ours_groups = _missing_groups(client, h["viewer"])
        theirs_groups = _missing_groups(client, other)
    assert [g["month"] for g in ours_groups] == ["2024-05", "2024-04", "2024-03"]
    assert {g["station_id"] for g in ours_groups} == {ours["station_id"]}
    march = next(g for g in ours_groups if g["month"] == "2024-03")
    assert (march["count"], march["acknowledged"], march["acked_by"]) == (1, False, None)
    assert march["items"] == [
        {
            "key": "2024-03",
            "broadcast_id": None,
            "starts_at": None,
            "village_id": None,
            "village": None,
            "detail": None,
            "stage": None,
        }
    ]
    with clock.frozen(NOW + timedelta(minutes=5)):
        acked = client.post(f"/api/v1/warnings/{march['id']}/ack", headers=h["editor"])
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["acknowledged"], body["acked_by"], body["acked_count"]) == (True, "editor1", 1)
    assert body["acked_at"].startswith("2024-03-20T03:05")
    # Another station's warning, an unknown one, the computed scheduler one: 404 alike.
    theirs_id = theirs_groups[0]["id"]
    for wid in (theirs_id, 999_999, 0):
        r = client.post(f"/api/v1/warnings/{wid}/ack", headers=h["editor"])
        assert r.status_code == 404 and r.json()["detail"] == f"warning {wid} does not exist"
    # The admin sees every station and may acknowledge any.
    assert client.post(f"/api/v1/warnings/{theirs_id}/ack", headers=h["admin"]).is_success


def test_a_scheduler_that_stopped_beating_is_told_everywhere(client: TestClient) -> None:
    ids = make_station(villages=1)
    h = staff(client, ids["station_id"])
    # Never ran: the list, the scheduler page and readiness say so.
    with clock.frozen(NOW):
        listed = client.get("/api/v1/warnings", headers=h["viewer"]).json()
        page = client.get("/api/v1/scheduler", headers=h["viewer"]).json()
        ready = client.get("/readyz")
    assert listed["scheduler_running"] is False
    assert [i["kind"] for i in listed["items"]] == ["scheduler-down"]
    assert "no scheduler has ever run" in listed["items"][0]["message"]
    assert (page["running"], page["jobs"], page["processes"]) == (False, [], [])
    assert ready.status_code == 200  # readiness is the database's; the body tells the rest
    assert ready.json()["database"] == "ok" and "has ever run" in ready.json()["scheduler"]
    # A scheduler runs: nothing is said, and its jobs show their last and next runs.
    with clock.frozen(NOW):
        status.beat(holder=HOLDER, now=NOW, started=True)
        roll(now=NOW, months=3)
        status.record_run(
            "plan",
            started_at=NOW,
            finished_at=NOW + timedelta(seconds=2),
            outcome="ok",
            detail="{'created': 17}",
            holder=HOLDER,
        )
        status.record_next_runs({"plan": NOW + timedelta(hours=1)})
    with clock.frozen(NOW + timedelta(minutes=29)):
        listed = client.get("/api/v1/warnings", headers=h["viewer"]).json()
        page = client.get("/api/v1/scheduler", headers=h["viewer"]).json()
        assert client.get("/readyz").json()["scheduler"] == "running"
    assert listed["scheduler_running"] is True
    assert all(i["kind"] != "scheduler-down" for i in listed["items"])
    assert page["running"] is False  # the process is not seen beating for 29 minutes...
    assert page["down_since"] is None  # ...but the 30 minutes are not up yet
    [plan] = page["jobs"]
    assert (plan["job"], plan["last_outcome"], plan["runs"]) == ("plan", "ok", 1)
    assert plan["next_run_at"].startswith("2024-03-20T04:00")
    # Thirty minutes without a beat: every staff answer starts with it, whatever the filter
    # and page, and counts it.
    with clock.frozen(NOW + timedelta(minutes=31)):
        jobs.check_cchc(NOW + timedelta(minutes=31))
        for query in ("", "?kind=missed", "?station_id=1&limit=1"):
            listed = client.get(f"/api/v1/warnings{query}", headers=h["viewer"]).json()
            first = listed["items"][0]
            assert first["kind"] == "scheduler-down" and first["id"] == 0, query
            assert "scheduler not running since 2024-03-20T03:00" in first["message"]
        second_page = client.get("/api/v1/warnings?limit=1&offset=1", headers=h["viewer"]).json()
        page = client.get("/api/v1/scheduler", headers=h["viewer"]).json()
        ready = client.get("/readyz")
    assert second_page["items"][0]["kind"] != "scheduler-down"
    assert page["down_since"].startswith("2024-03-20T03:00")
    assert ready.status_code == 200
    assert "not running since 2024-03-20T03:00" in ready.json()["scheduler"]
