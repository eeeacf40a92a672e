"""The rolling plan: every station planned from now through the horizon, by the scheduler.

Nobody has to remember to plan next year: every run plans each station's current local
month and the next ones (LOAXA_PLAN_HORIZON_MONTHS in all) through the same code as
`loaxa plan` (app.schedule.planning.plan_window), so what staff changed by hand stays and a
changed cadence re-plans only untouched future broadcasts.

Most runs have nothing to do, and find that out without looking at a single broadcast:
plan_states remembers, per station, the last month planned and a fingerprint of the rules
it was planned from (time zone, programmes, villages, cadences). A station is planned
again only when a month enters its horizon (then only the new months) or its rules
changed (then the whole horizon, re-planned).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.config import check_plan_horizon, get_settings
from app.db import unit_of_work
from app.schedule.cadence import local_month
from app.schedule.models import PlanState
from app.schedule.planning import PlanResult, Target, Window, add_months, plan_window
from app.schedule.planning import station_targets as read_targets
from app.stations.models import Station


def fingerprint(timezone: str, targets: Sequence[Target]) -> str:
    """Pure: a digest of everything the plan of a station reads."""
    rules = sorted((t.programme_id, t.village_id or 0, t.cadence) for t in targets)
    return hashlib.sha256(json.dumps([timezone, rules]).encode()).hexdigest()


@dataclass(frozen=True)
class _Work:
    """Stations that need the same window planned, and their rules."""

    window: Window
    replan: bool
    targets: dict[int, list[Target]]
    fingerprints: dict[int, str]


def due(session: Session, *, now: datetime, months: int) -> list[_Work]:
    """What the stations need: nothing, the months that entered the horizon, or (rules
    changed, or never planned) the whole horizon re-planned."""
    zones = dict(session.execute(select(Station.id, Station.timezone)).tuples().all())
    states = {s.station_id: s for s in session.scalars(select(PlanState))}
    targets = read_targets(session, list(zones))
    groups: dict[tuple[str, str, bool], _Work] = {}
    for sid, tz_name in zones.items():
        first = local_month(now, ZoneInfo(tz_name))
        last = add_months(first, months - 1)
        digest = fingerprint(tz_name, targets[sid])
        state = states.get(sid)
        if state is None or state.fingerprint != digest:
            key = (first, last, True)
        elif state.planned_through < last:
            key = (max(first, add_months(state.planned_through, 1)), last, False)
        else:
            continue
        work = groups.get(key)
        if work is None:
            work = groups[key] = _Work(Window(key[0], key[1], now), key[2], {}, {})
        work.targets[sid] = targets[sid]
        work.fingerprints[sid] = digest
    return list(groups.values())


def roll(
    *, now: datetime, months: int | None = None, workers: int | None = None, chunk: int = 200
) -> PlanResult:
    """Run the rolling plan for every station; idempotent, and cheap when nothing is due.

    Each chunk of stations is its own transaction (planned broadcasts and plan_states
    together), so a run stopped half-way is finished by the next one.
    """
    months = check_plan_horizon(months or get_settings().plan_horizon_months)
    with unit_of_work(write=False) as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        work = due(session, now=now, months=months)
    if workers is None:
        workers = 1 if sqlite else 2  # SQLite has one writer at a time anyway
    parts = [
        (w, ids[i : i + chunk])
        for w in work
        for ids in [sorted(w.targets)]
        for i in range(0, len(ids), chunk)
    ]
    total = PlanResult()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for part in pool.map(lambda p: _plan_chunk(p[0], p[1], now), parts):
            total.add(part)
    return total


def _plan_chunk(work: _Work, station_ids: list[int], now: datetime) -> PlanResult:
    with unit_of_work() as session:
        result = plan_window(
            session,
            targets=[t for sid in station_ids for t in work.targets[sid]],
            station_ids=station_ids,
            window=work.window,
            now=now,
            replan=work.replan,
        )
        _save_states(session, work, station_ids, now)
        for sid, (cancelled, moved) in sorted(result.by_station.items()):
            # Broadcasts staff can see changed: the audit log says who (the plan) and why.
            audit.record(
                session,
                actor=None,
                actor_name="rolling plan",
                action="broadcast.plan",
                entity="station",
                entity_id=sid,
                after={
                    "months": [work.window.first, work.window.last],
                    "cancelled": cancelled,
                    "moved": moved,
                },
            )
    return result


def _save_states(session: Session, work: _Work, station_ids: list[int], now: datetime) -> None:
    rows = [
        {
            "station_id": sid,
            "fingerprint": work.fingerprints[sid],
            "planned_through": work.window.last,
            "updated_at": now,
        }
        for sid in station_ids
    ]
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = make(PlanState).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["station_id"],
            set_={
                "fingerprint": stmt.excluded.fingerprint,
                "planned_through": stmt.excluded.planned_through,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )
