"""`loaxa scheduler`: APScheduler 3.11 in its own process, never inside the web workers.

The database is the source of truth. The job list below is built from it at start and
brought up to date every ten minutes (one set of local-time jobs per station time zone), in
an in-memory job store: no pickled jobs to go stale. Every job claims its run in the
database first (app.schedule.runs), so two scheduler processes run each job once.

At start every job runs once to catch up on what was missed while the process was down;
since jobs derive their work from the database, that single run covers all missed
triggers (coalesced): missed broadcasts are marked and told once per station and month,
what is still ahead is filled and assembled, and nothing is replayed for days already past
(fill looks only ahead; the daily jobs' run keys are today's). A trigger missed while the
process was busy or suspended runs once, late (coalesce, no misfire grace limit).

Each process beats every minute (scheduler_processes) and records each job's last run,
outcome and next run (scheduler_jobs): that is how the API knows when no scheduler runs
(app.schedule.status). LOAXA_SCHEDULER_TICK_SECONDS makes every trigger a short interval,
for tests and demos; `--at` and `--rate` (hidden) run the process on a shifted, faster
clock.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from app import clock
from app.audio import jobs as audio_jobs
from app.audio import listen
from app.config import get_settings
from app.db import unit_of_work
from app.playout import jobs as playout_jobs
from app.playout.models import Emergency
from app.schedule import jobs, rolling, status
from app.schedule.models import Broadcast
from app.schedule.runs import HOLDER, run_exclusive
from app.stations.models import Station

log = logging.getLogger("loaxa.scheduler")

JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}

# Columns outside `audio` that name stored files: audio housekeeping keeps what they name.
# A new table that refers to stored audio by sha256 must be added here.
AUDIO_KEPT_BY = (Broadcast.master_sha256, Emergency.audio_sha256)


class Skipped:
    """A run another scheduler process claimed: its outcome is that process's to record."""


SKIPPED = Skipped()


class _Failed(Exception):
    pass


def _five_minutes(now: datetime) -> str:
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0).isoformat()


