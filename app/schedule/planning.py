"""Planning: turn programmes' cadences into a year of broadcasts, idempotently and in bulk."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.schedule.cadence import parse_cadence, year_occurrences
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.stations.models import Programme, Station, Village

UNIQUE_PERIOD = ["station_id", "programme_id", "period_key"]
UNIQUE_WHERE = text("status != 'cancelled'")


@dataclass(frozen=True)
class Slot:
    """One broadcast the cadence asks for."""

    station_id: int
    programme_id: int
    village_id: int | None
    starts_at: datetime
    period_key: str
    local_month: str


@dataclass
class PlanResult:
    created: int = 0
    existing: int = 0
    cancelled: int = 0


def station_slots(
    station: Station, programmes: Sequence[Programme], villages: Sequence[Village], year: int
) -> list[Slot]:
    """Pure: every slot of the year for the station's programmes (local months and days)."""
    slots: list[Slot] = []
    for programme in programmes:
        default = _canonical(programme.cadence)
        targets: list[tuple[int | None, str]] = (
            [(None, default)]
            if programme.scope == "station"
            else [(v.id, _canonical(v.cadence) if v.cadence else default) for v in villages]
        )
        for village_id, cadence in targets:
            for at, month, local in _year_slots(cadence, station.timezone, year):
                if local is None:  # monthly
                    key = month if village_id is None else f"v{village_id}:{month}"
                else:
                    key = f"v{village_id}:{local}"
                slots.append(Slot(station.id, programme.id, village_id, at, key, month))
    return slots


@lru_cache(maxsize=1024)
def _canonical_cached(raw: str) -> str:
    return json.dumps(parse_cadence(json.loads(raw)).model_dump(mode="json"), sort_keys=True)


def _canonical(cadence: dict[str, Any]) -> str:
    return _canonical_cached(json.dumps(cadence, sort_keys=True))


@lru_cache(maxsize=1024)
def _year_slots(
    cadence_json: str, tz_name: str, year: int
) -> tuple[tuple[datetime, str, str | None], ...]:
    """(UTC start, local month, local slot or None for monthly) of a cadence's year.

    Cached: thousands of villages share a handful of cadences, so a country-wide plan
    computes each one once. The key format matches app.schedule.service.period_key_for.
    """
    cadence = parse_cadence(json.loads(cadence_json))
    tz = ZoneInfo(tz_name)
    out = []
    for at in year_occurrences(cadence, year, tz):
        local = at.astimezone(tz)
        slot = None if cadence.kind == "monthly" else local.strftime("%Y-%m-%dT%H:%M")
        out.append((at, local.strftime("%Y-%m"), slot))
    return tuple(out)


def insert_slots(session: Session, slots: Sequence[Slot], *, now: datetime) -> int:
    """Insert the slots that do not exist yet (ON CONFLICT DO NOTHING); returns how many."""
    if not slots:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert_pg(session, slots, now=now)
    rows: list[dict[str, Any]] = [
        {**dict(zip(SLOT_COLUMNS, _slot_values(s), strict=True)), **_row_defaults(now)}
        for s in slots
    ]
    table = cast(Table, Broadcast.__table__)
    # Existing periods are skipped by the partial unique index; RETURNING counts the new rows.
    stmt = (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=UNIQUE_PERIOD, index_where=UNIQUE_WHERE)
        .returning(table.c.id)
    )
    created = 0
    connection = session.connection()
    for start in range(0, len(rows), 5000):
        created += len(connection.execute(stmt, rows[start : start + 5000]).all())
    return created


SLOT_COLUMNS = (
    "station_id",
    "programme_id",
    "village_id",
    "starts_at",
    "period_key",
    "local_month",
)
DEFAULT_COLUMNS = ("status", "priority", "created_at", "updated_at", "version")


def _slot_values(s: Slot) -> tuple[Any, ...]:
    return (s.station_id, s.programme_id, s.village_id, s.starts_at, s.period_key, s.local_month)


def _row_defaults(now: datetime) -> dict[str, Any]:
    return {
        "status": BroadcastStatus.planned.value,
        "priority": "normal",
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _copy_insert_pg(session: Session, slots: Sequence[Slot], *, now: datetime) -> int:
    """COPY the slots into a temporary table, then insert the missing ones in one statement.

    Row-by-row INSERTs manage a few thousand rows a second; a country-wide plan has
    millions of slots.
    """
    cols = ", ".join(SLOT_COLUMNS)
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS plan_slots "
            "(station_id int, programme_id int, village_id int, starts_at timestamptz, "
            "period_key varchar(64), local_month varchar(7)) ON COMMIT DELETE ROWS"
        )
        cur.execute("TRUNCATE plan_slots")
        with cur.copy(f"COPY plan_slots ({cols}) FROM STDIN") as copy:
            for s in slots:
                copy.write_row(_slot_values(s))
        cur.execute(
            f"INSERT INTO broadcasts ({cols}, {', '.join(DEFAULT_COLUMNS)}) "
            f"SELECT {cols}, 'planned', 'normal', %s, %s, 1 FROM plan_slots "
            "ON CONFLICT (station_id, programme_id, period_key) WHERE status != 'cancelled' "
            "DO NOTHING",
            (now, now),
        )
        return max(cur.rowcount, 0)


