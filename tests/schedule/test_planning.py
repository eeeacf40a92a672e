"""Planning a year from the cadences: counts, local months, idempotence, re-planning."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import unit_of_work
from app.schedule.models import Broadcast, RundownItem
from app.schedule.planning import plan_stations_parallel, plan_year
from app.stations.models import Programme, Village
from tests.helpers import make_station, staff

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _broadcasts(session: Session, **where: object) -> list[Broadcast]:
    session.rollback()
    stmt = select(Broadcast).order_by(Broadcast.starts_at)
    for column, value in where.items():
        stmt = stmt.where(getattr(Broadcast, column) == value)
    return list(session.scalars(stmt))


def _plan(station_id: int, year: int, now: datetime | None = None):  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        return plan_year(session, station_id=station_id, year=year, now=now)


def test_a_year_has_twelve_cchc_broadcasts_on_the_third_saturday(
    database_url: str, session: Session
) -> None:
    ids = make_station(villages=2)
    first = _plan(ids["station_id"], 2024)
    # 12 CCHC + 2 villages x 52 Sundays (2024 has 52 Sundays).
    assert (first.created, first.existing) == (12 + 2 * 52, 0)
    cchc = _broadcasts(session, village_id=None)
    assert [b.local_month for b in cchc] == [f"2024-{m:02d}" for m in range(1, 13)]
    local = [b.starts_at.astimezone(VN) for b in cchc]
    assert all(d.weekday() == 5 and 15 <= d.day <= 21 and d.hour == 17 for d in local)
    assert local[2].date().isoformat() == "2024-03-16"
    assert cchc[2].starts_at == datetime(2024, 3, 16, 10, 0, tzinfo=UTC)
    again = _plan(ids["station_id"], 2024)
    assert (again.created, again.existing, again.cancelled) == (0, 12 + 2 * 52, 0)


def test_a_moved_broadcast_keeps_its_month(database_url: str, session: Session) -> None:
    ids = make_station(villages=0)
    _plan(ids["station_id"], 2024)
    with unit_of_work() as s:
        march = s.scalars(select(Broadcast).where(Broadcast.local_month == "2024-03")).one()
        march.starts_at = datetime(2024, 3, 29, 10, 0, tzinfo=UTC)
    assert _plan(ids["station_id"], 2024).created == 0
    assert len(_broadcasts(session, local_month="2024-03")) == 1


def test_month_ends_leap_years_and_local_midnight(database_url: str, session: Session) -> None:
    ids = make_station(villages=0)
    with unit_of_work() as s:
        s.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(cadence={"kind": "monthly", "day": 31, "time": "23:45"})
        )
    _plan(ids["station_id"], 2024)
    _plan(ids["station_id"], 2025)
    by_month = {b.local_month: b.starts_at.astimezone(VN) for b in _broadcasts(session)}
    assert by_month["2024-02"].day == 29 and by_month["2025-02"].day == 28
    assert by_month["2024-04"].day == 30
    # 23:45 on 31 December local is 16:45 UTC the same day: still 2024.
    assert by_month["2024-12"].isoformat() == "2024-12-31T23:45:00+07:00"
    with unit_of_work() as s:
        s.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(cadence={"kind": "monthly", "day": 1, "time": "00:30"})
        )
    _plan(ids["station_id"], 2026)
    jan = _broadcasts(session, local_month="2026-01")[0]
    # 00:30 on 1 January 2026 local is 17:30 UTC on 31 December 2025.
    assert jan.starts_at == datetime(2025, 12, 31, 17, 30, tzinfo=UTC)


def test_replanning_a_changed_village_cadence_keeps_broadcasts_with_a_rundown(
    database_url: str, session: Session
) -> None:
    ids = make_station(villages=1)
    vid = ids["village_ids"][0]
    now = datetime(2024, 6, 1, tzinfo=UTC)
    _plan(ids["station_id"], 2024, now)
    sundays = _broadcasts(session, village_id=vid)
    keep = next(b for b in sundays if b.starts_at > now)
    with unit_of_work() as s:
        # A rundown pins the broadcast (a segment row is needed for the foreign key).
        from tests.schedule.test_filling import make_segment_row

        seg_id = make_segment_row(s, ids["station_id"], "village-weekly")
        s.add(RundownItem(broadcast_id=keep.id, position=0, segment_id=seg_id))
        s.execute(
            update(Village)
            .where(Village.id == vid)
            .values(cadence={"kind": "weekly", "weekdays": [2], "time": "06:30"})
        )
    result = _plan(ids["station_id"], 2024, now)
    future_sundays = [b for b in sundays if b.starts_at > now]
    assert result.cancelled == len(future_sundays) - 1
    statuses = {b.id: b.status for b in _broadcasts(session, village_id=vid)}
    assert statuses[keep.id] == "planned"
    past = [b for b in sundays if b.starts_at <= now]
    assert all(statuses[b.id] == "planned" for b in past)
    wednesdays = [
        b
        for b in _broadcasts(session, village_id=vid, status="planned")
        if b.starts_at.astimezone(VN).weekday() == 2
    ]
    assert len(wednesdays) == 52


def test_plan_through_the_api_and_the_cli(
    client: TestClient, database_url: str, session: Session
) -> None:
    import os
    import subprocess
    import sys

    ids = make_station(villages=1)
    h = staff(client, ids["station_id"])
    r = client.post(f"/api/v1/stations/{ids['station_id']}/plan?year=2024", headers=h["approver"])
    assert r.status_code == 200 and r.json()["created"] == 12 + 52
    assert (
        client.post(
            f"/api/v1/stations/{ids['station_id']}/plan?year=2024", headers=h["editor"]
        ).status_code
        == 403
    )
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "plan",
            "--station",
            str(ids["station_id"]),
            "--year",
            "2025",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "64 broadcasts created" in cli.stdout  # 12 + 52 Sundays in 2025
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Broadcast)) == 2 * 64 + 0
    listed = client.get(
        "/api/v1/broadcasts?programme=cchc&year=2025&limit=100", headers=h["viewer"]
    ).json()
    assert listed["total"] == 12


def test_rules_are_data_set_through_the_api(
    client: TestClient, database_url: str, session: Session
) -> None:
    ids = make_station(villages=2)
    h = staff(client, ids["station_id"])
    sid, vid = ids["station_id"], ids["village_ids"][0]
    r = client.patch(
        f"/api/v1/stations/{sid}/programmes/cchc",
        json={"cadence": {"kind": "monthly", "week": -1, "weekday": 4, "time": "19:30"}},
        headers=h["approver"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["cadence"]["week"] == -1
    bad = client.patch(
        f"/api/v1/stations/{sid}/programmes/cchc",
        json={"cadence": {"kind": "weekly", "weekdays": [1], "time": "07:00"}},
        headers=h["approver"],
    )
    assert bad.status_code == 422 and "cannot become weekly" in bad.json()["detail"]
    window = client.patch(
        f"/api/v1/stations/{sid}/programmes/cchc",
        json={"min_duration_ms": 900_000, "max_duration_ms": 600_000},
        headers=h["approver"],
    )
    assert window.status_code == 422 and "minimum <= maximum" in window.json()["detail"]
    r = client.put(
        f"/api/v1/stations/{sid}/villages/{vid}/cadence",
        json={"cadence": {"kind": "weekly", "weekdays": [0, 3], "time": "06:00"}},
        headers=h["approver"],
    )
    assert r.status_code == 200
    wrong = client.put(
        f"/api/v1/stations/{sid}/villages/{vid}/cadence",
        json={"cadence": {"kind": "weekly", "weekdays": [7], "time": "25:00"}},
        headers=h["approver"],
    )
    assert wrong.status_code == 422 and "weekday" in wrong.json()["detail"]
    _plan(sid, 2024)
    cchc = _broadcasts(session, village_id=None)
    assert all(b.starts_at.astimezone(VN).weekday() == 4 for b in cchc)
    assert cchc[1].starts_at.astimezone(VN).isoformat() == "2024-02-23T19:30:00+07:00"
    # Mondays and Thursdays for village 1: 105 slots in 2024; village 2 keeps 52 Sundays.
    assert len(_broadcasts(session, village_id=vid)) == 105
    assert len(_broadcasts(session, village_id=ids["village_ids"][1])) == 52
    # A CCHC broadcast made by hand in a planned month is refused: the keys agree.
    dup = client.post(
        "/api/v1/broadcasts",
        json={"programme": "cchc", "station_id": sid, "starts_at": "2024-05-02T17:00:00+07:00"},
        headers=h["approver"],
    )
    assert dup.status_code == 409


def _plan_rows(session: Session) -> set[tuple[object, ...]]:
    session.rollback()
    columns = (
        Broadcast.station_id,
        Broadcast.programme_id,
        Broadcast.village_id,
        Broadcast.starts_at,
        Broadcast.period_key,
        Broadcast.local_month,
        Broadcast.status,
    )
    return {tuple(row) for row in session.execute(select(*columns)).all()}


def test_bulk_planning_of_many_stations_makes_what_plan_year_makes(
    database_url: str, session: Session
) -> None:
    # The country-wide path (COPY text on PostgreSQL, chunks over two connections) must
    # make exactly the broadcasts that planning each station on its own makes, including a
    # village on its own cadence, and be idempotent too.
    stations = [make_station(name=f"Xã {n}", villages=n) for n in range(4)]
    with unit_of_work() as s:
        village = s.get_one(Village, stations[2]["village_ids"][0])
        village.cadence = {"kind": "weekly", "weekdays": [0, 3], "time": "06:00"}
    ids = [st["station_id"] for st in stations]
    bulk = plan_stations_parallel(ids, year=2024, workers=2, chunk=2)
    bulk_rows = _plan_rows(session)
    # 4 x 12 CCHC + 52 Sundays for 0+1+2+3 villages, one of them on Mondays and Thursdays.
    assert (bulk.created, bulk.existing) == (48 + 52 * 5 + 105, 0)
    assert len(bulk_rows) == bulk.created
    again = plan_stations_parallel(ids, year=2024, workers=2, chunk=3)
    assert (again.created, again.existing) == (0, bulk.created)
    with unit_of_work() as s:
        s.execute(delete(Broadcast))
    for station_id in ids:
        _plan(station_id, 2024)
    assert _plan_rows(session) == bulk_rows


def test_a_broadcast_cannot_take_another_stations_programme_or_village(
    database_url: str,
) -> None:
    # Enforced by the database (composite keys with station_id), not only by the services.
    ours, theirs = make_station(name="Xã A", villages=1), make_station(name="Xã B", villages=1)
    with unit_of_work(write=False) as s:
        programmes = {(p.station_id, p.code): p.id for p in s.scalars(select(Programme))}
    at = datetime(2024, 3, 16, 10, 0, tzinfo=UTC)

    def insert(programme_id: int, village_id: int | None, key: str) -> None:
        with unit_of_work() as s:
            s.add(
                Broadcast(
                    station_id=ours["station_id"],
                    programme_id=programme_id,
                    village_id=village_id,
                    starts_at=at,
                    period_key=key,
                    local_month="2024-03",
                )
            )

    their_cchc = programmes[(theirs["station_id"], "cchc")]
    with pytest.raises(IntegrityError):
        insert(their_cchc, None, "2024-03")
    our_village_programme = programmes[(ours["station_id"], "village-weekly")]
    with pytest.raises(IntegrityError):
        insert(our_village_programme, theirs["village_ids"][0], "v:x")
    insert(our_village_programme, ours["village_ids"][0], "v:y")  # the station's own: fine


@pytest.mark.parametrize("bulk", [False, True])
def test_each_planned_broadcast_records_the_network_kind_of_its_local_day(
    database_url: str, session: Session, bulk: bool
) -> None:
    from app import clock
    from app.schedule import network
    from app.stations.models import Network, Station

    ids = make_station(villages=1, network="fm")
    sid = ids["station_id"]
    # At 23:30 on 30 June (local), the station becomes ip: from 1 July on.
    clock.set_now(lambda: datetime(2024, 6, 30, 23, 30, tzinfo=VN))
    with unit_of_work() as s:
        network.set_network(s, station=s.get_one(Station, sid), network=Network.ip)
    if bulk:  # the country-wide path (COPY on PostgreSQL)
        plan_stations_parallel([sid], year=2024, workers=1)
    else:
        _plan(sid, 2024)
    rows = _broadcasts(session, station_id=sid)
    by_kind = {
        kind: {b.local_month for b in rows if b.network == kind} for kind in ("fm", "ip")
    }
    assert by_kind == {
        "fm": {f"2024-{m:02d}" for m in range(1, 7)},
        "ip": {f"2024-{m:02d}" for m in range(7, 13)},
    }
