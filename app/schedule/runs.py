"""Exactly-once job runs across scheduler processes: claim (job, run_key) in the database."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, select, update

from app import clock, metrics
from app.db import add_unique, unit_of_work
from app.schedule.models import JobRun

log = logging.getLogger("loaxa.scheduler")
T = TypeVar("T")

DEFAULT_LEASE = timedelta(minutes=30)
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def claim(
    job: str, run_key: str, *, now: datetime, lease: timedelta = DEFAULT_LEASE, holder: str = HOLDER
) -> bool:
    """True when this process now owns the run; False when another one ran or runs it.

    A run whose holder died (lease expired) or that failed may be claimed again.
    """
    with unit_of_work() as session:
        row = JobRun(
            job=job,
            run_key=run_key,
            holder=holder,
            status="running",
            claimed_at=now,
            lease_until=now + lease,
        )
        if add_unique(session, row):
            return True
        existing = session.scalars(
            select(JobRun).where(JobRun.job == job, JobRun.run_key == run_key)
        ).one()
        if existing.status == "done":
            return False
        if existing.status == "running" and existing.lease_until > now:
            return False
        # Conditional takeover: of two processes reclaiming at once, one update wins.
        taken = session.execute(
            update(JobRun)
            .where(
                JobRun.id == existing.id,
                JobRun.holder == existing.holder,
                JobRun.lease_until == existing.lease_until,
                JobRun.status == existing.status,
            )
            .values(
                holder=holder,
                status="running",
                claimed_at=now,
                lease_until=now + lease,
                finished_at=None,
                detail=None,
            )
        )
        return cast(CursorResult[Any], taken).rowcount == 1


def finish(
    job: str, run_key: str, *, status: str, detail: str | None = None, holder: str = HOLDER
) -> None:
    with unit_of_work() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.run_key == run_key, JobRun.holder == holder)
            .values(status=status, finished_at=clock.now(), detail=detail)
        )


def run_exclusive(job: str, run_key: str, fn: Callable[[], T], *, now: datetime) -> T | None:
    """Run fn once across all scheduler processes for (job, run_key); None when skipped."""
    if not claim(job, run_key, now=now):
        log.debug("skip %s %s: claimed elsewhere", job, run_key)
        return None
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:
        log.exception("job %s %s failed", job, run_key)
        _count(job, "failed", started)
        finish(job, run_key, status="failed", detail=f"{type(exc).__name__}: {exc}"[:2000])
        return None
    _count(job, "done", started)
    finish(job, run_key, status="done", detail=str(result)[:2000] if result is not None else None)
    return result


def _count(job: str, outcome: str, started: float) -> None:
    """Runs, failures and durations for /metrics (app.metrics: the scheduler's directory)."""
    metrics.JOB_RUNS.labels(job, outcome).inc()
    metrics.JOB_SECONDS.labels(job).observe(time.perf_counter() - started)