def plan_year(
    session: Session,
    *,
    station_id: int,
    year: int,
    actor: User | None = None,
    now: datetime | None = None,
) -> PlanResult:
    """Create the year's broadcasts from the cadences; running it again changes nothing.

    A monthly programme's month that already has a broadcast (whenever it was moved to) is
    left alone. Weekly slots that the cadence no longer asks for are cancelled only when they
    are still in the future, planned, and have no rundown; nothing is ever deleted.
    """
    now = now or clock.now()
    station = session.get_one(Station, station_id)
    programmes = list(session.scalars(select(Programme).where(Programme.station_id == station_id)))
    villages = list(session.scalars(select(Village).where(Village.station_id == station_id)))
    slots = station_slots(station, programmes, villages, year)
    created = insert_slots(session, slots, now=now)
    cancelled = _cancel_obsolete(
        session, station=station, programmes=programmes, slots=slots, year=year, now=now
    )
    result = PlanResult(created=created, existing=len(slots) - created, cancelled=cancelled)
    audit.record(
        session,
        actor=actor,
        action="broadcast.plan",
        entity="station",
        entity_id=station_id,
        after={"year": year, **result.__dict__},
    )
    return result


def _cancel_obsolete(
    session: Session,
    *,
    station: Station,
    programmes: Sequence[Programme],
    slots: Sequence[Slot],
    year: int,
    now: datetime,
) -> int:
    weekly = [p.id for p in programmes if parse_cadence(p.cadence).kind == "weekly"]
    if not weekly:
        return 0
    wanted = {(s.programme_id, s.period_key) for s in slots}
    has_rundown = select(RundownItem.broadcast_id).distinct()
    candidates = session.execute(
        select(Broadcast.id, Broadcast.programme_id, Broadcast.period_key).where(
            Broadcast.station_id == station.id,
            Broadcast.programme_id.in_(weekly),
            Broadcast.status == BroadcastStatus.planned.value,
            Broadcast.local_month.like(f"{year:04d}-%"),
            Broadcast.starts_at > now,
            Broadcast.id.not_in(has_rundown),
        )
    ).all()
    obsolete = [bid for bid, pid, key in candidates if (pid, key) not in wanted]
    if obsolete:
        session.execute(
            update(Broadcast)
            .where(Broadcast.id.in_(obsolete))
            .values(
                status=BroadcastStatus.cancelled.value,
                updated_at=now,
                version=Broadcast.version + 1,
            )
        )
    return len(obsolete)


def plan_many(session: Session, *, station_ids: Sequence[int], year: int) -> PlanResult:
    """Plan several stations in one go (bulk, for large deployments and the benchmark)."""
    total = PlanResult()
    now = clock.now()
    stations = {
        s.id: s for s in session.scalars(select(Station).where(Station.id.in_(station_ids)))
    }
    programmes: dict[int, list[Programme]] = {}
    for p in session.scalars(select(Programme).where(Programme.station_id.in_(station_ids))):
        programmes.setdefault(p.station_id, []).append(p)
    villages: dict[int, list[Village]] = {}
    for v in session.scalars(select(Village).where(Village.station_id.in_(station_ids))):
        villages.setdefault(v.station_id, []).append(v)
    slots: list[Slot] = []
    for sid in station_ids:
        slots.extend(
            station_slots(stations[sid], programmes.get(sid, []), villages.get(sid, []), year)
        )
    total.created = insert_slots(session, slots, now=now)
    total.existing = len(slots) - total.created
    return total


def today_local(tz: ZoneInfo) -> date:
    return clock.now().astimezone(tz).date()


def plan_stations_parallel(
    station_ids: Sequence[int], *, year: int, workers: int = 2, chunk: int = 200
) -> PlanResult:
    """Plan many stations in chunks over several connections (each chunk its own transaction).

    For country-wide deployments: the database checks foreign keys and indexes row by row,
    so spreading chunks over connections uses every core. Each chunk is idempotent, so a
    failure half-way is repaired by running it again.
    """
    from concurrent.futures import ThreadPoolExecutor

    from app.db import unit_of_work

    def one(ids: Sequence[int]) -> PlanResult:
        with unit_of_work() as session:
            return plan_many(session, station_ids=ids, year=year)

    chunks = [station_ids[i : i + chunk] for i in range(0, len(station_ids), chunk)]
    total = PlanResult()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(one, chunks):
            total.created += part.created
            total.existing += part.existing
    return total
