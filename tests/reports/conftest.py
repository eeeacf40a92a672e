"""A year (2024) of Xuân Phúc's broadcasts and as-run logs, with the gaps a report must show.

Xuân Phúc has an fm network (its PC feeds a transmitter): the station PC's airing counts.

CCHC column, month by month (window 10-15 min):

| month | what happened | counted as |
| --- | --- | --- |
| 01 | played 12:00 | aired, compliant |
| 02 | status missed, nothing played | missed |
| 03 | played 10:00 exactly (a village PC also "played" it: ignored) | aired, compliant |
| 04 | played 9:00 | aired, too short |
| 05 | played 16:00 | aired, too long |
| 06 | interrupted only | interrupted |
| 07 | played 15:00 exactly, a duplicate upload, and a 13:00 replay | aired once, 15:00 |
| 08 | interrupted, then played 11:00 | aired, compliant |
| 09 | no broadcast at all | not aired |
| 10 | still "planned" in the past, one failed event | missed |
| 11 | a cancelled broadcast that was played, then one played 14:30 | aired once, 14:30 |
| 12 | played 12:30 | aired, compliant |

Villages (village-weekly): Thôn 1 has 4 slots in March, 2 aired, 1 interrupted, 1 missed
(half); Thôn 2 has 3 slots in May, 2 aired by its PC, 1 "played" only by Thôn 3's PC (missed);
Thôn 3 has none.
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import clock
from app.accounts.models import Role
from app.audio import service as audio
from app.db import unit_of_work
from app.devices import service as devices
from app.playout.models import AsRunEvent
from app.schedule import service as schedule
from app.schedule.models import Broadcast, RundownItem
from app.segments.models import Segment
from app.stations.models import Programme
from tests.helpers import login, make_station, make_user

# 10:00 on 10 January 2025 in Vietnam: every month of 2024 is over.
NOW = datetime(2025, 1, 10, 3, 0, tzinfo=UTC)
MIN = 60_000

# The scripts of the December column: markup characters the feed must escape.
DEC_SCRIPT = "Xã công khai chỉ số PAPI & SIPAS: điểm hài lòng > 80%, thủ tục <trực tuyến> tăng."

EXPECTED_MONTHS: dict[str, dict[str, Any]] = {
    "2024-01": dict(planned=1, aired=1, aired_ms=12 * MIN, compliant=True, interrupted=0,
                    missed=0, result="compliant"),
    "2024-02": dict(planned=1, aired=0, aired_ms=0, compliant=False, interrupted=0, missed=1,
                    result="not-aired"),
    "2024-03": dict(planned=1, aired=1, aired_ms=10 * MIN, compliant=True, interrupted=0,
                    missed=0, result="compliant"),
    "2024-04": dict(planned=1, aired=1, aired_ms=9 * MIN, compliant=False, interrupted=0,
                    missed=0, result="too-short"),
    "2024-05": dict(planned=1, aired=1, aired_ms=16 * MIN, compliant=False, interrupted=0,
                    missed=0, result="too-long"),
    "2024-06": dict(planned=1, aired=0, aired_ms=0, compliant=False, interrupted=1, missed=0,
                    result="interrupted"),
    "2024-07": dict(planned=1, aired=1, aired_ms=15 * MIN, compliant=True, interrupted=0,
                    missed=0, result="compliant"),
    "2024-08": dict(planned=1, aired=1, aired_ms=11 * MIN, compliant=True, interrupted=0,
                    missed=0, result="compliant"),
    "2024-09": dict(planned=0, aired=0, aired_ms=0, compliant=False, interrupted=0, missed=0,
                    result="not-aired"),
    "2024-10": dict(planned=1, aired=0, aired_ms=0, compliant=False, interrupted=0, missed=1,
                    result="not-aired"),
    "2024-11": dict(planned=1, aired=1, aired_ms=14 * MIN + 30_000, compliant=True,
                    interrupted=0, missed=0, result="compliant"),
    "2024-12": dict(planned=1, aired=1, aired_ms=12 * MIN + 30_000, compliant=True,
                    interrupted=0, missed=0, result="compliant"),
}  # fmt: skip
AIRTIME_MS = sum(m["aired_ms"] for m in EXPECTED_MONTHS.values())  # 100 min

EXPECTED_VILLAGES: dict[str, dict[str, Any]] = {
    "Thôn 1": dict(planned=4, due=4, aired=2, interrupted=1, missed=1, pending=0,
                   coverage_pct=50.0),
    "Thôn 2": dict(planned=3, due=3, aired=2, interrupted=0, missed=1, pending=0,
                   coverage_pct=66.7),
    "Thôn 3": dict(planned=0, due=0, aired=0, interrupted=0, missed=0, pending=0,
                   coverage_pct=None),
}  # fmt: skip

# topic -> (distinct segments aired, airings)
EXPECTED_TOPICS = {
    "progress": (1, 1),
    "indices": (1, 2),
    "procedures": (1, 1),
    "criticism": (1, 1),
    "citizen-feedback": (1, 1),
    "one-stop-desk": (1, 2),
    "disclosure": (1, 1),
}

EXPECTED_SUMMARY = {
    "months_in_scope": 12,
    "months_compliant": 6,
    "compliance_pct": 50.0,
    "planned": 11,
    "aired": 8,
    "interrupted": 1,
    "missed": 2,
    "pending": 0,
    "cchc_airtime_ms": AIRTIME_MS,
    "cchc_airtime_minutes": 100.0,
    "village_planned": 7,
    "village_due": 7,
    "village_aired": 4,
    "village_coverage_pct": 57.1,
    "segments_aired": 7,
    "segment_airings": 9,
}


def local(day: str, hm: str = "17:00") -> datetime:
    """A Vietnam local time as an aware UTC datetime."""
    return datetime.fromisoformat(f"{day}T{hm}:00+07:00").astimezone(UTC)


@pytest.fixture(scope="session")
def master_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short real MP3 (mono, 44.1 kHz) to stand in for an assembled master."""
    path = tmp_path_factory.mktemp("master") / "master.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         "sine=f=440:r=44100:d=2", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
        check=True,
    )  # fmt: skip
    return path