def _hour(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H")


def station_zones() -> list[str]:
    with unit_of_work(write=False) as session:
        return sorted(set(session.scalars(select(Station.timezone))))


def _claimed(job: str, run_key: str, fn: Callable[[], object], now: datetime) -> object:
    """run_exclusive, telling a run claimed elsewhere (SKIPPED) from a failed one."""
    seen: dict[str, str] = {}

    def inner() -> object:
        seen["ran"] = "yes"
        try:
            return fn()
        except Exception as exc:
            seen["error"] = f"{type(exc).__name__}: {exc}"
            raise

    result = run_exclusive(job, run_key, inner, now=now)
    if "error" in seen:
        raise _Failed(seen["error"])
    return result if "ran" in seen else SKIPPED


def run_plan() -> object:
    """The rolling plan (app.schedule.rolling), once an hour across processes."""
    now = clock.now()
    return _claimed("plan", _hour(now), lambda: rolling.roll(now=now).counts(), now)


def run_fill() -> object:
    return jobs.fill_and_assemble(clock.now())


def run_listen_copies() -> object:
    """Listening copies still missing (app.audio.listen), once per 5 minutes across
    processes: after the fill, which may have made masters."""
    now = clock.now()
    return _claimed(
        "listen_copies", _five_minutes(now), lambda: {"made": listen.make_missing()}, now
    )


def run_check_cchc() -> object:
    now = clock.now()
    return _claimed("check_cchc", _hour(now), lambda: jobs.check_cchc(now), now)


def run_check_overlaps() -> object:
    now = clock.now()
    return _claimed("check_overlaps", _hour(now), lambda: jobs.check_overlaps(now), now)


def run_mark_missed() -> object:
    now = clock.now()
    return _claimed("mark_missed", _five_minutes(now), lambda: jobs.mark_missed(now), now)


def run_count_playlists(tz_name: str) -> object:
    """Count the playlists of the stations in this zone, once per local day of the zone."""
    now = clock.now()
    day = now.astimezone(ZoneInfo(tz_name)).date().isoformat()
    return _claimed(
        "count_playlists",
        f"{tz_name}:{day}",
        lambda: playout_jobs.count_coming_playlists(now, tz_name=tz_name),
        now,
    )


def run_housekeeping(tz_name: str) -> object:
    """Audio housekeeping (all files), once per local date: the first zone to reach it runs."""
    now = clock.now()
    day = now.astimezone(ZoneInfo(tz_name)).date().isoformat()
    return _claimed(
        "housekeeping", day, lambda: audio_jobs.housekeeping(now, kept_by=AUDIO_KEPT_BY), now
    )


def tracked(job_id: str, fn: Callable[[], object]) -> Callable[[], None]:
    """The job as the scheduler runs it: its run and outcome recorded for the API."""

    def run() -> None:
        started, t0 = clock.now(), time.perf_counter()
        detail: str | None
        try:
            result = fn()
        except Exception as exc:
            if not isinstance(exc, _Failed):
                log.exception("job %s failed", job_id)
            outcome, detail = "failed", str(exc)
        else:
            if result is SKIPPED:
                return
            outcome, detail = "ok", None if result is None else str(result)
        log.info("job %s %s in %.1f s: %s", job_id, outcome, time.perf_counter() - t0, detail)
        try:
            status.record_run(
                job_id,
                started_at=started,
                finished_at=clock.now(),
                outcome=outcome,
                detail=detail,
                holder=HOLDER,
            )
        except Exception:  # the job's own work is done; its record is a courtesy
            log.exception("could not record the run of %s", job_id)

    run.__name__ = f"run_{job_id}"
    return run


def _every(**interval: float) -> BaseTrigger:
    tick = get_settings().scheduler_tick_seconds
    return IntervalTrigger(seconds=tick) if tick else IntervalTrigger(**interval)


def _daily(tz: ZoneInfo, hour: int, minute: int) -> BaseTrigger:
    tick = get_settings().scheduler_tick_seconds
    if tick:
        return IntervalTrigger(seconds=tick)
    return CronTrigger(hour=hour, minute=minute, timezone=tz)


def job_table(zones: list[str]) -> list[tuple[str, Callable[[], object], BaseTrigger]]:
    """(job id, function, trigger): the one explicit list of what runs when."""
    table: list[tuple[str, Callable[[], object], BaseTrigger]] = [
        ("plan", run_plan, _every(hours=1)),
        ("mark_missed", run_mark_missed, _every(minutes=5)),
        ("fill", run_fill, _every(minutes=15)),
        ("listen_copies", run_listen_copies, _every(minutes=15)),
        ("check_cchc", run_check_cchc, _every(hours=1)),
        ("check_overlaps", run_check_overlaps, _every(hours=1)),
    ]
    for tz_name in zones:
        tz = ZoneInfo(tz_name)
        table.append(
            (
                f"count_playlists:{tz_name}",
                partial(run_count_playlists, tz_name),
                _daily(tz, 0, 5),
            )
        )
        table.append(
            (f"housekeeping:{tz_name}", partial(run_housekeeping, tz_name), _daily(tz, 3, 30))
        )
    return table


def catch_up() -> None:
    """Run every job once now (start-up, or `loaxa scheduler --once`), in the order that
    lets each see the last one's work: plan, mark missed, fill, then check."""
    for job_id, fn, _ in job_table(station_zones()):
        tracked(job_id, fn)()


def heartbeat(scheduler: BaseScheduler) -> None:
    """This process is alive; when its jobs run next."""
    status.beat(holder=HOLDER, now=clock.now())
    status.record_next_runs({j.id: _on_clock(j.next_run_time) for j in scheduler.get_jobs()})


def _on_clock(at: datetime | None) -> datetime | None:
    """A trigger's real time as the job's clock will read it (the same unless --at/--rate)."""
    if at is None:
        return None
    return clock.now() + (at - datetime.now(at.tzinfo)) * _rate


_rate = 1.0


def register(scheduler: BaseScheduler) -> None:
    """Bring the job list up to date with the database's zones: add what is new, remove
    what is gone, leave the rest (replacing a job would push its next run back)."""
    table = {job_id: (fn, trigger) for job_id, fn, trigger in job_table(station_zones())}
    existing = {j.id for j in scheduler.get_jobs()}
    for job_id, (fn, trigger) in table.items():
        if job_id not in existing:
            scheduler.add_job(tracked(job_id, fn), trigger=trigger, id=job_id, **JOB_DEFAULTS)
    for job_id in existing - set(table):
        scheduler.remove_job(job_id)


def _seconds(**interval: float) -> float:
    tick = get_settings().scheduler_tick_seconds
    return tick or timedelta(**interval).total_seconds()


def _housekeep(scheduler: BaseScheduler, what: Callable[[BaseScheduler], None]) -> None:
    try:
        what(scheduler)
    except Exception:  # the database may be away for a while: try again next time
        log.exception("scheduler %s failed", what.__name__)


def run(*, once: bool = False, rate: float = 1.0) -> None:
    """The scheduler process's main loop, until SIGTERM or SIGINT.

    APScheduler runs the jobs in its threads; this main thread beats, refreshes the job
    list, and stops. Two rules keep the stop from hanging, as it once did in CI:
    - Jobs never call the scheduler. `shutdown(wait=True)` holds the job store's lock while
      it waits for running jobs, so a job that asked for the job list (the heartbeat and
      the refresh were jobs once) waited for the lock forever, and shutdown for it.
    - The signal handlers only ask to stop. A handler runs in the main thread between any
      two bytecodes, possibly inside APScheduler with one of its locks held.
    """
    global _rate
    _rate = rate
    if not logging.getLogger().handlers:  # `loaxa scheduler` configured it (app.logs)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    stop = threading.Event()
    # SIGTERM (docker stop, systemd, `loaxa up`) stops it cleanly, as Ctrl-C does: running
    # jobs finish. A stop asked for during the first pass takes effect after it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    status.beat(holder=HOLDER, now=clock.now(), started=True)
    catch_up()
    if once or stop.is_set():
        status.stopped(holder=HOLDER, now=clock.now())
        return
    scheduler = BackgroundScheduler(timezone=ZoneInfo("UTC"), job_defaults=JOB_DEFAULTS)
    register(scheduler)
    scheduler.start()
    log.info("scheduler %s started with %d jobs", HOLDER, len(scheduler.get_jobs()))
    beat_every, refresh_every = _seconds(minutes=1), _seconds(minutes=10)
    next_beat = time.monotonic()  # at once: the next runs are known from then
    next_refresh = next_beat + refresh_every
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_refresh:
            _housekeep(scheduler, register)
            next_refresh = now + refresh_every
        if now >= next_beat:  # after a refresh, so the next runs of new jobs are known
            _housekeep(scheduler, heartbeat)
            next_beat = now + beat_every
        # A timed wait: signal handlers run between the waits.
        stop.wait(max(0.0, min(1.0, next_beat - now, next_refresh - now)))
    scheduler.shutdown(wait=True)
    status.stopped(holder=HOLDER, now=clock.now())
    log.info("scheduler %s stopped", HOLDER)
