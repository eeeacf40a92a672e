"""Scheduling's jobs (fill and assemble, CCHC checks, missed broadcasts): plain functions of
`now`, idempotent, safe to run twice.

Each job works out what to do from the database (not from when it was triggered), so a run
missed during downtime is made up by the next one. `app.schedule.runner` registers them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import unit_of_work
from app.errors import LoaxaError
from app.playout.models import AsRunEvent
from app.schedule import assembly, filling, service, warnings
from app.schedule.cadence import local_month, month_bounds_utc
from app.schedule.models import Broadcast, BroadcastStatus, ScheduleWarning
from app.schedule.runs import run_exclusive
from app.stations.models import Programme, Station
from app.stations.service import CCHC

log = logging.getLogger("loaxa.scheduler")


def _hour_bucket(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H")


def _notify(new: list[ScheduleWarning]) -> None:
    warnings.notify_webhook([warnings.payload(w) for w in new])


def fill_and_assemble(now: datetime) -> dict[str, int]:
    """Fill and assemble broadcasts starting within the next N days (setting fill_days_ahead)."""
    horizon = now + timedelta(days=get_settings().fill_days_ahead)
    with unit_of_work(write=False) as session:
        due = session.scalars(
            select(Broadcast.id)
            .where(
                Broadcast.status == BroadcastStatus.planned.value,
                Broadcast.starts_at > now,
                Broadcast.starts_at <= horizon,
            )
            .order_by(Broadcast.starts_at)
        ).all()
    counts = {"due": len(due), "assembled": 0, "underfilled": 0}
    for broadcast_id in due:
        outcome = run_exclusive(
            "fill",
            f"b{broadcast_id}:{_hour_bucket(now)}",
            partial(_fill_one, broadcast_id, now),
            now=now,
        )
        if outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _fill_one(broadcast_id: int, now: datetime) -> str:
    new: list[ScheduleWarning] = []
    with unit_of_work() as session:
        broadcast = service.get_broadcast(session, broadcast_id, for_update=True)
        result = filling.fill_rundown(session, broadcast)
        view = assembly.rundown_view(session, broadcast)
        if not view.compliant:
            missing = result.missing_ms if result else 0
            station = session.get_one(Station, broadcast.station_id)
            when = service.describe_local(broadcast.starts_at, ZoneInfo(station.timezone))
            detail = (
                f"{missing / 60000:.1f} minutes of approved material are missing"
                if missing
                else view.problem
            )
            w = warnings.raise_warning(
                session,
                kind="underfilled",
                station_id=broadcast.station_id,
                broadcast_id=broadcast.id,
                message=f"broadcast {broadcast.id} ({view.programme}, {when}): {detail}",
                dedupe_key=f"underfilled:b{broadcast.id}:{view.total_ms}",
            )
            new += [w] if w else []
            outcome = "underfilled"
        else:
            outcome = "ready"
    _notify(new)
    if outcome == "ready":
        try:
            assembly.assemble_broadcast(broadcast_id)
            return "assembled"
        except LoaxaError as exc:
            log.warning("broadcast %s not assembled: %s", broadcast_id, exc.message)
            return "failed"
    return outcome


def check_cchc(now: datetime) -> int:
    """T-7 and T-1 warnings for a CCHC broadcast that is missing, unfilled or outside the window."""
    new: list[ScheduleWarning] = []
    with unit_of_work() as session:
        stations = session.execute(
            select(Station.id, Station.timezone, Programme.id)
            .join(Programme, Programme.station_id == Station.id)
            .where(Programme.code == CCHC)
        ).all()
        for station_id, tz_name, programme_id in stations:
            tz = ZoneInfo(tz_name)
            new += _check_missing(session, station_id, programme_id, tz, now)
            new += _check_upcoming(session, station_id, programme_id, tz, now)
    _notify(new)
    return len(new)


def _stage(until: timedelta) -> str | None:
    if until <= timedelta(days=1):
        return "T-1"
    if until <= timedelta(days=7):
        return "T-7"
    return None


def _check_missing(
    session: Session, station_id: int, programme_id: int, tz: ZoneInfo, now: datetime
) -> list[ScheduleWarning]:
    month = local_month(now, tz)
    _, month_end = month_bounds_utc(month, tz)
    stage = _stage(month_end - now)
    if stage is None:
        return []
    has_one = session.scalar(
        select(
            exists().where(
                Broadcast.station_id == station_id,
                Broadcast.programme_id == programme_id,
                Broadcast.local_month == month,
                Broadcast.status != BroadcastStatus.cancelled.value,
            )
        )
    )
    if has_one:
        return []
    days = (month_end - now).total_seconds() / 86400
    w = warnings.raise_warning(
        session,
        kind="cchc-missing",
        station_id=station_id,
        message=f"{stage}: no CCHC broadcast is planned for {month}; the month ends in "
        f"{days:.1f} days",
        dedupe_key=f"cchc-missing:{station_id}:{month}:{stage}",
    )
    return [w] if w else []


def _check_upcoming(
    session: Session, station_id: int, programme_id: int, tz: ZoneInfo, now: datetime
) -> list[ScheduleWarning]:
    found: list[ScheduleWarning] = []
    upcoming = session.scalars(
        select(Broadcast).where(
            Broadcast.station_id == station_id,
            Broadcast.programme_id == programme_id,
            Broadcast.status.in_(service.ACTIVE),
            Broadcast.starts_at > now,
            Broadcast.starts_at <= now + timedelta(days=7),
        )
    ).all()
    for broadcast in upcoming:
        stage = _stage(broadcast.starts_at - now)
        view = assembly.rundown_view(session, broadcast)
        if not view.compliant:
            problem, kind = view.problem, "outside-window"
        elif broadcast.status != BroadcastStatus.assembled.value:
            problem, kind = "it is not assembled yet", "unassembled"
        else:
            continue
        when = service.describe_local(broadcast.starts_at, tz)
        w = warnings.raise_warning(
            session,
            kind=f"cchc-{kind}",
            station_id=station_id,
            broadcast_id=broadcast.id,
            message=f"{stage}: the CCHC broadcast of {when} (broadcast {broadcast.id}): {problem}",
            dedupe_key=f"cchc-{kind}:b{broadcast.id}:{stage}",
        )
        found += [w] if w else []
    return found


def mark_missed(now: datetime) -> int:
    """Broadcasts whose end plus the grace period passed with no 'played' report are missed."""
    grace = timedelta(minutes=get_settings().missed_grace_minutes)
    new: list[ScheduleWarning] = []
    with unit_of_work() as session:
        played = exists().where(
            AsRunEvent.broadcast_id == Broadcast.id, AsRunEvent.status == "played"
        )
        overdue = session.scalars(
            select(Broadcast).where(
                Broadcast.status.in_(service.ACTIVE),
                Broadcast.starts_at < now - grace,
                ~played,
            )
        ).all()
        count = 0
        for broadcast in overdue:
            length = timedelta(milliseconds=broadcast.master_duration_ms or 0)
            if broadcast.starts_at + length + grace > now:
                continue
            broadcast.status = BroadcastStatus.missed.value
            count += 1
            w = warnings.raise_warning(
                session,
                kind="missed",
                station_id=broadcast.station_id,
                broadcast_id=broadcast.id,
                message=f"broadcast {broadcast.id} of {broadcast.starts_at.isoformat()} was not "
                "reported as played",
                dedupe_key=f"missed:b{broadcast.id}",
            )
            new += [w] if w else []
        session.flush()
    _notify(new)
    return count