class Builder:
    """Rows for one station, written in one unit of work."""

    def __init__(self, session: Any, station_id: int) -> None:
        self.s = session
        self.station_id = station_id
        self.programmes = {
            p.code: p
            for p in self.s.scalars(select(Programme).where(Programme.station_id == station_id))
        }

    def broadcast(
        self,
        starts_at: datetime,
        *,
        code: str = "cchc",
        village_id: int | None = None,
        status: str | None = None,
        master: str | None = None,
        duration_ms: int | None = None,
    ) -> Broadcast:
        b = schedule.create_broadcast(
            self.s,
            station_id=self.station_id,
            programme_code=code,
            starts_at=starts_at,
            village_id=village_id,
        )
        if status:
            b.status = status
        if master:
            b.master_sha256 = master
            b.master_duration_ms = duration_ms
        self.s.flush()
        return b

    def segment(self, title: str, topic: str, script: str, code: str = "cchc") -> Segment:
        seg = Segment(
            station_id=self.station_id,
            programme_id=self.programmes[code].id,
            title=title,
            topic=topic,
            script=script,
            status="approved",
        )
        self.s.add(seg)
        self.s.flush()
        return seg

    def rundown(self, broadcast: Broadcast, *segments: Segment) -> None:
        for i, seg in enumerate(segments):
            self.s.add(RundownItem(broadcast_id=broadcast.id, position=i, segment_id=seg.id))
        self.s.flush()

    def event(
        self,
        device_id: int,
        broadcast: Broadcast,
        status: str,
        ms: int,
        *,
        event_id: str | None = None,
        offset_min: int = 0,
    ) -> AsRunEvent:
        start = broadcast.starts_at + timedelta(minutes=offset_min, seconds=2)
        ev = AsRunEvent(
            event_id=event_id or f"ev-{uuid.uuid4().hex}",
            device_id=device_id,
            broadcast_id=broadcast.id,
            sha256=broadcast.master_sha256 or "0" * 64,
            started_at=start,
            ended_at=start + timedelta(milliseconds=ms),
            status=status,
        )
        self.s.add(ev)
        self.s.flush()
        return ev


