"""Compliance rules as plain service functions, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.db import unit_of_work
from app.devices import service as devices
from app.errors import Invalid, NotFound
from app.playout.models import AsRunEvent
from app.reports import period as report_period
from app.reports import service
from app.reports.period import Period
from app.schedule.models import Broadcast
from app.segments.models import Topic
from tests.helpers import make_station, make_user, user
from tests.reports.conftest import (
    EXPECTED_MONTHS,
    EXPECTED_SUMMARY,
    EXPECTED_TOPICS,
    EXPECTED_VILLAGES,
    MIN,
    NOW,
    Builder,
    local,
)


def test_year_figures(session: Session, year: dict[str, Any]) -> None:
    report = service.compliance_report(session, station_id=year["station_id"], period=Period(2024))
    assert [m.month for m in report.months] == [f"2024-{m:02d}" for m in range(1, 13)]
    for row in report.months:
        expected = EXPECTED_MONTHS[row.month]
        got = {k: getattr(row, k) for k in expected}
        assert got == expected, row.month
        assert row.programme == "cchc"
        assert row.window_ms == (600_000, 900_000)
        assert row.expected == 1 and row.closed and row.in_scope and row.pending == 0
        assert row.planned == row.aired + row.interrupted + row.missed + row.pending
    july = report.months[6]
    assert [b.id for b in july.broadcasts] == [year["broadcasts"]["jul"]]
    assert july.broadcasts[0].aired_ms == 15 * MIN
    assert july.broadcasts[0].aired_at is not None
    assert july.broadcasts[0].aired_at.utcoffset() == timedelta(hours=7)
    # The cancelled November broadcast is not counted, though it was played.
    assert [b.id for b in report.months[10].broadcasts] == [year["broadcasts"]["nov"]]

    villages = {v.village: v for v in report.villages}
    assert list(villages) == ["Thôn 1", "Thôn 2", "Thôn 3"]
    for name, expected in EXPECTED_VILLAGES.items():
        got = {k: getattr(villages[name], k) for k in expected}
        assert got == expected, name
        assert villages[name].programme == "village-weekly"
    march = villages["Thôn 1"].months[2]
    assert (march.month, march.planned, march.aired, march.interrupted, march.missed) == (
        "2024-03", 4, 2, 1, 1,
    )  # fmt: skip
    assert sum(m.planned for m in villages["Thôn 1"].months) == 4
    may = villages["Thôn 2"].months[4]
    assert (may.planned, may.aired, may.missed) == (3, 2, 1)

    assert list(report.topics)[: len(Topic)] == [t.value for t in Topic]
    for code, topic in report.topics.items():
        assert (topic.segments, topic.airings) == EXPECTED_TOPICS.get(code, (0, 0)), code
    assert report.topics["indices"].label == "Chỉ số PAR INDEX, PAPI, SIPAS, PCI"

    summary = report.summary.model_dump()
    assert {k: summary[k] for k in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert summary["programme"] == "cchc"
    assert summary["programme_name"] == "Chuyên mục Cải cách hành chính"
    assert report.station.name == "Xuân Phúc"
    assert report.generated_at == NOW and report.generated_at.utcoffset() == timedelta(hours=7)


def test_one_month(session: Session, year: dict[str, Any]) -> None:
    report = service.compliance_report(
        session, station_id=year["station_id"], period=Period(2024, 3)
    )
    assert report.month == "2024-03"
    assert len(report.months) == 1
    assert report.months[0].model_dump(include={"month", "planned", "aired", "aired_ms"}) == {
        "month": "2024-03", "planned": 1, "aired": 1, "aired_ms": 10 * MIN,
    }  # fmt: skip
    thon1 = report.villages[0]
    assert (thon1.planned, thon1.aired, thon1.coverage_pct) == (4, 2, 50.0)
    assert [len(v.months) for v in report.villages] == [1, 1, 1]
    counts = {k: (t.segments, t.airings) for k, t in report.topics.items() if t.airings}
    assert counts == {"indices": (1, 1), "procedures": (1, 1), "one-stop-desk": (1, 2)}
    assert report.summary.months_in_scope == 1
    assert report.summary.months_compliant == 1
    assert report.summary.village_coverage_pct == 50.0


def test_a_month_still_running_is_not_failed(session: Session, database_url: str) -> None:
    ids = make_station("Xuân Thọ", villages=1)
    with unit_of_work() as s:
        b = Builder(s, ids["station_id"])
        pc, _ = devices.create_device(s, name="PC", station_id=ids["station_id"])
        mar = b.broadcast(local("2024-03-16"))
        b.event(pc.id, mar, "played", 12 * MIN)
        b.broadcast(local("2024-04-20"))
    # 5 April: January and February are over with nothing aired; April's slot is to come.
    now = datetime(2024, 4, 5, 3, 0, tzinfo=UTC)
    report = service.compliance_report(
        session, station_id=ids["station_id"], period=Period(2024), now=now
    )
    rows = {m.month: m for m in report.months}
    assert [rows[m].result for m in ("2024-01", "2024-02", "2024-03", "2024-04")] == [
        "not-aired", "not-aired", "compliant", "pending",
    ]  # fmt: skip
    assert (rows["2024-04"].pending, rows["2024-04"].closed, rows["2024-04"].in_scope) == (
        1, False, False,
    )  # fmt: skip
    assert not rows["2024-12"].in_scope
    assert report.summary.months_in_scope == 3
    assert report.summary.months_compliant == 1
    assert report.summary.compliance_pct == 33.3
    assert report.summary.pending == 1
    # An hour after its slot (the grace) a planned broadcast with nothing played is missed.
    later = local("2024-04-20", "18:01")
    report = service.compliance_report(
        session, station_id=ids["station_id"], period=Period(2024, 4), now=later
    )
    assert (report.months[0].missed, report.months[0].result) == (1, "not-aired")
    assert report.months[0].in_scope is False  # April is not over yet


def test_duplicate_upload_is_refused_and_a_second_report_counts_once(
    session: Session, year: dict[str, Any]
) -> None:
    jul = year["broadcasts"]["jul"]
    started = local("2024-07-20")
    with pytest.raises(IntegrityError), unit_of_work() as s:
        s.add(
            AsRunEvent(
                event_id="jul-played",
                device_id=year["station_pc"],
                broadcast_id=jul,
                sha256=year["master_sha"],
                started_at=started,
                ended_at=started + timedelta(minutes=15),
                status="played",
            )
        )
        s.flush()
    with unit_of_work() as s:
        # Another PC report of the same airing, under a new event id.
        s.add(
            AsRunEvent(
                event_id="jul-played-again",
                device_id=year["station_pc"],
                broadcast_id=jul,
                sha256=year["master_sha"],
                started_at=started,
                ended_at=started + timedelta(minutes=15),
                status="played",
            )
        )
    report = service.compliance_report(
        session, station_id=year["station_id"], period=Period(2024, 7)
    )
    assert report.months[0].model_dump(include={"aired", "aired_ms", "compliant"}) == {
        "aired": 1, "aired_ms": 15 * MIN, "compliant": True,
    }  # fmt: skip


def test_two_airings_in_a_month_are_not_compliant(session: Session, year: dict[str, Any]) -> None:
    with unit_of_work() as s:
        b = Builder(s, year["station_id"])
        sep = b.broadcast(local("2024-09-07"))
        b.event(year["station_pc"], sep, "played", 12 * MIN)
    report = service.compliance_report(
        session, station_id=year["station_id"], period=Period(2024, 9)
    )
    assert (report.months[0].aired, report.months[0].result) == (1, "compliant")
    session.rollback()  # end the read transaction: see what is written next
    with unit_of_work() as s:
        # The period index allows one CCHC broadcast a month; a second only by a repair
        # of the data (a row written by hand with another period key).
        programme = Builder(s, year["station_id"]).programmes["cchc"]
        extra = Broadcast(
            station_id=year["station_id"],
            programme_id=programme.id,
            starts_at=local("2024-09-28"),
            period_key="2024-09-repair",
            local_month="2024-09",
            status="aired",
        )
        s.add(extra)
        s.flush()
        Builder(s, year["station_id"]).event(year["station_pc"], extra, "played", 11 * MIN)
    report = service.compliance_report(
        session, station_id=year["station_id"], period=Period(2024, 9)
    )
    row = report.months[0]
    assert (row.planned, row.aired, row.aired_ms) == (2, 2, 23 * MIN)
    assert (row.compliant, row.result) == (False, "aired-too-often")


def test_staff_of_another_station_get_404(session: Session, year: dict[str, Any]) -> None:
    stranger = user(session, make_user("other", Role.viewer, year["other_station_id"]))
    with pytest.raises(NotFound):
        service.compliance_report(
            session, station_id=year["station_id"], period=Period(2024), user=stranger
        )
    with pytest.raises(NotFound):
        service.compliance_report(session, station_id=999_999, period=Period(2024))


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        ("2024", None, Period(2024)),
        ("2024", "3", Period(2024, 3)),
        ("2024", "03", Period(2024, 3)),
        (None, "2024-03", Period(2024, 3)),
        ("2024", "2024-12", Period(2024, 12)),
        (" 2024 ", "", Period(2024)),
    ],
)
def test_period(year: str | None, month: str | None, expected: Period) -> None:
    assert report_period.parse_period(year=year, month=month) == expected


@pytest.mark.parametrize(
    ("year", "month", "names"),
    [
        (None, None, "year"),
        ("abc", None, "year"),
        ("1999", None, "year"),
        ("2024", "13", "month"),
        ("2024", "0", "month"),
        ("2024", "march", "month"),
        ("2024", "2023-03", "month"),
        (None, "3", "year"),
    ],
)
def test_bad_period(year: str | None, month: str | None, names: str) -> None:
    with pytest.raises(Invalid) as exc:
        report_period.parse_period(year=year, month=month)
    assert exc.value.message.startswith(f"{names}:")


def test_format() -> None:
    assert report_period.parse_format(None) == "json"
    assert report_period.parse_format("PDF") == "pdf"
    with pytest.raises(Invalid, match=r"^format: must be one of json, csv, xlsx, pdf"):
        report_period.parse_format("docx")
