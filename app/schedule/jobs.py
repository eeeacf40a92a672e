"""Scheduling's jobs (rolling plan, fill and assemble, CCHC checks, double bookings, missed
broadcasts): plain functions of `now`, idempotent, safe to run twice.

Each job works out what to do from the database (not from when it was triggered), so a run
missed during downtime is made up by the next one, once: fill looks only at broadcasts
still ahead, and the missed broadcasts of the days the scheduler was down come out as one
warning per station and month. `app.schedule.runner` registers them.

Which items each warning group holds (app.schedule.warnings):

* missed: the month's broadcasts marked missed, except those created after their own
  start (history entered late: they count in reports, but nobody could have aired them);
  a late as-run turns one aired, and the group shrinks.
* underfilled: broadcasts the fill found short of approved material; an item goes when
  its broadcast is assembled (or aired, or cancelled).
* cchc-missing: a month, from the current one to EARLY_MONTHS ahead, with no CCHC
  broadcast, at once; T-7 and T-1 before the month ends escalate it. It goes when the
  month gets its broadcast.
* cchc-unassembled, cchc-outside-window: a CCHC broadcast within 7 days (T-7, then T-1)
  that is not assembled, or does not fit its window; the item goes when that is put
  right, and stays once the broadcast has started that way.

Double bookings on ip stations' village clusters (`overlap`) are single findings
(`warnings.raise_warning`), each stored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, selectinload

from app.config import get_settings
from app.db import unit_of_work
from app.errors import LoaxaError
from app.playout.models import AsRunEvent
from app.playout.playlists import precedence
from app.schedule import assembly, filling, service, warnings
from app.schedule.cadence import local_month, month_bounds_utc
from app.schedule.models import Broadcast, BroadcastStatus, ScheduleWarning
from app.schedule.planning import add_months
from app.schedule.runs import run_exclusive
from app.schedule.warnings import Change
from app.stations.models import Network, Programme, Station, Village
from app.stations.network import network_on
from app.stations.overlaps import Clash
from app.stations.service import CCHC, station_clashes

log = logging.getLogger("loaxa.scheduler")

EARLY_MONTHS = 2  # a month without its CCHC broadcast is told this many months ahead
T_KINDS = ("cchc-unassembled", "cchc-outside-window")


def _hour_bucket(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H")


def _village_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Village.id, Village.name).where(Village.id.in_(wanted)))
    return dict(rows.tuples().all())


def _item(
    broadcast: Broadcast,
    names: dict[int, str],
    *,
    detail: str | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    village = names.get(broadcast.village_id) if broadcast.village_id is not None else None
    return warnings.broadcast_item(
        broadcast_id=broadcast.id,
        starts_at=broadcast.starts_at,
        village_id=broadcast.village_id,
        village=village,
        detail=detail,
        stage=stage,
    )


# --------------------------------------------------------------------------- fill


def fill_and_assemble(now: datetime) -> dict[str, int]:
    """Fill and assemble broadcasts starting within the next N days (setting fill_days_ahead).

    Only broadcasts still ahead: after downtime, days already past are not filled again.
    """
    horizon = now + timedelta(days=get_settings().fill_days_ahead)
    with unit_of_work(write=False) as session:
        due = session.scalars(
            select(Broadcast.id)
            .join(Programme, Programme.id == Broadcast.programme_id)
            .where(
                Programme.source_kind.is_(None),  # a relay has no rundown to fill
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
    counts["underfilled_resolved"] = _sweep_underfilled()
    return counts


def _fill_one(broadcast_id: int, now: datetime) -> str:
    with unit_of_work() as session:
        broadcast = service.get_broadcast(session, broadcast_id, for_update=True)
        result = filling.fill_rundown(session, broadcast)
        view = assembly.rundown_view(session, broadcast)
        group = partial(
            warnings.update_group,
            session,
            kind="underfilled",
            station_id=broadcast.station_id,
            month=broadcast.local_month,
        )
        if not view.compliant:
            missing = result.missing_ms if result else 0
            detail = (
                f"{missing / 60000:.1f} minutes of approved material are missing"
                if missing
                else view.problem
            )
            names = _village_names(session, [broadcast.village_id])
            change = group(put=[_item(broadcast, names, detail=detail)])
            outcome = "underfilled"
        else:
            change = group(drop=[f"b{broadcast.id}"])
            outcome = "ready"
    warnings.notify([change])
    if outcome == "ready":
        try:
            assembly.assemble_broadcast(broadcast_id)
            return "assembled"
        except LoaxaError as exc:
            log.warning("broadcast %s not assembled: %s", broadcast_id, exc.message)
            return "failed"
    return outcome


def _sweep_underfilled() -> int:
    """Items of broadcasts that got their material (assembled, aired) or were cancelled go."""
    done = (
        BroadcastStatus.assembled.value,
        BroadcastStatus.aired.value,
        BroadcastStatus.cancelled.value,
    )
    changes: list[Change | None] = []
    with unit_of_work() as session:
        groups = warnings.open_groups(session, "underfilled")
        ids = {i["broadcast_id"] for g in groups for i in g.items or []}
        status = dict(
            session.execute(select(Broadcast.id, Broadcast.status).where(Broadcast.id.in_(ids)))
            .tuples()
            .all()
        )
        for g in groups:
            items = g.items or []
            gone = [i["key"] for i in items if status.get(i["broadcast_id"], "cancelled") in done]
            if gone and g.station_id is not None and g.month is not None:
                changes.append(
                    warnings.update_group(
                        session,
                        kind="underfilled",
                        station_id=g.station_id,
                        month=g.month,
                        drop=gone,
                    )
                )
    warnings.notify(changes)
    return sum(1 for c in changes if c and c.change == "resolved")


# --------------------------------------------------------------------------- CCHC checks


def check_cchc(now: datetime) -> int:
    """Months without their CCHC broadcast (at once, EARLY_MONTHS ahead), and T-7 / T-1
    warnings for a CCHC broadcast that is unfilled, unassembled or outside its window.
    Returns how many groups changed."""
    with unit_of_work() as session:
        stations = session.execute(
            select(Station.id, Station.timezone, Programme.id)
            .join(Programme, Programme.station_id == Station.id)
            .where(Programme.code == CCHC)
        ).all()
        changes = _check_missing(session, stations, now)
        changes += _check_upcoming(session, stations, now)
    warnings.notify(changes)
    return sum(1 for c in changes if c)


def _stage(until: timedelta) -> str | None:
    if until <= timedelta(days=1):
        return "T-1"
    if until <= timedelta(days=7):
        return "T-7"
    return None


def _check_missing(
    session: Session, stations: Sequence[Any], now: datetime
) -> list[Change | None]:
    programmes = {sid: pid for sid, _, pid in stations}
    # (station, month) -> stage: the months to look at, now and the open groups'.
    wanted: dict[tuple[int, str], str | None] = {}
    for sid, tz_name, _ in stations:
        tz = ZoneInfo(tz_name)
        first = local_month(now, tz)
        _, month_end = month_bounds_utc(first, tz)
        wanted[(sid, first)] = _stage(month_end - now)
        for ahead in range(1, EARLY_MONTHS + 1):
            wanted[(sid, add_months(first, ahead))] = None
    for g in warnings.open_groups(session, "cchc-missing"):
        if g.station_id is not None and g.station_id in programmes and g.month is not None:
            wanted.setdefault((g.station_id, g.month), g.stage)  # a month gone by stays so
    months = {m for _, m in wanted}
    have = set(
        session.execute(
            select(Broadcast.station_id, Broadcast.local_month).where(
                Broadcast.programme_id.in_(set(programmes.values())),
                Broadcast.local_month.in_(months),
                Broadcast.status != BroadcastStatus.cancelled.value,
            )
        )
        .tuples()
        .all()
    )
    known = warnings.groups_by_key(
        session, [warnings.group_key("cchc-missing", sid, m) for sid, m in wanted]
    )
    changes: list[Change | None] = []
    for (sid, month), stage in sorted(wanted.items()):
        items = [] if (sid, month) in have else [{"key": month, "month": month}]
        changes.append(
            warnings.sync_group(
                session,
                kind="cchc-missing",
                station_id=sid,
                month=month,
                items=items,
                stage=stage,
                known=known.get(warnings.group_key("cchc-missing", sid, month)),
            )
        )
    return changes


def _check_upcoming(
    session: Session, stations: Sequence[Any], now: datetime
) -> list[Change | None]:
    found: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    upcoming = session.scalars(
        select(Broadcast).where(
            Broadcast.programme_id.in_([pid for _, _, pid in stations]),
            Broadcast.status.in_(service.ACTIVE),
            Broadcast.starts_at > now,
            Broadcast.starts_at <= now + timedelta(days=7),
        )
    ).all()
    for broadcast in upcoming:
        view = assembly.rundown_view(session, broadcast)
        if not view.compliant:
            problem, kind = view.problem, "cchc-outside-window"
        elif broadcast.status != BroadcastStatus.assembled.value:
            problem, kind = "it is not assembled yet", "cchc-unassembled"
        else:
            continue
        stage = _stage(broadcast.starts_at - now)
        key = (kind, broadcast.station_id, broadcast.local_month)
        found[key].append(_item(broadcast, {}, detail=problem, stage=stage))
    in_scope = {b.id for b in upcoming}
    groups = {
        (g.kind, g.station_id, g.month): g
        for g in warnings.open_groups(session, T_KINDS)
        if g.station_id is not None and g.month is not None
    }
    old_ids = {i["broadcast_id"] for g in groups.values() for i in g.items or []} - in_scope
    # A broadcast that started unassembled or outside its window stays in its group (it is
    # then also missed); one moved away, cancelled or put right goes.
    started = set(
        session.scalars(
            select(Broadcast.id).where(
                Broadcast.id.in_(old_ids),
                Broadcast.starts_at <= now,
                Broadcast.status != BroadcastStatus.cancelled.value,
            )
        )
    )
    changes: list[Change | None] = []
    for kind, sid, month in sorted({*found, *groups}):
        row = groups.get((kind, sid, month))
        kept = [i for i in (row.items if row else None) or [] if i["broadcast_id"] in started]
        items = found.get((kind, sid, month), []) + kept
        changes.append(
            warnings.sync_group(
                session,
                kind=kind,
                station_id=sid,
                month=month,
                items=items,
                stage=warnings.most_urgent([i.get("stage") for i in items]),
                known=row,
            )
        )
    return changes


# --------------------------------------------------------------------------- overlaps


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
    warnings.notify(new)
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


# --------------------------------------------------------------------------- missed


def mark_missed(now: datetime) -> int:
    """Broadcasts whose end plus the grace period passed with no 'played' report are missed;
    the missed warnings of their months (and of every open one) are brought up to date."""
    grace = timedelta(minutes=get_settings().missed_grace_minutes)
    with unit_of_work() as session:
        played = select(AsRunEvent.id).where(
            AsRunEvent.broadcast_id == Broadcast.id, AsRunEvent.status == "played"
        )
        overdue = session.execute(
            select(Broadcast, Programme.source_kind, Programme.max_duration_ms)
            .join(Programme, Programme.id == Broadcast.programme_id)
            .where(
                Broadcast.status.in_(service.ACTIVE),
                Broadcast.starts_at < now - grace,
                ~played.exists(),
            )
        ).all()
        touched: set[tuple[int, str]] = set()
        count = 0
        for broadcast, source_kind, window_ms in overdue:
            # A relay lasts its exact window; a file its master.
            length = timedelta(
                milliseconds=window_ms if source_kind else broadcast.master_duration_ms or 0
            )
            if broadcast.starts_at + length + grace > now:
                continue
            broadcast.status = BroadcastStatus.missed.value
            touched.add((broadcast.station_id, broadcast.local_month))
            count += 1
        session.flush()
        changes = _sync_missed(session, touched)
    warnings.notify(changes)
    return count


def _sync_missed(session: Session, touched: set[tuple[int, str]]) -> list[Change | None]:
    groups: dict[tuple[int, str], ScheduleWarning] = {
        (g.station_id, g.month): g
        for g in warnings.open_groups(session, "missed")
        if g.station_id is not None and g.month is not None
    }
    pairs = sorted(touched | set(groups))
    items: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for start in range(0, len(pairs), 500):
        rows = session.execute(
            select(Broadcast, Village.name)
            .outerjoin(Village, Village.id == Broadcast.village_id)
            .where(
                tuple_(Broadcast.station_id, Broadcast.local_month).in_(pairs[start : start + 500]),
                Broadcast.status == BroadcastStatus.missed.value,
                # History entered late was never going to air: it raises nothing.
                Broadcast.created_at <= Broadcast.starts_at,
            )
        ).all()
        for b, name in rows:
            names = {b.village_id: name} if b.village_id is not None and name else {}
            items[(b.station_id, b.local_month)].append(_item(b, names))
    return [
        warnings.sync_group(
            session,
            kind="missed",
            station_id=sid,
            month=month,
            items=items.get((sid, month), []),
            known=groups.get((sid, month)),
        )
        for sid, month in pairs
    ]
