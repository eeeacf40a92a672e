"""Reach per village: a year of gapped as-run logs in an ip station.

Xuân Hòa has 8 villages and an ip network: every village cluster is a device that plays
the CCHC column itself. Thôn 1 to 7 have had clusters since December 2023; Thôn 6's first
cluster was replaced (the old one is deactivated); Thôn 8's cluster was put up on
10 June 2024, so it is in service from the June column on. The station PC exists too and
played only in September (which proves nothing about the villages). Window 10-15 min.

What the clusters played, month by month (minutes; "–" nothing; the expected table is
written out by hand below, from this one):

| month | T1 | T2 | T3 | T4 | T5 | T6 | T7 | T8 | station PC |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| 01 | 12 | 12 | 12 | 12 | 12 | 12 | 12 | (none) | – |
| 02 | 12 | 12 | – | 12 | 12 | 12 | 12 | (none) | – |
| 03 | 12 | 9 | 12 | 12 | 12 | 12 | 12 | (none) | – |
| 04 | – | – | – | – | – | – | – | (none) | – (status missed) |
| 05 | 12 | 12 | 12 | 12 | cut at 4 | 12 | 12 | (none) | – |
| 06 | 13 | 13 | 13 | 13 | 13 | 13 | 13 | 13 | – |
| 07 | 13 | 13 | 13 | – | 13 | 13 | 13 | – | – |
| 08 | 11, then 12 | 12 | 12 | 12 | 12 | 12 | 12 | 12 | – |
| 09 | – | – | – | – | – | – | – | – | 12 |
| 10 | 12 | 12 | 16 | 12 | 12 | 12 | 12 | 12 | – |
| 11 | 12 | 12 | 12 | 12 | 12 | 12 | 12 | – | – |
| 12 | 14.5 | 14.5 | 14.5 | 14.5 | 14.5 | 14.5 | 14.5 | 14.5 | – |
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import Role
from app.audio import service as audio
from app.db import unit_of_work
from app.devices import service as devices
from app.reports import reach as vr
from app.reports import service
from app.reports.judging import Outcome
from app.reports.period import Period
from app.reports.schemas import VillageReach
from app.schedule.models import Broadcast
from tests.helpers import login, make_station, make_user
from tests.reports.conftest import MIN, NOW, Builder, local

T = {n: f"Thôn {n}" for n in range(1, 9)}
ALL7 = [T[n] for n in range(1, 8)]
ALL8 = [T[n] for n in range(1, 9)]
M12, M13, M145 = 12 * MIN, 13 * MIN, 14 * MIN + 30_000

# month -> (planned, aired, aired_ms, result, in service, missing, {village: (aired_ms,
# result)} for the villages whose figures are not the month's usual one, usual aired_ms)
EXPECTED: dict[str, dict[str, Any]] = {
    "2024-01": dict(aired=1, aired_ms=M12, result="compliant", in_service=ALL7, missing=[],
                    usual=M12, odd={}),
    "2024-02": dict(aired=1, aired_ms=M12, result="villages-missing", in_service=ALL7,
                    missing=[T[3]], usual=M12, odd={T[3]: (0, "not-aired")}),
    "2024-03": dict(aired=1, aired_ms=M12, result="too-short", in_service=ALL7, missing=[],
                    usual=M12, odd={T[2]: (9 * MIN, "too-short")}),
    "2024-04": dict(aired=0, aired_ms=0, result="not-aired", in_service=ALL7, missing=ALL7,
                    usual=0, odd={}),
    "2024-05": dict(aired=1, aired_ms=M12, result="villages-missing", in_service=ALL7,
                    missing=[T[5]], usual=M12, odd={T[5]: (0, "interrupted")}),
    "2024-06": dict(aired=1, aired_ms=M13, result="compliant", in_service=ALL8, missing=[],
                    usual=M13, odd={}),
    "2024-07": dict(aired=1, aired_ms=M13, result="villages-missing", in_service=ALL8,
                    missing=[T[4], T[8]], usual=M13,
                    odd={T[4]: (0, "not-aired"), T[8]: (0, "not-aired")}),
    "2024-08": dict(aired=1, aired_ms=M12, result="compliant", in_service=ALL8, missing=[],
                    usual=M12, odd={}),
    "2024-09": dict(aired=1, aired_ms=M12, result="villages-missing", in_service=ALL8,
                    missing=ALL8, usual=0, odd={}),
    "2024-10": dict(aired=1, aired_ms=16 * MIN, result="too-long", in_service=ALL8,
                    missing=[], usual=M12, odd={T[3]: (16 * MIN, "too-long")}),
    "2024-11": dict(aired=1, aired_ms=M12, result="villages-missing", in_service=ALL8,
                    missing=[T[8]], usual=M12, odd={T[8]: (0, "not-aired")}),
    "2024-12": dict(aired=1, aired_ms=M145, result="compliant", in_service=ALL8, missing=[],
                    usual=M145, odd={}),
}  # fmt: skip

# The reach line of each month, as JSON gives it.
REACH = {
    "2024-01": "aired in 7 of 7 villages",
    "2024-02": "aired in 6 of 7 villages; not in Thôn 3",
    "2024-03": "aired in 7 of 7 villages",
    "2024-04": "aired in 0 of 7 villages; not in " + ", ".join(ALL7),
    "2024-05": "aired in 6 of 7 villages; not in Thôn 5",
    "2024-06": "aired in 8 of 8 villages",
    "2024-07": "aired in 6 of 8 villages; not in Thôn 4, Thôn 8",
    "2024-08": "aired in 8 of 8 villages",
    "2024-09": "aired in 0 of 8 villages; not in " + ", ".join(ALL8),
    "2024-10": "aired in 8 of 8 villages",
    "2024-11": "aired in 7 of 8 villages; not in Thôn 8",
    "2024-12": "aired in 8 of 8 villages",
}

# What each cluster played: month -> {village number: [(status, ms), ...]}.
PLAYED: dict[str, dict[int, list[tuple[str, int]]]] = {
    "2024-01": {n: [("played", M12)] for n in range(1, 8)},
    "2024-02": {n: [("played", M12)] for n in (1, 2, 4, 5, 6, 7)},
    "2024-03": {**{n: [("played", M12)] for n in range(1, 8)}, 2: [("played", 9 * MIN)]},
    "2024-04": {},
    "2024-05": {**{n: [("played", M12)] for n in range(1, 8)}, 5: [("interrupted", 4 * MIN)]},
    "2024-06": {n: [("played", M13)] for n in range(1, 9)},
    "2024-07": {n: [("played", M13)] for n in (1, 2, 3, 5, 6, 7)},
    "2024-08": {**{n: [("played", M12)] for n in range(2, 9)},
                1: [("played", 11 * MIN), ("played", M12)]},
    "2024-09": {},
    "2024-10": {**{n: [("played", M12)] for n in range(1, 9)}, 3: [("played", 16 * MIN)]},
    "2024-11": {n: [("played", M12)] for n in range(1, 8)},
    "2024-12": {n: [("played", M145)] for n in range(1, 9)},
}  # fmt: skip
DAYS = {
    "2024-01": "2024-01-20", "2024-02": "2024-02-17", "2024-03": "2024-03-16",
    "2024-04": "2024-04-20", "2024-05": "2024-05-18", "2024-06": "2024-06-15",
    "2024-07": "2024-07-20", "2024-08": "2024-08-17", "2024-09": "2024-09-21",
    "2024-10": "2024-10-19", "2024-11": "2024-11-16", "2024-12": "2024-12-21",
}  # fmt: skip


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reach") / "master.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         "sine=f=440:r=44100:d=1", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
        check=True,
    )  # fmt: skip
    return path


def build_ip_year(master_sha: str) -> dict[str, Any]:
    """Write the year of the module docstring; the ids the tests need."""
    ids = make_station("Xuân Hòa", villages=8, network="ip")
    sid, villages = ids["station_id"], ids["village_ids"]
    long_ago = datetime(2023, 12, 1, tzinfo=UTC)
    with unit_of_work() as s:
        station_pc, _ = devices.create_device(s, name="PC đài", station_id=sid)
        clusters: dict[int, int] = {}
        for n, vid in enumerate(villages, start=1):
            dev, _ = devices.create_device(s, name=f"Cụm loa thôn {n}", station_id=sid,
                                           village_id=vid)  # fmt: skip
            dev.created_at = datetime(2024, 6, 10, 2, 0, tzinfo=UTC) if n == 8 else long_ago
            clusters[n] = dev.id
        # Thôn 6's first cluster, replaced: deactivated, so it does not make it in service.
        old, _ = devices.create_device(s, name="Cụm loa thôn 6 (cũ)", station_id=sid,
                                       village_id=villages[5])  # fmt: skip
        old.created_at, old.is_active = datetime(2020, 1, 1, tzinfo=UTC), False
        s.flush()
        b = Builder(s, sid)
        broadcasts = {}
        for month, day in DAYS.items():
            played = PLAYED[month]
            aired = any(st == "played" for evs in played.values() for st, _ in evs)
            cast = b.broadcast(
                local(day),
                status="aired" if aired or month == "2024-09" else "missed",
                master=master_sha,
                duration_ms=20 * MIN,
            )
            assert cast.network == "ip"  # published under the station's kind
            broadcasts[month] = cast.id
            for n, events in played.items():
                for i, (status, ms) in enumerate(events):
                    b.event(clusters[n], cast, status, ms, offset_min=30 * i)
            if month == "2024-09":
                b.event(station_pc.id, cast, "played", M12)
        s.flush()
    return {"station_id": sid, "village_ids": villages, "broadcasts": broadcasts}


@pytest.fixture
def ip_year(database_url: str, master: Path) -> dict[str, Any]:
    clock.set_now(lambda: NOW)
    return build_ip_year(audio.store().put(master))


def test_reach_per_village_in_an_ip_year(session: Session, ip_year: dict[str, Any]) -> None:
    report = service.compliance_report(
        session, station_id=ip_year["station_id"], period=Period(2024)
    )
    for row in report.months:
        want = EXPECTED[row.month]
        got = {
            "aired": row.aired,
            "aired_ms": row.aired_ms,
            "result": row.result,
            "in_service": [v.name for v in row.villages_in_service],
            "missing": [v.name for v in row.villages_missing],
        }
        assert got == {k: want[k] for k in got}, row.month
        assert (row.planned, row.expected, row.network) == (1, 1, "ip"), row.month
        assert row.compliant == (want["result"] == "compliant"), row.month
        assert row.reach == REACH[row.month], row.month
        aired_names = [v.name for v in row.villages_aired]
        assert aired_names == [n for n in want["in_service"] if n not in want["missing"]]
        for v in row.villages_in_service:
            usual = (want["usual"], "compliant" if want["usual"] else "not-aired")
            assert (v.aired_ms, v.result) == want["odd"].get(v.name, usual), (row.month, v.name)
            assert v.id == ip_year["village_ids"][int(v.name.split()[1]) - 1]
    august_t1 = report.months[7].villages_in_service[0]
    assert (august_t1.name, august_t1.aired, august_t1.aired_ms) == ("Thôn 1", 1, M12)
    summary = report.summary
    assert (summary.months_in_scope, summary.months_compliant, summary.compliance_pct) == (
        12, 4, 33.3,
    )  # fmt: skip


def test_reach_in_csv_xlsx_and_pdf(
    client: TestClient, ip_year: dict[str, Any], tmp_path: Path
) -> None:
    from app.reports.formats import read_csv_tables
    from tests.reports.test_compliance_api import pdf_text

    sid = ip_year["station_id"]
    make_user("viewer-reach", Role.viewer, sid)
    h = login(client, "viewer-reach")
    url = "/api/v1/reports/compliance"
    r = client.get(url, params={"station_id": sid, "year": 2024, "format": "csv"}, headers=h)
    months, _villages, reach, _topics, _summary = read_csv_tables(r.content)
    nov = next(row for row in months if row[0] == "2024-11")
    assert nov[14:] == ["ip", "8", "7", "phát tại 7/8 thôn", "Thôn 8"]
    assert reach[0] == [
        "Tháng", "Thôn", "Mã thôn", "Số buổi đã phát", "Thời lượng đã phát (ms)",
        "Thời lượng đã phát (phút)", "Kết quả",
    ]  # fmt: skip
    assert len(reach) == 1 + 7 * 5 + 8 * 7
    july_t4 = next(row for row in reach if row[0] == "2024-07" and row[1] == "Thôn 4")
    assert july_t4[3:] == ["0", "0", "0.0", "Không phát"]
    march_t2 = next(row for row in reach if row[0] == "2024-03" and row[1] == "Thôn 2")
    assert march_t2[3:] == ["1", str(9 * MIN), "9.0", "Thiếu thời lượng"]

    r = client.get(url, params={"station_id": sid, "year": 2024, "format": "pdf"}, headers=h)
    path = tmp_path / "reach.pdf"
    path.write_bytes(r.content)
    flat = " ".join(pdf_text(path).split())
    assert "phát tại 7/8 thôn" in flat
    assert "11/2024 (chưa phát đủ các thôn, 12:00, phát tại 7/8 thôn)" in flat
    assert "4/12 tháng đạt yêu cầu" in flat
    assert "Thôn 4, Thôn 8" in flat


def _reach(name: str, result: str, aired: int = 1) -> VillageReach:
    return VillageReach(id=hash(name) % 1000 + 1, name=name, aired=aired, aired_ms=0,
                        result=result)  # type: ignore[arg-type]  # fmt: skip


def test_an_ip_month_needs_every_village() -> None:
    ok = _reach("Thôn 1", "compliant")
    assert vr.ip_month_result("compliant", [ok, ok]) == "compliant"
    assert vr.ip_month_result("compliant", []) == "compliant"
    assert vr.ip_month_result("compliant", [ok, _reach("Thôn 2", "not-aired", 0)]) == (
        "villages-missing"
    )
    assert vr.ip_month_result("compliant", [ok, _reach("Thôn 2", "too-short")]) == (
        "too-short"
    )
    assert vr.ip_month_result("compliant", [ok, _reach("Thôn 2", "pending", 0)]) == (
        "pending"
    )
    # The month's own shortfall comes first.
    assert vr.ip_month_result("too-long", [_reach("Thôn 2", "not-aired", 0)]) == "too-long"


def test_in_service_means_an_active_cluster_created_before_the_broadcast() -> None:
    starts = datetime(2024, 6, 15, 10, 0, tzinfo=UTC)
    clusters = [
        (1, datetime(2024, 1, 1, tzinfo=UTC)),
        (2, starts),  # created as it began: not yet
        (3, datetime(2024, 7, 1, tzinfo=UTC)),
    ]
    assert vr.villages_in_service(clusters, starts) == {1}


def test_month_reach_from_outcomes(database_url: str) -> None:
    b = Broadcast(id=1, starts_at=NOW, status="aired")
    outcomes = {1: {5: Outcome("aired", 12 * MIN), 6: Outcome("missed")}}
    rows = vr.month_reach(
        [b], outcomes, names={5: "Thôn 5", 6: "Thôn 6"}, expected=1,
        window=(10 * MIN, 15 * MIN), closed=True,
    )  # fmt: skip
    assert [(r.name, r.aired, r.aired_ms, r.result) for r in rows] == [
        ("Thôn 5", 1, 12 * MIN, "compliant"),
        ("Thôn 6", 0, 0, "not-aired"),
    ]
    assert vr.reach_text(rows[:1], rows, rows[1:]) == "aired in 1 of 2 villages; not in Thôn 6"