def build_year(master_sha: str) -> dict[str, Any]:
    """Write the 2024 of the module docstring; returns the ids the tests need."""
    # fm: the station's PC feeds a transmitter, so a village PC's play of the column does
    # not count (an ip station's year is another scenario).
    ids = make_station("Xuân Phúc", villages=3, network="fm")
    other = make_station("Xuân Thái", villages=1, network="fm")
    v1, v2, v3 = ids["village_ids"]
    with unit_of_work() as s:
        sid = ids["station_id"]
        station_pc, _ = devices.create_device(s, name="PC đài", station_id=sid)
        pc1, _ = devices.create_device(s, name="PC thôn 1", station_id=sid, village_id=v1)
        pc2, _ = devices.create_device(s, name="PC thôn 2", station_id=sid, village_id=v2)
        pc3, _ = devices.create_device(s, name="PC thôn 3", station_id=sid, village_id=v3)
        b = Builder(s, sid)
        a = "aired"

        def aired(day: str, **kw: Any) -> Broadcast:
            return b.broadcast(local(day), status=a, master=master_sha, duration_ms=2000, **kw)

        progress = b.segment("Kết quả CCHC quý I", "progress", "Tình hình thực hiện CCHC.")
        indices = b.segment("Chỉ số PAR INDEX", "indices", "Kết quả PAR INDEX, PAPI, SIPAS, PCI.")
        procedures = b.segment("Thủ tục hành chính", "procedures", "Nộp hồ sơ trực tuyến.")
        commendation = b.segment("Biểu dương", "commendation", "Biểu dương thôn làm tốt.")
        criticism = b.segment("Phê bình", "criticism", "Phê bình nơi làm chưa tốt.")
        feedback = b.segment("Ý kiến người dân", "citizen-feedback", "Phản ánh, kiến nghị.")
        negative = b.segment("Nhũng nhiễu", "negative-conduct", "Chỉ ra hiện tượng tiêu cực.")
        disclosure = b.segment("Công khai chỉ số", "disclosure", DEC_SCRIPT)
        desk = b.segment("Bộ phận một cửa", "one-stop-desk", "Giờ làm việc.", "village-weekly")

        jan = aired("2024-01-20")
        b.rundown(jan, progress, indices)
        b.event(station_pc.id, jan, "played", 12 * MIN)
        b.broadcast(local("2024-02-17"), status="missed")
        mar = aired("2024-03-16")
        b.rundown(mar, procedures, indices)
        b.event(station_pc.id, mar, "played", 10 * MIN)
        b.event(pc1.id, mar, "played", 14 * MIN)  # a village PC: not the station's airing
        apr = aired("2024-04-20")
        b.event(station_pc.id, apr, "played", 9 * MIN)
        may = aired("2024-05-18")
        b.event(station_pc.id, may, "played", 16 * MIN)
        jun = b.broadcast(local("2024-06-15"), status="assembled")
        b.rundown(jun, commendation)
        b.event(station_pc.id, jun, "interrupted", 4 * MIN)
        jul = aired("2024-07-20")
        b.rundown(jul, criticism, feedback)
        b.event(station_pc.id, jul, "played", 15 * MIN, event_id="jul-played")
        b.event(station_pc.id, jul, "played", 13 * MIN, offset_min=30)  # a replay: counts once
        aug = aired("2024-08-17")
        b.event(station_pc.id, aug, "interrupted", 2 * MIN)
        b.event(station_pc.id, aug, "played", 11 * MIN, offset_min=5)
        # September: nothing planned at all.
        octo = b.broadcast(local("2024-10-19"))  # still "planned", its slot long past
        b.event(station_pc.id, octo, "failed", 0)
        nov_cancelled = b.broadcast(local("2024-11-09"))
        b.rundown(nov_cancelled, negative)
        b.event(station_pc.id, nov_cancelled, "played", 12 * MIN)
        schedule.cancel_broadcast(s, broadcast=nov_cancelled)
        nov = aired("2024-11-16")
        b.event(station_pc.id, nov, "played", 14 * MIN + 30_000)
        dec = aired("2024-12-21")
        b.rundown(dec, disclosure)
        b.event(station_pc.id, dec, "played", 12 * MIN + 30_000)

        def slot(village: int, day: str) -> Broadcast:
            return b.broadcast(local(day, "18:00"), code="village-weekly", village_id=village)

        v1_slots = [slot(v1, d) for d in ("2024-03-03", "2024-03-10", "2024-03-17", "2024-03-24")]
        for sl in v1_slots:
            b.rundown(sl, desk)
        b.event(pc1.id, v1_slots[0], "played", 5 * MIN)
        b.event(pc1.id, v1_slots[1], "played", 5 * MIN)
        b.event(pc1.id, v1_slots[2], "interrupted", 1 * MIN)
        b.event(station_pc.id, v1_slots[3], "played", 5 * MIN)  # the station PC: not Thôn 1's
        v2_slots = [slot(v2, d) for d in ("2024-05-05", "2024-05-12", "2024-05-19")]
        b.event(pc2.id, v2_slots[0], "played", 3 * MIN)
        b.event(pc2.id, v2_slots[1], "played", 3 * MIN)
        b.event(pc3.id, v2_slots[2], "played", 3 * MIN)  # Thôn 3's PC: not Thôn 2's

        # The other commune: an airing in March that must not leak into Xuân Phúc's report.
        other_pc, _ = devices.create_device(s, name="PC Xuân Thái", station_id=other["station_id"])
        ob = Builder(s, other["station_id"])
        other_mar = ob.broadcast(
            local("2024-03-16"), status="aired", master=master_sha, duration_ms=2000
        )
        ob.event(other_pc.id, other_mar, "played", 12 * MIN)
        result = {
            "station_id": sid,
            "other_station_id": other["station_id"],
            "village_ids": [v1, v2, v3],
            "broadcasts": {
                "jan": jan.id,
                "mar": mar.id,
                "apr": apr.id,
                "may": may.id,
                "jun": jun.id,
                "jul": jul.id,
                "aug": aug.id,
                "oct": octo.id,
                "nov_cancelled": nov_cancelled.id,
                "nov": nov.id,
                "dec": dec.id,
                "other_mar": other_mar.id,
            },
            "aired_cchc": [jan.id, mar.id, apr.id, may.id, jul.id, aug.id, nov.id, dec.id],
            "station_pc": station_pc.id,
            "master_sha": master_sha,
        }
    return result


@pytest.fixture
def year(database_url: str, master_mp3: Path) -> dict[str, Any]:
    """The 2024 of the module docstring, with the clock at 10 January 2025."""
    clock.set_now(lambda: NOW)
    sha = audio.store().put(master_mp3)
    return build_year(sha)


@pytest.fixture
def headers(client: TestClient, year: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Signed-in users: "viewer", "admin", and "stranger" (a viewer of the other station)."""
    make_user("viewer1", Role.viewer, year["station_id"])
    make_user("admin1", Role.admin)
    make_user("stranger", Role.viewer, year["other_station_id"])
    return {
        "viewer": login(client, "viewer1"),
        "admin": login(client, "admin1"),
        "stranger": login(client, "stranger"),
    }
