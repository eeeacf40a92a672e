"""`loaxa seed-demo --sample-history`: a commune in use, loaded once; plain seed-demo has none."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.audio.models import AudioAsset
from app.demo import (
    HISTORY_MONTHS,
    OFFLINE_DEVICE,
    SILENT_BACK,
    SILENT_VILLAGE,
    VILLAGE_COUNT,
    months_ago,
)
from app.devices import service as devices
from app.devices.models import Device
from app.playout.models import AsRunEvent
from app.reports import service as reports
from app.schedule.models import Broadcast, ScheduleWarning
from app.segments.models import Segment
from app.stations.models import Station
from tests.cli.test_cli import loaxa

ENV = {"LOAXA_ADMIN_PASSWORD": "quản-trị-viên-2024"}


def _snapshot(session: Session) -> tuple[object, ...]:
    session.rollback()  # see what the CLI process committed
    counts = tuple(
        session.scalar(select(func.count()).select_from(m)) or 0
        for m in (Broadcast, Segment, AudioAsset, AsRunEvent, ScheduleWarning, Device)
    )
    statuses = tuple(session.execute(select(Broadcast.id, Broadcast.status, Broadcast.version)))
    return counts, statuses


def test_plain_seed_demo_has_no_history(database_url: str, session: Session) -> None:
    assert loaxa("seed-demo", env=ENV).returncode == 0
    for model in (Broadcast, Segment, AsRunEvent, ScheduleWarning, Device):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model


# Reading six scripts with espeak-ng and assembling the column takes about two minutes on
# a quiet machine: a guard against a hang, not a measure.
HISTORY_TIMEOUT_S = 900


@pytest.mark.slow
def test_sample_history_looks_lived_in_and_loads_once(database_url: str, session: Session) -> None:
    first = loaxa("seed-demo", "--sample-history", env=ENV, timeout=HISTORY_TIMEOUT_S)
    assert first.returncode == 0, first.stderr
    seeded = clock.now()
    assert "as-run history" in first.stdout
    loaded = _snapshot(session)
    again = loaxa("seed-demo", "--sample-history", env=ENV, timeout=HISTORY_TIMEOUT_S)
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert _snapshot(session) == loaded  # idempotent: nothing added, nothing changed

    station = session.scalars(select(Station)).one()
    segments = list(session.scalars(select(Segment)))
    approved = [s for s in segments if s.status == "approved"]
    assert len(approved) >= 4 and all(s.audio_id for s in segments)
    engines = set(session.scalars(select(AudioAsset.tts_engine).where(AudioAsset.origin == "tts")))
    assert engines == {"espeak"}

    now = clock.now()
    month = now.astimezone(station_tz(station)).strftime("%Y-%m")
    report = reports.compliance_report(
        session, station_id=station.id, period=reports.Period(int(month[:4])), now=now
    )
    row = {m.month: m for m in report.months}[month]
    assert any(b.state != "missed" for b in row.broadcasts)
    column = session.get_one(Broadcast, row.broadcasts[0].id)
    assert column.status == "assembled" and column.master_sha256

    # Earlier months (here or last year): most aired, one missed, one short, and one that
    # aired at the station but not on one village's loudspeakers.
    past = []
    since = months_ago(month, HISTORY_MONTHS)
    for year in {int(month[:4]) - 1, int(month[:4])}:
        r = reports.compliance_report(
            session, station_id=station.id, period=reports.Period(year), now=now
        )
        past += [m for m in r.months if since <= m.month < month and m.planned]
    results = [m.result for m in past]
    assert results.count("not-aired") == 1 and results.count("too-short") == 1
    assert results.count("villages-missing") == 1
    assert results.count("compliant") >= 8
    # Every past month has all eight clusters in service: the report's reach is real.
    assert {len(m.villages_in_service) for m in past} == {VILLAGE_COUNT}
    silent = next(m for m in past if m.result == "villages-missing")
    assert silent.month == months_ago(month, SILENT_BACK)
    assert [v.name for v in silent.villages_in_service if not v.aired] == [SILENT_VILLAGE]
    compliant = [m for m in past if m.result == "compliant"]
    assert all(all(v.aired == 1 for v in m.villages_in_service) for m in compliant)

    # The scheduler's own kind of warning, with its fields: the console tells it in words.
    stored = list(session.scalars(select(ScheduleWarning)))
    assert stored and {w.kind for w in stored} == {"missed"}
    assert all(w.month and w.items for w in stored)

    # Past columns went through the month's work: a rundown of their own month's segments
    # and the master the as-run history played, so topics and counts are real.
    year_report = reports.compliance_report(
        session, station_id=station.id, period=reports.Period(int(month[:4])), now=now
    )
    assert year_report.summary.segments_aired > 0
    assert sum(t.airings for t in year_report.topics.values()) >= year_report.summary.aired
    aired_columns = [b for m in past for b in m.broadcasts if b.state == "aired"]
    for b in aired_columns:
        column = session.get_one(Broadcast, b.id)
        assert column.master_sha256 and column.cue_sheet
    found = list(session.scalars(select(Device)))
    state = {d.name: devices.is_online(d.last_seen_at, seeded) for d in found}
    assert state.pop(OFFLINE_DEVICE) is False
    assert len(state) == VILLAGE_COUNT and all(state.values())  # the PC and 7 clusters


def station_tz(station: Station):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(station.timezone)
