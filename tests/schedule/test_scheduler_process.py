"""The real `loaxa scheduler` process (not --once): APScheduler's own triggers fire, a
misfired trigger runs once, late; after three days down the first pass catches up once
without replaying the past; two processes run every job once; SIGTERM stops it cleanly.

The processes run on a shifted clock that runs 60 times faster (`--at`, `--rate`), with
every trigger a one-second interval (LOAXA_SCHEDULER_TICK_SECONDS): the run keys, not the
triggers, decide what runs. (Faster still, the 30-minute claim leases would last a few real
seconds, shorter than a job on a busy test machine.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.schedule.models import (
    Broadcast,
    JobRun,
    RundownItem,
    SchedulerJob,
    SchedulerProcess,
    ScheduleWarning,
)
from tests.helpers import make_station, staff

RATE = 60


def _start(at: str, *, once: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "app.cli", "scheduler", "--at", at]
    args += ["--once"] if once else ["--rate", str(RATE)]
    env = {**os.environ, "LOAXA_SCHEDULER_TICK_SECONDS": "1"}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:  # only ours, by their own handles
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)


def _wait_for(check: Callable[[], object], timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {check.__doc__ or check}")


def _stop(p: subprocess.Popen[str]) -> str:
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=60)[0]
    assert p.returncode == 0, out
    return out


def _warnings(session: Session) -> dict[tuple[str, str | None], ScheduleWarning]:
    session.rollback()
    return {(w.kind, w.month): w for w in session.scalars(select(ScheduleWarning))}


def _runs(session: Session, job: str) -> int:
    session.rollback()
    return session.scalar(select(SchedulerJob.runs).where(SchedulerJob.job == job)) or 0


def test_after_three_days_down_the_scheduler_catches_up_once_then_its_triggers_fire(
    client: TestClient,
    session: Session,
    webhook: list[dict],
    processes: list[subprocess.Popen[str]],
) -> None:
    ids = make_station(villages=1)
    h = staff(client, ids["station_id"])
    # The scheduler ran on Sunday noon (planning the year ahead) and then stopped.
    once = _start("2024-03-10T12:00:00+07:00", once=True)
    processes.append(once)
    assert once.wait(timeout=120) == 0, once.communicate()[0]
    session.rollback()
    sunday = session.scalars(
        select(Broadcast).where(Broadcast.period_key.like("%:2024-03-10T18:00"))
    ).one()
    column = session.scalars(
        select(Broadcast).where(Broadcast.period_key == "2024-03", Broadcast.village_id.is_(None))
    ).one()
    webhook.clear()
    # Three days later, Wednesday 16:59, it starts again (and its clock runs on, fast).
    p = _start("2024-03-13T16:59:00+07:00")
    processes.append(p)

    def caught_up() -> bool:
        """the first pass marked Sunday missed"""
        session.rollback()
        return session.get_one(Broadcast, sunday.id).status == "missed"

    _wait_for(caught_up)
    # The CCHC column (Saturday 17:00) comes within the three filling days at 17:00 on
    # Wednesday: after the first pass, so only a trigger of APScheduler's can fill it.
    def filled() -> bool:
        """a triggered fill found the column short of material"""
        return ("underfilled", "2024-03") in _warnings(session)

    _wait_for(filled)
    # A trigger missed while the process cannot run (suspended) runs once, late: fill runs
    # on every one-second trigger, and five missed seconds make one run, not five.
    before = _runs(session, "fill")
    p.send_signal(signal.SIGSTOP)
    time.sleep(5)
    p.send_signal(signal.SIGCONT)
    _wait_for(lambda: _runs(session, "fill") > before, timeout=30)
    time.sleep(1.5)
    assert _runs(session, "fill") - before <= 3

    session.rollback()
    seen = session.scalar(select(func.max(SchedulerProcess.last_seen_at)))
    assert seen is not None
    with clock.frozen(seen + timedelta(seconds=30)):
        page = client.get("/api/v1/scheduler", headers=h["viewer"]).json()
        listed = client.get("/api/v1/warnings", headers=h["viewer"]).json()
    assert page["running"] is True and listed["scheduler_running"] is True
    jobs = {j["job"]: j for j in page["jobs"]}
    zone = "Asia/Ho_Chi_Minh"
    expected_jobs = {"plan", "mark_missed", "fill", "listen_copies", "check_cchc", "check_overlaps"}
    expected_jobs |= {f"count_playlists:{zone}", f"housekeeping:{zone}"}
    assert set(jobs) == expected_jobs
    assert all(j["last_outcome"] == "ok" and j["next_run_at"] for j in jobs.values())
    assert jobs["fill"]["runs"] >= 2  # the first pass, then triggers

    out = _stop(p)
    assert "stopped" in out
    session.rollback()
    assert all(r.stopped_at is not None for r in session.scalars(select(SchedulerProcess)))
    # Caught up once: Sunday's village slot told once, as one group.
    groups = _warnings(session)
    missed = groups[("missed", "2024-03")]
    assert (missed.item_count, missed.message) == (
        1,
        "Tháng 3/2024: 1 buổi phát thôn chưa báo đã phát, Thôn 1 (1)",
    )
    raised = Counter(
        (w["kind"], w["month"]) for b in webhook for w in b["warnings"] if w["change"] == "raised"
    )
    assert raised[("missed", "2024-03")] == 1 and set(raised.values()) == {1}
    # Nothing replayed for the days it was down: since it came back, only the column still
    # ahead was filled (Sunday's slot only on Sunday, before it went down), and the daily
    # jobs ran for Sunday and for the day it came back, none for the days between.
    runs = session.execute(select(JobRun.job, JobRun.run_key)).all()
    fills = sorted(k for j, k in runs if j == "fill")
    assert [k for k in fills if not k.startswith(f"b{column.id}:")] == [
        f"b{sunday.id}:2024-03-10T05"
    ]
    assert any(k.startswith(f"b{column.id}:2024-03-13") for k in fills)
    assert not session.scalars(
        select(RundownItem).where(RundownItem.broadcast_id == sunday.id)
    ).all()
    playlists = {k for j, k in runs if j == "count_playlists"}
    assert playlists == {f"{zone}:2024-03-10", f"{zone}:2024-03-13"}
    assert {k for j, k in runs if j == "housekeeping"} == {"2024-03-10", "2024-03-13"}


def test_two_scheduler_processes_run_every_job_once(
    client: TestClient,
    session: Session,
    webhook: list[dict],
    processes: list[subprocess.Popen[str]],
) -> None:
    make_station(villages=1)
    at = "2024-03-13T16:59:00+07:00"
    processes += [_start(at), _start(at)]

    def both_beat() -> bool:
        """both processes beat and a triggered fill ran"""
        session.rollback()
        beating = session.scalar(select(func.count()).select_from(SchedulerProcess))
        return beating == 2 and ("underfilled", "2024-03") in _warnings(session)

    _wait_for(both_beat)
    time.sleep(3)
    logs = "\n".join(_stop(p) for p in processes)
    session.rollback()
    # Each claimed run ran in one process: the runs both recorded add up to the claims.
    claims = Counter(job for (job,) in session.execute(select(JobRun.job)))
    assert {s for (s,) in session.execute(select(JobRun.status))} == {"done"}
    recorded = {j.job.split(":")[0]: j.runs for j in session.scalars(select(SchedulerJob))}
    names = ("plan", "mark_missed", "check_cchc", "check_overlaps", "count_playlists")
    for job in (*names, "housekeeping"):
        assert recorded[job] == claims[job], (job, logs)
    assert claims["plan"] >= 1 and claims["mark_missed"] >= 2  # first pass, then triggers
    # The rolling plan made each slot once: March's column and every Sunday ahead.
    live = session.scalars(select(Broadcast).where(Broadcast.status != "cancelled")).all()
    assert len({(b.programme_id, b.period_key) for b in live}) == len(live)
    assert sum(1 for b in live if b.village_id is None) == 12
    # Each warning group was raised once, though both processes looked.
    raised = Counter(
        (w["kind"], w["month"]) for b in webhook for w in b["warnings"] if w["change"] == "raised"
    )
    assert raised and set(raised.values()) == {1}
    assert set(raised) == {k for k in _warnings(session)}
    holders = {r.holder for r in session.scalars(select(SchedulerProcess))}
    assert len(holders) == 2


def test_sigterm_stops_a_busy_scheduler_every_time(
    session: Session, processes: list[subprocess.Popen[str]]
) -> None:
    """Every trigger fires every 20 ms, so a stop nearly always lands while jobs run. The
    heartbeat and refresh were jobs once, and shutdown(wait=True) waited for them while
    they waited for its lock: about half such stops hung for good."""
    make_station(villages=1)
    env = {**os.environ, "LOAXA_SCHEDULER_TICK_SECONDS": "0.02"}
    for attempt in range(3):
        before = _runs(session, "fill")
        p = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        processes.append(p)
        _wait_for(lambda before=before: _runs(session, "fill") >= before + 3, timeout=60)
        time.sleep(0.3 * attempt)
        out = _stop(p)
        assert "stopped" in out
