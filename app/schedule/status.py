"""Whether a scheduler is running, and what its jobs last did.

A dead scheduler cannot report its own death, so each scheduler process writes a
heartbeat (scheduler_processes) and each job's last run and outcome (scheduler_jobs), and
the API draws the conclusion: when no scheduler has been seen for DOWN_AFTER, every staff
answer of `GET /api/v1/warnings` starts with a "scheduler not running since …" warning,
and `/readyz` says so in its body. Readiness itself stays about the database: an API
replica that can serve requests is ready even when the scheduler is down (taking the API
out of a load balancer would not bring the scheduler back).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import clock
from app.db import unit_of_work
from app.schedule.models import SchedulerJob, SchedulerProcess
from app.schedule.schemas import SchedulerJobOut, SchedulerOut, SchedulerProcessOut, WarningOut

DOWN_AFTER = timedelta(minutes=30)
# A process not seen for this long is not counted as running (it beats every minute).
ALIVE_WITHIN = timedelta(minutes=3)
DOWN_KIND = "scheduler-down"


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _upsert(
    session: Session, model: type[Any], row: dict[str, Any], *, key: str, keep: tuple[str, ...]
) -> None:
    """Insert the row, or update it but for the key and the `keep` columns."""
    stmt = _insert(session)(model).values(**row)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[key],
            set_={k: getattr(stmt.excluded, k) for k in row if k != key and k not in keep},
        )
    )


# --------------------------------------------------------------------------- the scheduler's side


def beat(*, holder: str, now: datetime, started: bool = False) -> None:
    """This process is alive (and, at start, just started)."""
    row = {"holder": holder, "started_at": now, "last_seen_at": now, "stopped_at": None}
    with unit_of_work() as session:
        # Only a start clears stopped_at: a beat of a job still finishing after the stop
        # must not bring the process back to life.
        keep = () if started else ("started_at", "stopped_at")
        _upsert(session, SchedulerProcess, row, key="holder", keep=keep)


def stopped(*, holder: str, now: datetime) -> None:
    """This process is stopping (a clean shutdown; a killed one just stops beating)."""
    with unit_of_work() as session:
        session.execute(
            update(SchedulerProcess)
            .where(SchedulerProcess.holder == holder)
            .values(stopped_at=now, last_seen_at=now)
        )


def record_run(
    job: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    detail: str | None,
    holder: str,
) -> None:
    """A job's run and its outcome ("ok", "failed"); runs claimed by another process are
    that process's to record."""
    row = {
        "job": job,
        "last_started_at": started_at,
        "last_finished_at": finished_at,
        "last_outcome": outcome,
        "last_detail": (detail or "")[:2000] or None,
        "last_holder": holder,
        "runs": 1,
    }
    with unit_of_work() as session:
        # One statement: two processes recording the same job's first run cannot clash.
        stmt = _insert(session)(SchedulerJob).values(**row)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["job"],
                set_={
                    **{k: getattr(stmt.excluded, k) for k in row if k not in ("job", "runs")},
                    "runs": SchedulerJob.runs + 1,
                },
            )
        )


def record_next_runs(next_runs: Mapping[str, datetime | None]) -> None:
    """When each job of this process will run next (any process's answer is a true one)."""
    with unit_of_work() as session:
        for job, at in sorted(next_runs.items()):
            row = {"job": job, "runs": 0, "next_run_at": at}
            _upsert(session, SchedulerJob, row, key="job", keep=("runs",))


# --------------------------------------------------------------------------- the API's side


def last_seen(session: Session) -> datetime | None:
    return session.scalar(select(func.max(SchedulerProcess.last_seen_at)))


def overview(
    session: Session, *, now: datetime | None = None, full: bool = True
) -> SchedulerOut:
    """The scheduler's processes and jobs, and whether one is running.

    Not `full` (everyone but an admin of no station): whether it runs and each job's
    times and outcome only, without the processes (host names, PIDs) or the jobs' details
    (which name every station's work)."""
    now = now or clock.now()
    processes = list(
        session.scalars(select(SchedulerProcess).order_by(SchedulerProcess.last_seen_at.desc()))
    )
    alive = [
        p for p in processes if p.stopped_at is None and now - p.last_seen_at <= ALIVE_WITHIN
    ]
    seen = max((p.last_seen_at for p in processes), default=None)
    jobs = session.scalars(select(SchedulerJob).order_by(SchedulerJob.job)).all()
    return SchedulerOut(
        running=bool(alive),
        last_seen_at=seen,
        down_since=None if seen is not None and now - seen < DOWN_AFTER else seen,
        processes=[
            SchedulerProcessOut(
                holder=p.holder,
                started_at=p.started_at,
                last_seen_at=p.last_seen_at,
                stopped_at=p.stopped_at,
                running=p in alive,
            )
            for p in (processes[:20] if full else [])
        ],
        jobs=[
            SchedulerJobOut(
                job=j.job,
                last_started_at=j.last_started_at,
                last_finished_at=j.last_finished_at,
                last_outcome=j.last_outcome,
                last_detail=j.last_detail if full else None,
                runs=j.runs,
                next_run_at=j.next_run_at,
            )
            for j in jobs
        ],
    )


def down_message(seen: datetime | None) -> str:
    if seen is None:
        return "Bộ lập lịch chưa chạy lần nào (no scheduler has ever run): start `loaxa scheduler`"
    return (
        f"Bộ lập lịch không chạy từ {seen.isoformat(timespec='minutes')} "
        f"(scheduler not running since {seen.isoformat(timespec='minutes')}): "
        "nothing is planned, filled, checked or marked missed until it runs again"
    )


def down_warning(session: Session, *, now: datetime) -> WarningOut | None:
    """The warning every staff answer of the warnings list starts with while no scheduler
    has been seen for DOWN_AFTER; computed, never stored (id 0)."""
    seen = last_seen(session)
    if seen is not None and now - seen < DOWN_AFTER:
        return None
    return WarningOut(
        id=0,
        station_id=None,
        broadcast_id=None,
        kind=DOWN_KIND,
        message=down_message(seen),
        created_at=seen or now,
        updated_at=now,
        count=1,
    )
