"""The rolling plan: the horizon made from the cadences, idempotently, keeping what staff
changed by hand, re-planning only untouched future slots; and the horizon's bounds."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.config import Settings
from app.db import unit_of_work
from app.schedule.models import Broadcast, PlanState
from app.schedule.planning import plan_station_for
from app.schedule.rolling import roll
from tests.helpers import make_station, staff

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MARCH_10 = datetime(2024, 3, 10, 3, 0, tzinfo=UTC)  # a Sunday, 10:00 local


def _weekdays(first: date, last: date, weekday: int) -> list[date]:
    """Pure calendar, independent of the app: the dates of a weekday in [first, last]."""
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [d for d in days if d.weekday() == weekday]


def _live(session: Session, **where: object) -> list[Broadcast]:
    session.rollback()
    stmt = select(Broadcast).where(Broadcast.status != "cancelled").order_by(Broadcast.starts_at)
    for column, value in where.items():
        stmt = stmt.where(getattr(Broadcast, column) == value)
    return list(session.scalars(stmt))


def test_the_horizon_must_be_1_to_36_months(client: TestClient) -> None:
    for bad in (0, 37):
        with pytest.raises(ValidationError, match="LOAXA_PLAN_HORIZON_MONTHS"):
            Settings(plan_horizon_months=bad)
    assert Settings(plan_horizon_months=36).plan_horizon_months == 36
    ids = make_station(villages=1)
    h = staff(client, ids["station_id"])
    url = f"/api/v1/stations/{ids['station_id']}/plan"
    # Bounded in the OpenAPI document (tests/test_integer_bounds.py): the schema refuses it.
    for bad, bound in ((0, "greater than or equal to 1"), (37, "less than or equal to 36")):
        r = client.post(f"{url}?horizon_months={bad}", headers=h["approver"])
        assert r.status_code == 422
        assert r.json()["detail"] == f"horizon_months: Input should be {bound}"
    both = client.post(f"{url}?horizon_months=3&year=2024", headers=h["approver"])
    assert both.status_code == 422 and "either year" in both.json()["detail"]
    with clock.frozen(MARCH_10):
        ok = client.post(f"{url}?horizon_months=2", headers=h["approver"])
    assert ok.status_code == 200 and ok.json()["months"] == ["2024-03", "2024-04"]
    # The setting is refused when the process reads it, naming the variable.
    env = {**os.environ, "LOAXA_PLAN_HORIZON_MONTHS": "0"}
    cli = subprocess.run(
        [sys.executable, "-m", "app.cli", "plan", "--station", str(ids["station_id"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert cli.returncode != 0
    assert "LOAXA_PLAN_HORIZON_MONTHS" in cli.stderr and "got 0" in cli.stderr


def test_the_rolling_plan_makes_the_horizon_once_and_then_only_new_months(
    database_url: str, session: Session
) -> None:
    ids = make_station(villages=2)
    first = roll(now=MARCH_10, months=12)
    # March 2024 to February 2025: 12 CCHC columns (the third Saturday of March is still
    # ahead) and every Sunday from 10 March (18:00, still ahead) for each village.
    sundays = _weekdays(date(2024, 3, 10), date(2025, 2, 28), 6)
    assert (first.created, first.cancelled, first.moved) == (12 + 2 * len(sundays), 0, 0)
    months = [b.local_month for b in _live(session, village_id=None)]
    assert months == [f"2024-{m:02d}" for m in range(3, 13)] + ["2025-01", "2025-02"]
    # Nothing changed: the daily run does nothing, without looking at a broadcast.
    again = roll(now=MARCH_10 + timedelta(days=1), months=12)
    assert (again.created, again.existing, again.cancelled, again.moved) == (0, 0, 0, 0)
    session.rollback()
    state = session.get_one(PlanState, ids["station_id"])
    assert state.planned_through == "2025-02"
    # A new month enters the horizon: only March 2025 is planned.
    april = roll(now=datetime(2024, 4, 1, 3, 0, tzinfo=UTC), months=12)
    new_sundays = _weekdays(date(2025, 3, 1), date(2025, 3, 31), 6)
    assert (april.created, april.existing) == (1 + 2 * len(new_sundays), 0)
    # No slot was ever made twice, and no slot of the past was made.
    live = _live(session)
    assert len({(b.programme_id, b.period_key) for b in live}) == len(live)
    assert min(b.starts_at for b in live) > MARCH_10


def test_what_staff_changed_stays_and_a_new_cadence_replans_only_untouched_slots(
    client: TestClient, session: Session
) -> None:
    ids = make_station(villages=1)
    sid, vid = ids["station_id"], ids["village_ids"][0]
    h = staff(client, sid)["approver"]
    roll(now=MARCH_10, months=12)
    cchc = {b.local_month: b for b in _live(session, village_id=None)}
    # By hand: April's column moved within April, May's cancelled, one Sunday cancelled,
    # an extra village broadcast on a Wednesday.
    with clock.frozen(MARCH_10):
        moved = client.patch(
            f"/api/v1/broadcasts/{cchc['2024-04'].id}",
            json={"starts_at": "2024-04-25T08:00:00+07:00"},
            headers=h,
        )
        assert moved.status_code == 200, moved.text
        assert client.delete(f"/api/v1/broadcasts/{cchc['2024-05'].id}", headers=h).is_success
        sunday = _live(session, village_id=vid)[3]
        assert client.delete(f"/api/v1/broadcasts/{sunday.id}", headers=h).is_success
        extra = client.post(
            "/api/v1/broadcasts",
            json={
                "programme": "village-weekly",
                "station_id": sid,
                "village_id": vid,
                "starts_at": "2024-06-05T07:00:00+07:00",
            },
            headers=h,
        )
        assert extra.status_code == 201, extra.text
        # `loaxa plan --months` (the same code, without the fingerprint's shortcut) does
        # not make the cancelled ones again, nor a second April column.
        with unit_of_work() as s:
            _, same = plan_station_for(s, station_id=sid, horizon_months=12)
        assert (same.created, same.cancelled, same.moved) == (0, 0, 0)
        # New rules: the column on the last Friday at 19:30, the village on Wednesdays.
        r = client.patch(
            f"/api/v1/stations/{sid}/programmes/cchc",
            json={"cadence": {"kind": "monthly", "week": -1, "weekday": 4, "time": "19:30"}},
            headers=h,
        )
        assert r.status_code == 200
        r = client.put(
            f"/api/v1/stations/{sid}/villages/{vid}/cadence",
            json={"cadence": {"kind": "weekly", "weekdays": [2], "time": "06:30"}},
            headers=h,
        )
        assert r.status_code == 200
    later = MARCH_10 + timedelta(days=1)
    result = roll(now=later, months=12)
    columns = {b.local_month: b for b in _live(session, village_id=None)}
    # Moved stays where staff put it; cancelled May stays without a column (the early
    # warning tells staff); the other ten follow the new rule.
    assert columns["2024-04"].starts_at.astimezone(VN).isoformat() == "2024-04-25T08:00:00+07:00"
    assert "2024-05" not in columns
    followed = [b for m, b in columns.items() if m not in ("2024-04",)]
    local = [b.starts_at.astimezone(VN) for b in followed]
    assert all(d.weekday() == 4 and d.day > 21 and (d.hour, d.minute) == (19, 30) for d in local)
    assert result.moved == 10
    past = [b for b in _live(session, village_id=vid) if b.starts_at <= later]
    village = [b for b in _live(session, village_id=vid) if b.starts_at > later]
    # The past stays as it was (yesterday's Sunday); the Sundays still ahead are cancelled
    # (none was touched but the one staff cancelled); Wednesdays from now on are made; the
    # extra Wednesday by hand is kept.
    assert [b.starts_at.astimezone(VN).date() for b in past] == [date(2024, 3, 10)]
    assert all(b.starts_at.astimezone(VN).weekday() == 2 for b in village)
    wednesdays = _weekdays(date(2024, 3, 11), date(2025, 2, 28), 2)
    assert len(village) == len(wednesdays) + 1
    assert extra.json()["id"] in {b.id for b in village}
    assert result.cancelled == len(_weekdays(date(2024, 3, 11), date(2025, 2, 28), 6)) - 1
    session.rollback()
    assert session.get_one(Broadcast, sunday.id).status == "cancelled"
