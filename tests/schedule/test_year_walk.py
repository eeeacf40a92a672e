"""A year walked day by day with a controlled clock, through the scheduler's own job runs.

A commune with two villages and no material at all, nobody reporting as-runs (but once,
late). Staff cancel May's column and make another by hand. At the end: no month without its
CCHC broadcast; each warning group raised once, resolved when its cause went away; the
grouped counts exact; the webhook told once per change of a group, never per broadcast.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.db import unit_of_work
from app.devices.service import create_device
from app.schedule import runner
from app.schedule.models import Broadcast, ScheduleWarning
from app.stations.models import Programme
from tests.helpers import make_station, staff

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MASTER = "ab" * 32


def _step(at: datetime) -> None:
    clock.set_now(lambda: at)
    for run in (runner.run_plan, runner.run_mark_missed, runner.run_fill, runner.run_check_cchc):
        run()


def _sundays(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    days = [first + timedelta(days=i) for i in range(31)]
    return [d for d in days if d.month == month and d.weekday() == 6]


def _third_saturday(year: int, month: int) -> date:
    saturdays = [d for d in (date(year, month, 1) + timedelta(days=i) for i in range(31))]
    return [d for d in saturdays if d.month == month and d.weekday() == 5][2]


def test_a_year_keeps_itself(client: TestClient, session: Session, webhook: list[dict]) -> None:
    ids = make_station(villages=2)
    sid, (thon1, _thon2) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)["approver"]
    with unit_of_work() as s:
        _, token = create_device(s, name="PC Thôn 1", station_id=sid, village_id=thon1)
    device = {"Authorization": f"Bearer {token}"}
    day = date(2024, 1, 1)
    late_report = None
    while day <= date(2024, 12, 31):
        at = datetime(day.year, day.month, day.day, 20, 0, tzinfo=VN).astimezone(UTC)
        with clock.frozen(at):
            if day == date(2024, 4, 2):  # staff cancel May's column...
                may = session.scalars(
                    select(Broadcast).where(
                        Broadcast.local_month == "2024-05", Broadcast.village_id.is_(None)
                    )
                ).one()
                assert client.delete(f"/api/v1/broadcasts/{may.id}", headers=h).is_success
            if day == date(2024, 4, 10):  # ...and make another by hand
                made = client.post(
                    "/api/v1/broadcasts",
                    json={
                        "programme": "cchc",
                        "station_id": sid,
                        "starts_at": "2024-05-25T17:00:00+07:00",
                    },
                    headers=h,
                )
                assert made.status_code == 201, made.text
            if day == date(2024, 6, 20):  # Thôn 1's PC reports 16 June, four days late
                r = client.post(
                    "/api/v1/playout/as-run",
                    json=[
                        {
                            "event_id": "late-1",
                            "broadcast_id": late_report,
                            "sha256": MASTER,
                            "started_at": "2024-06-16T18:00:00+07:00",
                            "ended_at": "2024-06-16T18:01:00+07:00",
                            "status": "played",
                        }
                    ],
                    headers=device,
                )
                assert r.json()["accepted"] == ["late-1"], r.text
        _step(at)
        session.rollback()
        if day == date(2024, 1, 1):
            # 16 June in Thôn 1 gets its master ahead (as if assembled by hand).
            with unit_of_work() as s:
                june16 = s.scalars(
                    select(Broadcast).where(
                        Broadcast.village_id == thon1,
                        Broadcast.period_key == f"v{thon1}:2024-06-16T18:00",
                    )
                ).one()
                june16.status, june16.master_sha256 = "assembled", MASTER
                june16.master_duration_ms = 60_000
                late_report = june16.id
        clock.reset()
        day += timedelta(days=1)

    session.rollback()
    cchc = session.scalar(select(Programme.id).where(Programme.code == "cchc"))
    live = session.scalars(
        select(Broadcast).where(Broadcast.programme_id == cchc, Broadcast.status != "cancelled")
    ).all()
    months = Counter(b.local_month for b in live if b.local_month.startswith("2024"))
    assert months == {f"2024-{m:02d}": 1 for m in range(1, 13)}  # no month without its column

    groups = {(w.kind, w.month): w for w in session.scalars(select(ScheduleWarning))}
    expected = {}
    for m in range(1, 13):
        month = f"2024-{m:02d}"
        expected[month] = 1 + 2 * len(_sundays(2024, m)) - (1 if m == 6 else 0)
        for kind in ("missed", "underfilled"):
            assert groups[(kind, month)].item_count == expected[month], (kind, month)
        window = groups[("cchc-outside-window", month)]
        assert (window.item_count, window.stage) == (1, "T-1")
    march = groups[("missed", "2024-03")]
    assert march.message == (
        "Tháng 3/2024: 11 buổi phát chưa báo đã phát, Đài xã (1), Thôn 1 (5), Thôn 2 (5)"
    )
    may = groups[("cchc-missing", "2024-05")]
    assert may.resolved_at is not None and may.resolved_at.date() == date(2024, 4, 10)
    kinds = Counter(kind for kind, _ in groups)
    assert kinds == {"missed": 12, "underfilled": 12, "cchc-outside-window": 12, "cchc-missing": 1}

    told = [(w["kind"], w["month"], w["change"]) for body in webhook for w in body["warnings"]]
    assert all(len(body["warnings"]) == 1 for body in webhook)
    raised = Counter((k, m) for k, m, c in told if c == "raised")
    assert set(raised.values()) == {1} and set(raised) == set(groups)
    assert [(k, m) for k, m, c in told if c == "resolved"] == [("cchc-missing", "2024-05")]
    assert [(k, m) for k, m, c in told if c == "shrank"] == [("missed", "2024-06")]
    assert not [t for t in told if t[2] == "reopened"]
    # One message per day a month's missed group grew: a Sunday's two villages are one.
    for m in range(1, 13):
        days = {*_sundays(2024, m), _third_saturday(2024, m) if m != 5 else date(2024, 5, 25)}
        grew = [c for k, mm, c in told if (k, mm) == ("missed", f"2024-{m:02d}") and c != "shrank"]
        assert len(grew) == len(days), m
