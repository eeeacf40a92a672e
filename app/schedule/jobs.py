"""Scheduling's jobs (fill and assemble, CCHC checks, double bookings, missed broadcasts):
plain functions of `now`, idempotent, safe to run twice.

Each job works out what to do from the database (not from when it was triggered), so a run
missed during downtime is made up by the next one. `app.schedule.runner` registers them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from app.config import get_settings
from app.db import unit_of_work
from app.errors import LoaxaError
from app.playout.models import AsRunEvent
from app.playout.playlists import precedence
from app.schedule import assembly, filling, service, warnings
from app.schedule.cadence import local_month, month_bounds_utc
from app.schedule.models import Broadcast, BroadcastStatus, ScheduleWarning
from app.schedule.runs import run_exclusive
from app.stations.models import Network, Programme, Station, Village
from app.stations.network import network_on
from app.stations.overlaps import Clash
from app.stations.service import CCHC, station_clashes

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


def check_overlaps(now: datetime) -> int:
    """Warn about double bookings on the village clusters of ip stations (app.stations.overlaps).

    Planning refuses a new one; these exist already: cadences that overlapped before the
    station became ip, and the coming week's broadcasts that overlap on a cluster (moved by
    hand, or planned before). The playlist lets one of two overlapping items win; the
    warning names the one that will not play.
    """
    new: list[ScheduleWarning] = []
    with unit_of_work() as session:
        for station in session.scalars(
            select(Station).options(selectinload(Station.networks)).order_by(Station.id)
        ):
            if network_on(station, date.max) == Network.ip.value:
                for clash in station_clashes(session, station):
                    new += _warn_clash(session, station, clash)
        new += _broadcast_overlaps(session, now)
    _notify(new)
    return len(new)


def _warn_clash(session: Session, station: Station, clash: Clash) -> list[ScheduleWarning]:
    # The same rules give the same key; a changed rule is a new finding.
    sides = [
        clash.village_cadence,
        clash.village_rule.max_duration_ms,
        clash.commune_rule.cadence,
        clash.commune_rule.max_duration_ms,
    ]
    rules = json.dumps(sides, sort_keys=True)
    digest = hashlib.sha256(rules.encode()).hexdigest()[:16]
    village, v_prog, c_prog = clash.key
    w = warnings.raise_warning(
        session,
        kind="overlap",
        station_id=station.id,
        message=f"station {station.id}: {clash.describe()}",
        dedupe_key=f"overlap:s{station.id}:v{village}:p{v_prog}:p{c_prog}:{digest}",
    )
    return [w] if w else []


def _broadcast_overlaps(session: Session, now: datetime) -> list[ScheduleWarning]:
    """The coming week's commune broadcasts of ip days against their villages' broadcasts."""
    open_ = [*service.ACTIVE, BroadcastStatus.missed.value]
    commune = session.execute(
        select(Broadcast, Programme.code, Programme.max_duration_ms, Station.timezone)
        .join(Programme, Programme.id == Broadcast.programme_id)
        .join(Station, Station.id == Broadcast.station_id)
        .where(
            Broadcast.village_id.is_(None),
            Broadcast.network == Network.ip.value,
            Broadcast.status.in_(open_),
            Broadcast.starts_at >= now,
            Broadcast.starts_at < now + timedelta(days=7),
        )
    ).all()
    found: list[ScheduleWarning] = []
    for c, c_code, c_max, tz_name in commune:
        c_end = c.starts_at + timedelta(milliseconds=c.master_duration_ms or c_max)
        rows = session.execute(
            select(Broadcast, Programme.code, Programme.max_duration_ms, Village.name)
            .join(Programme, Programme.id == Broadcast.programme_id)
            .join(Village, Village.id == Broadcast.village_id)
            .where(
                Broadcast.station_id == c.station_id,
                Broadcast.village_id.is_not(None),
                Broadcast.network == Network.ip.value,
                Broadcast.status.in_(open_),
                # Durations are at most a day (the programme rules' bound).
                Broadcast.starts_at > c.starts_at - timedelta(days=1),
                Broadcast.starts_at < c_end,
            )
        ).all()
        tz = ZoneInfo(tz_name)
        for v, v_code, v_max, v_name in rows:
            if v.starts_at + timedelta(milliseconds=v.master_duration_ms or v_max) <= c.starts_at:
                continue
            keys = {
                b.id: precedence(b.priority, b.village_id, b.starts_at, b.id) for b in (c, v)
            }
            loser = max((c, v), key=lambda b: keys[b.id])
            w = warnings.raise_warning(
                session,
                kind="overlap",
                station_id=c.station_id,
                broadcast_id=loser.id,
                message=f"village {v_name!r}: its {v_code} broadcast {v.id} "
                f"({service.describe_local(v.starts_at, tz)}) overlaps the commune's {c_code} "
                f"broadcast {c.id} ({service.describe_local(c.starts_at, tz)}) on the same "
                f"loudspeaker cluster; broadcast {loser.id} will not play there",
                dedupe_key=f"overlap:b{c.id}:b{v.id}:{c.starts_at:%Y%m%d%H%M}:"
                f"{v.starts_at:%Y%m%d%H%M}",
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
