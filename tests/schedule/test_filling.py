"""The scheduler's jobs with real audio and a controlled clock: fill, assemble, warn, miss."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import clock
from app.accounts.security import hash_device_token
from app.audio.jobs import housekeeping
from app.db import unit_of_work
from app.devices.models import Device
from app.playout.models import AsRunEvent
from app.schedule import jobs
from app.schedule.models import Broadcast, JobRun, RundownItem, ScheduleWarning
from app.schedule.runner import AUDIO_KEPT_BY
from app.segments.models import Segment
from app.stations.models import Programme
from tests.helpers import make_station, staff
from tests.schedule.test_broadcasts_api import approved_segment, new_broadcast, pink

MARCH_16 = datetime(2024, 3, 16, 10, 0, tzinfo=UTC)  # 17:00 local, the third Saturday


def make_segment_row(session: Session, station_id: int, programme_code: str) -> int:
    """A bare approved segment row (no audio), for tests that only need a foreign key."""
    programme = session.scalars(
        select(Programme).where(
            Programme.station_id == station_id, Programme.code == programme_code
        )
    ).one()
    seg = Segment(
        station_id=station_id,
        programme_id=programme.id,
        title="x",
        topic="other",
        status="approved",
    )
    session.add(seg)
    session.flush()
    return seg.id


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station(villages=0)
    with unit_of_work() as session:
        # The rule is data: a 20 to 40 second column keeps the test audio short.
        session.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(min_duration_ms=20_000, max_duration_ms=40_000)
        )
    return {**ids, "h": staff(client, ids["station_id"])}


def _warnings(session: Session) -> list[ScheduleWarning]:
    session.rollback()
    return list(session.scalars(select(ScheduleWarning).order_by(ScheduleWarning.id)))


def test_fill_takes_priority_then_age_and_assembles(
    client: TestClient, world: dict, tmp_path: Path, session: Session
) -> None:
    old = approved_segment(client, world, pink(tmp_path / "a.mp3", 6, 1), "Cũ")
    new = approved_segment(client, world, pink(tmp_path / "b.mp3", 5, 2), "Mới")
    urgent = approved_segment(client, world, pink(tmp_path / "c.mp3", 4, 3), "Ưu tiên")
    with unit_of_work() as s:
        s.execute(update(Segment).where(Segment.id == urgent["id"]).values(priority="priority"))
    b = new_broadcast(client, world).json()
    # Four days ahead: too early to fill.
    assert jobs.fill_and_assemble(MARCH_16 - timedelta(days=4))["due"] == 0
    counts = jobs.fill_and_assemble(MARCH_16 - timedelta(days=3))
    assert counts["assembled"] == 1
    rundown = client.get(f"/api/v1/broadcasts/{b['id']}/rundown", headers=world["h"]["viewer"])
    titles = [i["title"] for i in rundown.json()["items"] if i["kind"] == "segment"]
    assert titles == ["Ưu tiên", "Cũ", "Mới"]
    assert rundown.json()["compliant"] and rundown.json()["master_sha256"]
    assert old and new


def test_underfilled_broadcast_is_not_padded_and_the_warning_names_the_minutes(
    client: TestClient, world: dict, tmp_path: Path, session: Session, webhook: list[dict]
) -> None:
    approved_segment(client, world, pink(tmp_path / "a.mp3", 2, 1))
    b = new_broadcast(client, world).json()
    counts = jobs.fill_and_assemble(MARCH_16 - timedelta(days=2))
    assert counts["underfilled"] == 1
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=world["h"]["viewer"]).json()
    assert got["status"] == "planned" and got["master_sha256"] is None
    [warning] = _warnings(session)
    assert warning.kind == "underfilled" and "minutes of approved material are missing" in (
        warning.message
    )
    assert [w["kind"] for body in webhook for w in body["warnings"]] == ["underfilled"]
    # The same finding again (job run twice in the next hour) is not repeated.
    jobs.fill_and_assemble(MARCH_16 - timedelta(days=2) + timedelta(hours=1))
    assert len(_warnings(session)) == 1
    api = client.get("/api/v1/warnings", headers=world["h"]["viewer"]).json()
    # No scheduler has ever run here: the list says so first, then the finding.
    assert [i["kind"] for i in api["items"]] == ["scheduler-down", "underfilled"]
    assert api["scheduler_running"] is False and api["total"] == 2
    underfilled = api["items"][1]
    assert (underfilled["count"], underfilled["month"]) == (1, "2024-03")
    assert underfilled["by_village"] == [{"village_id": None, "village": None, "count": 1}]


def test_a_rundown_set_by_a_person_is_left_alone(
    client: TestClient, world: dict, tmp_path: Path, session: Session
) -> None:
    mine = approved_segment(client, world, pink(tmp_path / "a.mp3", 3, 1), "Chọn tay")
    approved_segment(client, world, pink(tmp_path / "b.mp3", 9, 2), "Khác")
    b = new_broadcast(client, world).json()
    client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [mine["id"]]},
        headers=world["h"]["approver"],
    )
    jobs.fill_and_assemble(MARCH_16 - timedelta(days=1))
    session.rollback()
    items = session.scalars(
        select(RundownItem.segment_id).where(RundownItem.broadcast_id == b["id"])
    ).all()
    assert items == [mine["id"]]


def test_t7_and_t1_warnings_for_the_cchc_column(
    client: TestClient, world: dict, session: Session, webhook: list[dict]
) -> None:
    # No CCHC broadcast planned at all: each month from now to two ahead is told at once,
    # March (five days before it ends) at T-7.
    jobs.check_cchc(datetime(2024, 3, 26, 10, 0, tzinfo=UTC))
    found = [(w.kind, w.month, w.stage, w.message) for w in _warnings(session)]
    assert found == [
        ("cchc-missing", "2024-03", "T-7", "T-7: Tháng 3/2024: chưa có buổi phát chuyên mục CCHC"),
        ("cchc-missing", "2024-04", None, "Tháng 4/2024: chưa có buổi phát chuyên mục CCHC"),
        ("cchc-missing", "2024-05", None, "Tháng 5/2024: chưa có buổi phát chuyên mục CCHC"),
    ]
    # A broadcast that is not filled: one group for its month, raised at T-7 and
    # escalated at T-1, one webhook message each; the hour after T-7 changes nothing.
    b = new_broadcast(client, world, "2024-04-20T17:00:00+07:00").json()
    webhook.clear()
    jobs.check_cchc(datetime(2024, 4, 15, 10, 0, tzinfo=UTC))
    jobs.check_cchc(datetime(2024, 4, 15, 11, 0, tzinfo=UTC))
    jobs.check_cchc(datetime(2024, 4, 19, 12, 0, tzinfo=UTC))
    [group] = [w for w in _warnings(session) if w.kind == "cchc-outside-window"]
    assert (group.month, group.stage, group.item_count) == ("2024-04", "T-1", 1)
    assert [i["broadcast_id"] for i in group.items or []] == [b["id"]]
    assert group.message.startswith("T-1: Tháng 4/2024: 1 buổi phát ngoài khung thời lượng")
    assert "no segments" in group.message
    about_b = [
        (w["change"], w["stage"])
        for body in webhook
        for w in body["warnings"]
        if w["kind"] == "cchc-outside-window"
    ]
    assert about_b == [("raised", "T-7"), ("escalated", "T-1")]
    # April got its broadcast on the 15th: that month's "missing" resolved itself then.
    april = next(w for w in _warnings(session) if w.kind == "cchc-missing" and w.month == "2024-04")
    assert april.resolved_at is not None and april.item_count == 0
    # The broadcast is cancelled: the outside-window group has nothing left and resolves;
    # April is without a broadcast again, and that group reopens.
    client.delete(f"/api/v1/broadcasts/{b['id']}", headers=world["h"]["approver"])
    webhook.clear()
    jobs.check_cchc(datetime(2024, 4, 19, 13, 0, tzinfo=UTC))
    changes = sorted(
        (w["kind"], w["month"], w["change"]) for body in webhook for w in body["warnings"]
    )
    assert changes == [
        ("cchc-missing", "2024-04", "reopened"),
        ("cchc-outside-window", "2024-04", "resolved"),
    ]


def test_missed_broadcasts_are_marked_and_aired_ones_are_not(
    client: TestClient, world: dict, tmp_path: Path, session: Session
) -> None:
    seg = approved_segment(client, world, pink(tmp_path / "a.mp3", 12, 1))
    h = world["h"]["approver"]
    with clock.frozen(datetime(2024, 3, 1, tzinfo=UTC)):  # planned ahead, not history
        aired = new_broadcast(client, world, "2024-03-16T17:00:00+07:00").json()
        silent = new_broadcast(client, world, "2024-04-20T17:00:00+07:00").json()
    for b in (aired, silent):
        client.put(
            f"/api/v1/broadcasts/{b['id']}/rundown", json={"segment_ids": [seg["id"]]}, headers=h
        )
        assert client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=h).status_code == 200
    with unit_of_work() as s:
        device = Device(
            name="PC", station_id=world["station_id"], token_hash=hash_device_token("dev_x")
        )
        s.add(device)
        s.flush()
        master = s.get_one(Broadcast, aired["id"]).master_sha256 or ""
        s.add(
            AsRunEvent(
                event_id="e1",
                device_id=device.id,
                broadcast_id=aired["id"],
                sha256=master,
                started_at=MARCH_16,
                ended_at=MARCH_16 + timedelta(seconds=30),
                status="played",
            )
        )
    assert jobs.mark_missed(datetime(2024, 4, 20, 10, 30, tzinfo=UTC)) == 0  # within grace
    assert jobs.mark_missed(datetime(2024, 4, 20, 12, 0, tzinfo=UTC)) == 1
    session.rollback()
    assert session.get_one(Broadcast, silent["id"]).status == "missed"
    assert session.get_one(Broadcast, aired["id"]).status == "assembled"
    [missed] = _warnings(session)
    assert (missed.kind, missed.month, missed.item_count) == ("missed", "2024-04", 1)
    assert missed.message == "Tháng 4/2024: 1 buổi phát chưa báo đã phát, Đài xã (1)"


def test_housekeeping_removes_only_old_orphans(
    client: TestClient, world: dict, tmp_path: Path, data_dir: Path
) -> None:
    seg = approved_segment(client, world, pink(tmp_path / "a.mp3", 2, 1))
    from app.audio.service import store

    orphan_src = pink(tmp_path / "orphan.mp3", 1, 9)
    orphan = store().put(orphan_src)
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(store().path_for(orphan), (old, old))
    kept = store().path_for(seg["audio_sha256"])
    os.utime(kept, (old, old))
    master = store().put(pink(tmp_path / "master.mp3", 1, 5))  # named only by a broadcast
    os.utime(store().path_for(master), (old, old))
    broadcast_id = new_broadcast(client, world).json()["id"]
    with unit_of_work() as s:
        s.get_one(Broadcast, broadcast_id).master_sha256 = master
    now = datetime.now(UTC)
    # The age is measured from `now`, not from the wall clock: three days earlier, the
    # two-day-old orphan was not old enough yet.
    housekeeping(now - timedelta(days=3), kept_by=AUDIO_KEPT_BY)
    assert store().path_for(orphan).exists()
    removed = housekeeping(now, kept_by=AUDIO_KEPT_BY)
    assert removed >= 1
    assert not store().path_for(orphan).exists() and kept.exists()
    assert store().path_for(master).exists()


def _scheduler(at: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "scheduler", "--once", "--at", at],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )


def test_two_scheduler_processes_run_each_job_once(
    client: TestClient, world: dict, tmp_path: Path, session: Session, webhook: list[dict]
) -> None:
    for n in range(3):
        approved_segment(client, world, pink(tmp_path / f"s{n}.mp3", 6, n + 1), f"Tin {n}")
    filled = new_broadcast(client, world).json()
    april = new_broadcast(client, world, "2024-04-20T17:00:00+07:00").json()
    at = "2024-03-13T17:00:00+07:00"
    procs = [_scheduler(at), _scheduler(at)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    session.rollback()
    runs = session.execute(select(JobRun.job, JobRun.run_key, JobRun.status)).all()
    keys = [(job, key) for job, key, _ in runs]
    # Every claimed run finished: neither process left a run half-done or failed.
    assert {status for _, _, status in runs} == {"done"}
    assert ("fill", f"b{filled['id']}:2024-03-13T10") in keys
    assembles = session.scalar(
        select(func.count()).select_from(Broadcast).where(Broadcast.status == "assembled")
    )
    assert assembles == 1
    from app.audit.models import AuditEvent

    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "broadcast.assemble")
        )
        == 1
    )
    kinds = sorted(w["kind"] for body in webhook for w in body["warnings"])
    assert kinds == sorted(w.kind for w in _warnings(session))
    # April is beyond the filling horizon: neither process touched it.
    april_now = client.get(f"/api/v1/broadcasts/{april['id']}", headers=world["h"]["approver"])
    assert april_now.json()["status"] == "planned"
