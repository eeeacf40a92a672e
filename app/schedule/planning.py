"""Planning: turn programmes' cadences into a year of broadcasts, idempotently and in bulk."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, selectinload

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.schedule.cadence import year_occurrences
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.stations.cadence import parse_cadence
from app.stations.models import Programme, Station, Village
from app.stations.network import History, history_of, network_at

UNIQUE_PERIOD = ["station_id", "programme_id", "period_key"]
UNIQUE_WHERE = text("status != 'cancelled'")


@dataclass(frozen=True)
class PlannedSlot:
    """One broadcast the cadence asks for."""

    station_id: int
    programme_id: int
    village_id: int | None
    starts_at: datetime
    period_key: str
    local_month: str
    network: str  # the station's kind on the slot's local day


@dataclass
class PlanResult:
    created: int = 0
    existing: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class Target:
    """One programme on a station (or on one of its villages) and the cadence it follows."""

    station_id: int
    programme_id: int
    village_id: int | None
    cadence: str  # canonical JSON (see _canonical)
    timezone: str
    networks: History  # the station's network kinds through time (app.stations.network)


def plan_targets(
    station: Station, programmes: Sequence[Programme], villages: Sequence[Village]
) -> list[Target]:
    """Pure: what the station's programmes air on: the station, or each village."""
    targets: list[Target] = []
    networks = history_of(station)
    for programme in programmes:
        if programme.scope == "station":
            cadence = _canonical(programme.cadence_for(None))
            targets.append(
                Target(station.id, programme.id, None, cadence, station.timezone, networks)
            )
            continue
        for v in villages:
            cadence = _canonical(programme.cadence_for(v))
            targets.append(
                Target(station.id, programme.id, v.id, cadence, station.timezone, networks)
            )
    return targets


def target_slots(target: Target, year: int) -> list[PlannedSlot]:
    """Pure: every slot of the year for one target (local months and days)."""
    return [
        PlannedSlot(
            target.station_id,
            target.programme_id,
            target.village_id,
            occurrence.at,
            _period_key(target.village_id, occurrence),
            occurrence.month,
            network_at(target.networks, occurrence.day),
        )
        for occurrence in _year_slots(target.cadence, target.timezone, year)
    ]


def station_slots(
    station: Station, programmes: Sequence[Programme], villages: Sequence[Village], year: int
) -> list[PlannedSlot]:
    """Pure: every slot of the year for the station's programmes (local months and days)."""
    targets = plan_targets(station, programmes, villages)
    return [slot for target in targets for slot in target_slots(target, year)]


@dataclass(frozen=True)
class _Occurrence:
    at: datetime  # UTC start
    at_text: str  # the same, as PostgreSQL's COPY reads it
    month: str  # local month "YYYY-MM"
    local: str | None  # local slot "YYYY-MM-DDTHH:MM", None for a monthly cadence
    day: date  # local date


def _period_key(village_id: int | None, occurrence: _Occurrence) -> str:
    """A broadcast's period (see Broadcast.period_key and service.period_key_for)."""
    if occurrence.local is None:  # monthly
        return occurrence.month if village_id is None else f"v{village_id}:{occurrence.month}"
    return f"v{village_id}:{occurrence.local}"


@lru_cache(maxsize=1024)
def _canonical_cached(raw: str) -> str:
    return json.dumps(parse_cadence(json.loads(raw)).model_dump(mode="json"), sort_keys=True)


def _canonical(cadence: dict[str, Any]) -> str:
    return _canonical_cached(json.dumps(cadence, sort_keys=True))


@lru_cache(maxsize=1024)
def _year_slots(cadence_json: str, tz_name: str, year: int) -> tuple[_Occurrence, ...]:
    """A cadence's occurrences in a local year.

    Cached: thousands of villages share a handful of cadences, so a country-wide plan
    computes each one once. The key format matches app.schedule.service.period_key_for.
    """
    cadence = parse_cadence(json.loads(cadence_json))
    tz = ZoneInfo(tz_name)
    out = []
    for at in year_occurrences(cadence, year, tz):
        local = at.astimezone(tz)
        slot = None if cadence.kind == "monthly" else local.strftime("%Y-%m-%dT%H:%M")
        out.append(_Occurrence(at, at.isoformat(), local.strftime("%Y-%m"), slot, local.date()))
    return tuple(out)


