"""`loaxa scheduler`: APScheduler 3.11 in its own process, never inside the web workers.

The database is the source of truth. The job list below is rebuilt from it at start and every
ten minutes (one set of local-time jobs per station time zone), in an in-memory job store: no
pickled jobs to go stale. Every job claims its run in the database first (app.schedule.runs),
so two scheduler processes run each job once. At start every job runs once to catch up on
what was missed while the process was down; since jobs derive their work from the database,
that single run covers all missed triggers (coalesced).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from app import clock
from app.audio import jobs as audio_jobs
from app.db import unit_of_work
from app.playout import jobs as playout_jobs
from app.playout.models import Emergency
from app.schedule import jobs
from app.schedule.models import Broadcast
from app.schedule.runs import run_exclusive
from app.stations.models import Station

log = logging.getLogger("loaxa.scheduler")

JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}

# Columns outside `audio` that name stored files: audio housekeeping keeps what they name.
# A new table that refers to stored audio by sha256 must be added here.
AUDIO_KEPT_BY = (Broadcast.master_sha256, Emergency.audio_sha256)


def _five_minutes(now: datetime) -> str:
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0).isoformat()


def station_zones() -> list[str]:
    with unit_of_work(write=False) as session:
        return sorted(set(session.scalars(select(Station.timezone))))


def run_fill() -> None:
    jobs.fill_and_assemble(clock.now())


def run_check_cchc() -> None:
    now = clock.now()
    run_exclusive("check_cchc", now.strftime("%Y-%m-%dT%H"), lambda: jobs.check_cchc(now), now=now)


def run_check_overlaps() -> None:
    now = clock.now()
    run_exclusive(
        "check_overlaps", now.strftime("%Y-%m-%dT%H"), lambda: jobs.check_overlaps(now), now=now
    )


def run_mark_missed() -> None:
    now = clock.now()
    run_exclusive("mark_missed", _five_minutes(now), lambda: jobs.mark_missed(now), now=now)


def run_count_playlists(tz_name: str) -> None:
    """Count the playlists of the stations in this zone, once per local day of the zone."""
    now = clock.now()
    day = now.astimezone(ZoneInfo(tz_name)).date().isoformat()
    run_exclusive(
        "count_playlists",
        f"{tz_name}:{day}",
        lambda: playout_jobs.count_coming_playlists(now, tz_name=tz_name),
        now=now,
    )


def run_housekeeping(tz_name: str) -> None:
    """Audio housekeeping (all files), once per local date: the first zone to reach it runs."""
    now = clock.now()
    day = now.astimezone(ZoneInfo(tz_name)).date().isoformat()
    run_exclusive(
        "housekeeping",
        day,
        lambda: audio_jobs.housekeeping(now, kept_by=AUDIO_KEPT_BY),
        now=now,
    )


def job_table(zones: list[str]) -> list[tuple[str, Callable[[], None], object]]:
    """(job id, function, trigger): the one explicit list of what runs when."""
    table: list[tuple[str, Callable[[], None], object]] = [
        ("fill", run_fill, IntervalTrigger(minutes=15)),
        ("check_cchc", run_check_cchc, IntervalTrigger(hours=1)),
        ("check_overlaps", run_check_overlaps, IntervalTrigger(hours=1)),
        ("mark_missed", run_mark_missed, IntervalTrigger(minutes=5)),
    ]
    for tz_name in zones:
        tz = ZoneInfo(tz_name)
        table.append(
            (
                f"count_playlists:{tz_name}",
                partial(run_count_playlists, tz_name),
                CronTrigger(hour=0, minute=5, timezone=tz),
            )
        )
        table.append(
            (
                f"housekeeping:{tz_name}",
                partial(run_housekeeping, tz_name),
                CronTrigger(hour=3, minute=30, timezone=tz),
            )
        )
    return table


def catch_up() -> None:
    """Run every job once now (start-up, or `loaxa scheduler --once`)."""
    run_fill()
    run_check_cchc()
    run_check_overlaps()
    run_mark_missed()
    for tz_name in station_zones():
        run_count_playlists(tz_name)
        run_housekeeping(tz_name)


def register(scheduler: BlockingScheduler) -> None:
    """(Re)build the job list from the database; fixed ids, replace_existing."""
    for job_id, fn, trigger in job_table(station_zones()):
        scheduler.add_job(fn, trigger=trigger, id=job_id, replace_existing=True, **JOB_DEFAULTS)
    scheduler.add_job(
        lambda: register(scheduler),
        IntervalTrigger(minutes=10),
        id="refresh",
        replace_existing=True,
        **JOB_DEFAULTS,
    )


def run(*, once: bool = False) -> None:
    """The scheduler process's main loop."""
    if not logging.getLogger().handlers:  # `loaxa scheduler` configured it (app.logs)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    catch_up()
    if once:
        return
    scheduler = BlockingScheduler(timezone=ZoneInfo("UTC"), job_defaults=JOB_DEFAULTS)
    register(scheduler)
    log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
