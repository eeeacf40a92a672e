"""Exactly-once job runs (app.schedule.runs): the claim, its lease, the takeover of a run
whose holder died, and the failed-job path, on the suite's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.schedule import runs
from app.schedule.models import JobRun

T0 = datetime(2024, 3, 14, 3, 0, tzinfo=UTC)
LEASE = runs.DEFAULT_LEASE


def _row(session: Session, job: str = "fill", key: str = "b1") -> JobRun:
    session.rollback()
    return session.scalars(select(JobRun).where(JobRun.job == job, JobRun.run_key == key)).one()


def test_a_claim_is_held_for_its_lease_then_taken_over(session: Session) -> None:
    assert runs.claim("fill", "b1", now=T0, holder="a:1")
    # Another process, inside the lease: the run is not its own.
    assert not runs.claim("fill", "b1", now=T0 + LEASE - timedelta(seconds=1), holder="b:2")
    row = _row(session)
    assert (row.holder, row.status, row.lease_until) == ("a:1", "running", T0 + LEASE)

    # a:1 died: once its lease has run out, b:2 takes the run over, with a lease of its own.
    later = T0 + LEASE
    assert runs.claim("fill", "b1", now=later, holder="b:2")
    row = _row(session)
    assert (row.holder, row.status, row.claimed_at) == ("b:2", "running", later)
    assert row.lease_until == later + LEASE
    # The dead holder, back from the dead, finishes nothing of b:2's.
    runs.finish("fill", "b1", status="done", holder="a:1")
    assert _row(session).status == "running"
    runs.finish("fill", "b1", status="done", holder="b:2")
    row = _row(session)
    assert (row.status, row.finished_at is not None) == ("done", True)
    # A run that is done is never run again, however late.
    assert not runs.claim("fill", "b1", now=later + timedelta(days=30), holder="c:3")


def test_of_two_processes_taking_over_at_once_one_wins(session: Session) -> None:
    assert runs.claim("fill", "b1", now=T0, holder="dead:1")
    later = T0 + LEASE + timedelta(minutes=1)
    start = threading.Barrier(4)
    won: list[str] = []

    def take(holder: str) -> None:
        start.wait()
        if runs.claim("fill", "b1", now=later, holder=holder):
            won.append(holder)

    threads = [threading.Thread(target=take, args=(f"p:{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1
    assert _row(session).holder == won[0]


def test_a_failed_run_is_recorded_with_its_error_and_tried_again(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    clock.set_now(lambda: T0)

    def broken() -> int:
        raise ValueError("the rundown is empty")

    assert runs.run_exclusive("check_cchc", "2024-03-14T10", broken, now=T0) is None
    row = _row(session, "check_cchc", "2024-03-14T10")
    assert row.status == "failed" and row.holder == runs.HOLDER
    assert row.detail == "ValueError: the rundown is empty"
    assert row.finished_at == T0
    assert "job check_cchc 2024-03-14T10 failed" in caplog.text

    # A failed run may be claimed again at once (no lease to wait for), and then succeed.
    calls: list[int] = []
    result = runs.run_exclusive(
        "check_cchc", "2024-03-14T10", lambda: calls.append(1) or 3, now=T0 + timedelta(minutes=1)
    )
    assert result == 3 and calls == [1]
    row = _row(session, "check_cchc", "2024-03-14T10")
    assert (row.status, row.detail) == ("done", "3")
    # Done: the same run key is skipped from now on.
    assert runs.run_exclusive("check_cchc", "2024-03-14T10", lambda: 4, now=T0) is None


def test_a_long_error_is_cut_to_what_the_column_holds(session: Session) -> None:
    def broken() -> None:
        raise RuntimeError("x" * 5000)

    runs.run_exclusive("mark_missed", "k", broken, now=T0)
    assert len(_row(session, "mark_missed", "k").detail or "") == 2000
