"""`kill -9` of a real `loaxa scheduler` in the middle of assembling a broadcast.

The scheduler claims the broadcast's fill run for 30 minutes (app.schedule.runs). Killed
while it renders, it leaves that claim and a scratch directory, nothing else: the broadcast
has no master. A restart inside the lease leaves the run to its (dead) holder; one past the
lease takes it over and assembles. The broadcast is assembled exactly once, and every file
the database names exists whole (it hashes to its name). The clock is stepped with the
scheduler's `--at`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audio.models import AudioAsset
from app.audio.storage import AudioStore, sha256_file
from app.audit.models import AuditEvent
from app.config import get_settings
from app.db import unit_of_work
from app.schedule.models import Broadcast, JobRun, RundownItem
from app.stations.models import Programme
from tests.faults.procs import env_with, loaxa_argv, run_loaxa
from tests.helpers import make_station, staff
from tests.playout.helpers import pink

pytestmark = [pytest.mark.faults, pytest.mark.slow]

AT = datetime.fromisoformat("2024-03-14T10:05:00+07:00")
STARTS = "2024-03-16T17:00:00+07:00"  # the third Saturday, within the 3 days filled ahead


def _scheduler_once(at: datetime) -> subprocess.CompletedProcess[str]:
    r = run_loaxa("scheduler", "--once", "--at", at.isoformat())
    assert r.returncode == 0, r.stderr
    return r


def test_a_scheduler_killed_while_assembling_is_taken_over_after_its_lease(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    # The rule is data: a 3 to 5 minute column; 2 x 2 minutes of audio (one recording,
    # stored once) take a second or two to render, long enough to be caught in the act.
    with unit_of_work() as s:
        s.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(min_duration_ms=180_000, max_duration_ms=300_000)
        )
    audio = pink(tmp_path / "long.mp3", 120)
    for n in (1, 2):
        seg = client.post(
            "/api/v1/segments",
            json={
                "title": f"Kết quả CCHC {n}",
                "programme": "cchc",
                "topic": "progress",
                "target_month": "2024-03",
            },
            headers=h["editor"],
        ).json()
        with audio.open("rb") as fh:
            r = client.put(
                f"/api/v1/segments/{seg['id']}/audio",
                files={"file": ("a.mp3", fh)},
                headers=h["editor"],
            )
        assert r.status_code == 200, r.text
        path = f"/api/v1/segments/{seg['id']}"
        assert client.post(f"{path}/submit", headers=h["editor"]).is_success
        assert client.post(f"{path}/approve", headers=h["approver"]).is_success
    r = client.post(
        "/api/v1/broadcasts",
        json={"programme": "cchc", "station_id": ids["station_id"], "starts_at": STARTS},
        headers=h["approver"],
    )
    assert r.status_code == 201, r.text
    broadcast_id = r.json()["id"]

    scratch_root = get_settings().data_dir / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    before = set(scratch_root.glob("assemble-*"))
    log = (tmp_path / "scheduler.log").open("wb")
    proc = subprocess.Popen(
        loaxa_argv("scheduler", "--once", "--at", AT.isoformat()),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env_with(),
    )
    deadline = time.monotonic() + 120
    while not (set(scratch_root.glob("assemble-*")) - before):
        assert proc.poll() is None, (tmp_path / "scheduler.log").read_text()
        assert time.monotonic() < deadline, "the scheduler never started assembling"
        time.sleep(0.02)
    time.sleep(0.3)  # inside the render
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL, "it finished before it was killed"
    log.close()

    session.rollback()
    broadcast = session.get_one(Broadcast, broadcast_id)
    assert broadcast.status == "planned" and broadcast.master_sha256 is None
    run = session.scalars(select(JobRun).where(JobRun.job == "fill")).one()
    dead_holder = run.holder
    assert (run.status, dead_holder.endswith(f":{proc.pid}")) == ("running", True)
    assert session.scalar(select(func.count()).select_from(RundownItem)) == 2  # filled

    # Within the lease the dead process still owns the run: nobody assembles.
    _scheduler_once(AT + timedelta(minutes=10))
    session.rollback()
    assert session.get_one(Broadcast, broadcast_id).master_sha256 is None
    assert session.get_one(JobRun, run.id).holder == dead_holder

    # Past it, the run is taken over and the broadcast assembled.
    _scheduler_once(AT + timedelta(minutes=31))
    _scheduler_once(AT + timedelta(minutes=40))  # and nothing more happens after
    session.rollback()
    broadcast = session.get_one(Broadcast, broadcast_id)
    assert broadcast.status == "assembled" and broadcast.master_sha256
    assert 240_000 <= (broadcast.master_duration_ms or 0) <= 300_000
    taken = session.get_one(JobRun, run.id)
    assert taken.status == "done" and taken.holder != dead_holder
    assembled = session.scalar(
        select(func.count()).where(
            AuditEvent.action == "broadcast.assemble", AuditEvent.entity_id == broadcast_id
        )
    )
    assert assembled == 1
    masters = session.scalar(
        select(func.count()).select_from(AudioAsset).where(AudioAsset.origin == "assembly")
    )
    assert masters == 1

    # Every file the database names is whole: it exists and hashes to its name.
    named = set(session.scalars(select(AudioAsset.sha256)))
    named |= set(session.scalars(select(AudioAsset.source_sha256).where(
        AudioAsset.source_sha256.is_not(None)
    )))  # fmt: skip
    named.add(broadcast.master_sha256)
    stored = dict(AudioStore(get_settings().audio_dir).iter_all())
    for sha in named:
        assert sha in stored, f"{sha} is named but not stored"
        assert sha256_file(stored[sha]) == sha
