"""A station's network kind (ip or fm) and the rule against double booking one loudspeaker,
through the API and as plain functions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.schedule import service as schedule
from app.stations.models import StationNetwork
from app.stations.network import network_at
from app.stations.overlaps import cadences_overlap
from tests.helpers import login, make_station, make_user, staff

# 10:00 on Saturday 16 March 2024 in Vietnam (UTC+7).
NOON_ISH = datetime(2024, 3, 16, 3, 0, tzinfo=UTC)


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    make_user("quantri", Role.admin)
    return login(client, "quantri")


def test_new_stations_are_ip_unless_told_and_unknown_kinds_are_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    r = client.post("/api/v1/stations", json={"name": "Xuân Phúc"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["network"] == "ip" and r.json()["pending_network"] is None
    r = client.post("/api/v1/stations", json={"name": "Xuân Hòa", "network": "fm"}, headers=admin)
    assert r.status_code == 201 and r.json()["network"] == "fm"
    r = client.post("/api/v1/stations", json={"name": "Xuân Lộc", "network": "dab"}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"].startswith("network"), r.text
    listed = client.get("/api/v1/stations", headers=admin).json()
    assert [s["network"] for s in listed] == ["ip", "fm"]


def test_patch_changes_details_and_the_network_from_the_next_local_day(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    clock.set_now(lambda: NOON_ISH)
    sid = client.post(
        "/api/v1/stations", json={"name": "Xuân Phúc", "network": "fm"}, headers=admin
    ).json()["id"]
    client.post("/api/v1/stations", json={"name": "Xuân Hòa"}, headers=admin)
    url = f"/api/v1/stations/{sid}"

    r = client.patch(url, json={"hotline": "0237 3868 115", "network": "ip"}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hotline"] == "0237 3868 115"
    # Today stays fm: no device's playlist changes in the middle of its day.
    assert body["network"] == "fm"
    assert body["pending_network"] == {"network": "ip", "effective_from": "2024-03-17"}

    # Asked again the same day, only the last answer counts; back to today's kind: no change.
    r = client.patch(url, json={"network": "fm"}, headers=admin)
    assert r.json()["network"] == "fm" and r.json()["pending_network"] is None
    r = client.patch(url, json={"network": "ip"}, headers=admin)
    assert r.json()["pending_network"]["network"] == "ip"
    session.rollback()
    kinds = session.scalars(
        select(StationNetwork.network)
        .where(StationNetwork.station_id == sid)
        .order_by(StationNetwork.effective_from)
    ).all()
    assert kinds == ["fm", "ip"]

    # The next local day (00:00 on the 17th in Vietnam is 17:00 UTC on the 16th) it is ip.
    clock.set_now(lambda: datetime(2024, 3, 16, 17, 0, tzinfo=UTC))
    r = client.get(url, headers=admin)
    assert r.json()["network"] == "ip" and r.json()["pending_network"] is None

    # Bad input: 422 naming the field; a taken name 409; admins only; unknown station 404.
    for bad, field in (
        ({"network": "dab"}, "network"),
        ({"network": None}, "network"),
        ({"name": None}, "name"),
        ({"timezone": "Asia/Tokyo"}, "timezone"),
        ({"hotline": "gọi tôi"}, "hotline"),
    ):
        r = client.patch(url, json=bad, headers=admin)
        assert r.status_code == 422 and field in r.json()["detail"], (bad, r.text)
    assert client.patch(url, json={"name": "Xuân Hòa"}, headers=admin).status_code == 409
    h = staff(client, sid)
    assert client.patch(url, json={"network": "fm"}, headers=h["approver"]).status_code == 403
    assert client.patch("/api/v1/stations/999", json={}, headers=admin).status_code == 404
    r = client.patch(url, json={"name": "Xuân Phúc mới", "hotline": None}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "Xuân Phúc mới"
    assert r.json()["hotline"] is None
    session.rollback()
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.entity == "station").order_by(AuditEvent.id)
    ).all()
    assert actions.count("station.network") == 3 and "station.update" in actions


def test_a_switch_restamps_the_broadcasts_from_the_next_day_only(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    ids = make_station(network="fm", villages=1)
    sid = ids["station_id"]
    clock.set_now(lambda: NOON_ISH)
    planned = {
        when: schedule.create_broadcast(
            session,
            station_id=sid,
            programme_code="village-weekly",
            village_id=ids["village_ids"][0],
            starts_at=datetime.fromisoformat(when),
        )
        for when in (
            "2024-03-15T18:00:00+07:00",  # yesterday
            "2024-03-16T23:59:00+07:00",  # later today
            "2024-03-17T00:00:00+07:00",  # the first minute of tomorrow
            "2024-04-20T18:00:00+07:00",  # next month
        )
    }
    session.commit()
    assert {b.network for b in planned.values()} == {"fm"}
    assert client.patch(f"/api/v1/stations/{sid}", json={"network": "ip"}, headers=admin).is_success
    session.expire_all()
    assert {when: b.network for when, b in planned.items()} == {
        "2024-03-15T18:00:00+07:00": "fm",
        "2024-03-16T23:59:00+07:00": "fm",
        "2024-03-17T00:00:00+07:00": "ip",
        "2024-04-20T18:00:00+07:00": "ip",
    }
    # A broadcast made now for a later day is made under the kind of that day.
    cchc = schedule.create_broadcast(
        session,
        station_id=sid,
        programme_code="cchc",
        starts_at=datetime(2024, 3, 16, 10, 0, tzinfo=UTC),
    )
    assert cchc.network == "fm"
    later = datetime(2024, 3, 30, 10, 0, tzinfo=UTC)
    schedule.move_broadcast(session, broadcast=cchc, starts_at=later)
    assert cchc.network == "ip"
    listed = client.get(
        "/api/v1/broadcasts", params={"year": 2024, "station_id": sid}, headers=admin
    ).json()
    assert {b["network"] for b in listed["items"]} == {"fm", "ip"}


def test_network_history_is_read_by_local_day() -> None:
    history = [(date.min, "fm"), (date(2024, 3, 17), "ip"), (date(2024, 6, 1), "fm")]
    assert network_at(history, date(2024, 3, 16)) == "fm"
    assert network_at(history, date(2024, 3, 17)) == "ip"
    assert network_at(history, date(2024, 5, 31)) == "ip"
    assert network_at(history, date(2030, 1, 1)) == "fm"
    assert network_at([], date(2024, 1, 1)) == "fm"  # no record: as before networks existed


# Double booking.

CCHC_DEFAULT = {"kind": "monthly", "week": 3, "weekday": 5, "time": "17:00"}  # 3rd Saturday
MIN15, MIN10 = 900_000, 600_000


@pytest.mark.parametrize(
    ("a", "a_ms", "b", "b_ms", "overlap"),
    [
        # A weekly Saturday slot meets the third Saturday every month.
        ({"kind": "weekly", "weekdays": [5], "time": "17:10"}, MIN10, CCHC_DEFAULT, MIN15, True),
        # Touching ends are allowed: 17:00 + 15 min ends as 17:15 begins.
        ({"kind": "weekly", "weekdays": [5], "time": "17:15"}, MIN10, CCHC_DEFAULT, MIN15, False),
        # Started before and still running at 17:00.
        ({"kind": "weekly", "weekdays": [5], "time": "16:55"}, MIN10, CCHC_DEFAULT, MIN15, True),
        ({"kind": "weekly", "weekdays": [6], "time": "17:00"}, MIN10, CCHC_DEFAULT, MIN15, False),
        # Across midnight, and across the end of the week (Sunday night into Monday).
        (
            {"kind": "weekly", "weekdays": [4], "time": "23:55"},
            MIN10,
            {"kind": "monthly", "week": -1, "weekday": 5, "time": "00:00"},
            MIN15,
            True,
        ),
        (
            {"kind": "weekly", "weekdays": [6], "time": "23:58"},
            MIN10,
            {"kind": "weekly", "weekdays": [0], "time": "00:05"},
            MIN10,
            True,
        ),
        # A day of the month falls on every weekday over the years.
        (
            {"kind": "weekly", "weekdays": [2], "time": "17:05"},
            MIN10,
            {"kind": "monthly", "day": 15, "time": "17:00"},
            MIN15,
            True,
        ),
        # Monthly against monthly: the third Saturday is never the first, nor day 1.
        (
            {"kind": "monthly", "week": 1, "weekday": 5, "time": "17:00"},
            MIN10,
            CCHC_DEFAULT,
            MIN15,
            False,
        ),
        ({"kind": "monthly", "day": 1, "time": "17:00"}, MIN10, CCHC_DEFAULT, MIN15, False),
        ({"kind": "monthly", "day": 17, "time": "17:05"}, MIN10, CCHC_DEFAULT, MIN15, True),
        # Week 5 falls back to the last, which is sometimes the 4th.
        (
            {"kind": "monthly", "week": 5, "weekday": 5, "time": "17:00"},
            MIN10,
            {"kind": "monthly", "week": 4, "weekday": 5, "time": "17:05"},
            MIN15,
            True,
        ),
    ],
)
def test_cadences_overlap(
    a: dict[str, Any], a_ms: int, b: dict[str, Any], b_ms: int, overlap: bool
) -> None:
    assert cadences_overlap(a, a_ms, b, b_ms) is overlap
    assert cadences_overlap(b, b_ms, a, a_ms) is overlap


def test_planning_refuses_a_village_slot_on_the_commune_s_time_in_an_ip_station(
    client: TestClient,
) -> None:
    ip = make_station("Xuân Phúc", villages=2, network="ip")
    fm = make_station("Xuân Hòa", villages=1, network="fm")
    h = staff(client, ip["station_id"])
    admin = h["admin"]
    saturday = {"cadence": {"kind": "weekly", "weekdays": [5], "time": "17:05"}}

    def set_cadence(ids: dict[str, Any], body: dict[str, Any]) -> Any:
        sid, vid = ids["station_id"], ids["village_ids"][0]
        return client.put(
            f"/api/v1/stations/{sid}/villages/{vid}/cadence", json=body, headers=admin
        )

    r = set_cadence(ip, saturday)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    # Names the field and both sides: the village's slot and the commune's programme.
    assert detail.startswith("cadence: village 'Thôn 1'")
    assert "village-weekly slot (every Saturday 17:05, up to 10 min)" in detail
    assert "the commune's cchc programme (monthly, week 3 Saturday 17:00, up to 15 min)" in detail
    # After the commune's programme: fine. In an fm station the villages never carry it.
    assert set_cadence(ip, {"cadence": {**saturday["cadence"], "time": "17:15"}}).is_success
    assert set_cadence(fm, saturday).is_success
    r = client.post(
        f"/api/v1/stations/{ip['station_id']}/villages",
        json={"name": "Thôn Mới", "cadence": saturday["cadence"]},
        headers=admin,
    )
    assert r.status_code == 422 and "'Thôn Mới'" in r.json()["detail"]

    # Moving the commune's programme onto the villages' default slot (Sunday 18:00, 10 min)
    # would double-book every village that follows the default: refused, naming each.
    programme = f"/api/v1/stations/{ip['station_id']}/programmes"
    sunday = {"cadence": {"kind": "monthly", "week": 1, "weekday": 6, "time": "18:05"}}
    r = client.patch(f"{programme}/cchc", json=sunday, headers=h["approver"])
    assert r.status_code == 422
    assert r.json()["detail"].startswith("cadence: ") and "'Thôn 2'" in r.json()["detail"]
    assert "'Thôn 1'" not in r.json()["detail"]  # Thôn 1 has its own Saturday slot now
    later = {"cadence": {**sunday["cadence"], "time": "18:30"}}
    assert client.patch(f"{programme}/cchc", json=later, headers=h["approver"]).is_success
    # Lengthening the village programme to run into it: refused too, naming that field.
    r = client.patch(
        f"{programme}/village-weekly", json={"max_duration_ms": 2_400_000}, headers=h["approver"]
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("max_duration_ms: ")
    assert "up to 40 min" in r.json()["detail"]
    rules = client.get(programme, headers=h["viewer"]).json()
    assert {p["code"]: p["max_duration_ms"] for p in rules}["village-weekly"] == MIN10


def test_a_switch_leaves_the_plan_s_broadcasts_to_the_plan(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    # Restamping is not staff changing a broadcast: the plan may still re-plan it
    # (plan_version follows version), and planning again stamps each day's kind.
    from app.schedule.models import Broadcast
    from app.schedule.planning import plan_year

    ids = make_station(network="fm", villages=1)
    sid = ids["station_id"]
    clock.set_now(lambda: NOON_ISH)
    plan_year(session, station_id=sid, year=2024)
    session.commit()
    assert client.patch(f"/api/v1/stations/{sid}", json={"network": "ip"}, headers=admin).is_success
    session.expire_all()
    rows = session.scalars(select(Broadcast).where(Broadcast.station_id == sid)).all()
    switch = datetime(2024, 3, 16, 17, 0, tzinfo=UTC)  # 00:00 on the 17th in Vietnam
    assert rows
    assert all(b.network == ("ip" if b.starts_at >= switch else "fm") for b in rows)
    assert all(b.plan_key is None or b.plan_version == b.version for b in rows)
    again = plan_year(session, station_id=sid, year=2025)
    session.commit()
    assert again.created > 0
    later = session.scalars(
        select(Broadcast.network).where(
            Broadcast.station_id == sid, Broadcast.local_month >= "2025-01"
        )
    ).all()
    assert set(later) == {"ip"}
    same = plan_year(session, station_id=sid, year=2024)
    assert (same.created, same.cancelled, same.moved) == (0, 0, 0)