def copy_text(targets: Sequence[Target], year: int) -> Iterator[str]:
    """The slots of targets as PostgreSQL COPY text (SLOT_COLUMNS), one block per target.

    The bulk path of a country-wide plan: formatting text is several times cheaper than
    making a PlannedSlot and a tuple per row, and COPY reads it as it is.
    """
    for t in targets:
        village = "\\N" if t.village_id is None else t.village_id
        head = f"{t.station_id}\t{t.programme_id}\t{village}\t"
        occurrences = _year_slots(t.cadence, t.timezone, year)
        if len({kind for _, kind in t.networks}) <= 1:  # one kind all along: the usual case
            kind = network_at(t.networks, date.min)
            yield "".join(
                f"{head}{o.at_text}\t{_period_key(t.village_id, o)}\t{o.month}\t{kind}\n"
                for o in occurrences
            )
        else:
            yield "".join(
                f"{head}{o.at_text}\t{_period_key(t.village_id, o)}\t{o.month}\t"
                f"{network_at(t.networks, o.day)}\n"
                for o in occurrences
            )


def insert_slots(session: Session, slots: Sequence[PlannedSlot], *, now: datetime) -> int:
    """Insert the slots that do not exist yet (ON CONFLICT DO NOTHING); returns how many."""
    if not slots:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        lines = ("\t".join(_copy_field(v) for v in _slot_values(s)) + "\n" for s in slots)
        return _copy_insert_pg(session, lines, now=now)
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
    "network",
)
DEFAULT_COLUMNS = ("status", "priority", "created_at", "updated_at", "version")


def _slot_values(s: PlannedSlot) -> tuple[Any, ...]:
    return (
        s.station_id,
        s.programme_id,
        s.village_id,
        s.starts_at,
        s.period_key,
        s.local_month,
        s.network,
    )


def _row_defaults(now: datetime) -> dict[str, Any]:
    return {
        "status": BroadcastStatus.planned.value,
        "priority": "normal",
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def insert_targets(session: Session, targets: Sequence[Target], *, year: int, now: datetime) -> int:
    """Insert the year's slots of targets that do not exist yet; returns how many."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert_pg(session, copy_text(targets, year), now=now)
    return insert_slots(session, [s for t in targets for s in target_slots(t, year)], now=now)


def _copy_field(value: Any) -> str:
    """One value in COPY text format (our values hold no tabs, newlines or backslashes)."""
    if value is None:
        return "\\N"
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _copy_insert_pg(session: Session, text_blocks: Iterable[str], *, now: datetime) -> int:
    """COPY slots (COPY text, SLOT_COLUMNS) into a temporary table, then insert the missing
    ones in one statement.

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
            "period_key varchar(64), local_month varchar(7), network varchar(8)) "
            "ON COMMIT DELETE ROWS"
        )
        cur.execute("TRUNCATE plan_slots")
        with cur.copy(f"COPY plan_slots ({cols}) FROM STDIN") as copy:
            for block in text_blocks:
                copy.write(block)
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
    slots: Sequence[PlannedSlot],
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
        s.id: s
        for s in session.scalars(
            select(Station)
            .where(Station.id.in_(station_ids))
            .options(selectinload(Station.networks))
        )
    }
    programmes: dict[int, list[Programme]] = {}
    for p in session.scalars(select(Programme).where(Programme.station_id.in_(station_ids))):
        programmes.setdefault(p.station_id, []).append(p)
    villages: dict[int, list[Village]] = {}
    for v in session.scalars(select(Village).where(Village.station_id.in_(station_ids))):
        villages.setdefault(v.station_id, []).append(v)
    targets: list[Target] = []
    for sid in station_ids:
        targets += plan_targets(stations[sid], programmes.get(sid, []), villages.get(sid, []))
    slots = sum(len(_year_slots(t.cadence, t.timezone, year)) for t in targets)
    total.created = insert_targets(session, targets, year=year, now=now)
    total.existing = slots - total.created
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
