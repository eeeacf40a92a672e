"""Planning: turn programmes' cadences into broadcasts, idempotently and in bulk.

One way to plan, whatever asks for it: a year (`loaxa plan --year`, the API), the coming
months (`loaxa plan --months`, the scheduler's rolling plan, app.schedule.rolling), or the
whole country at once (plan_stations_parallel). The slots the cadences ask for are staged
in a temporary table and compared with `broadcasts` in a few statements (plan_window).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    exists,
    insert,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.config import check_plan_horizon
from app.db import UTCDateTime
from app.errors import Invalid
from app.schedule.cadence import local_month, parse_month, year_occurrences
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.stations.cadence import parse_cadence
from app.stations.models import Programme, Station, Village, not_emergency_programme
from app.stations.network import History, history_of, network_at

DEFAULT_COLUMNS = ("status", "priority", "created_at", "updated_at", "version")


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
    moved: int = 0
    # station -> (cancelled, moved): who the re-planning changed, for the audit log.
    by_station: dict[int, tuple[int, int]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "existing": self.existing,
            "cancelled": self.cancelled,
            "moved": self.moved,
        }

    def add(self, other: PlanResult) -> None:
        self.created += other.created
        self.existing += other.existing
        self.cancelled += other.cancelled
        self.moved += other.moved
        self.by_station.update(other.by_station)


@dataclass(frozen=True)
class Window:
    """Local months first..last ("YYYY-MM", both included) of a plan; slots starting at or
    before not_before are not made (the rolling plan makes no history)."""

    first: str
    last: str
    not_before: datetime | None = None

    @classmethod
    def year(cls, year: int) -> Window:
        return cls(f"{year:04d}-01", f"{year:04d}-12")

    @classmethod
    def horizon(cls, now: datetime, tz: ZoneInfo, months: int) -> Window:
        """The current local month and the next ones, `months` in all, from now on."""
        first = local_month(now, tz)
        return cls(first, add_months(first, months - 1), now)


def add_months(month: str, n: int) -> str:
    """ "2024-11" plus 3 is "2025-02"."""
    year, mon = parse_month(month)
    index = year * 12 + (mon - 1) + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


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


def target_slots(target: Target, window: Window) -> list[PlannedSlot]:
    """Pure: every slot of the window's months for one target (local months and days)."""
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
        for occurrence in _window_slots(target.cadence, target.timezone, window.first, window.last)
    ]


def station_slots(
    station: Station, programmes: Sequence[Programme], villages: Sequence[Village], year: int
) -> list[PlannedSlot]:
    """Pure: every slot of the year for the station's programmes (local months and days)."""
    targets = plan_targets(station, programmes, villages)
    return [slot for target in targets for slot in target_slots(target, Window.year(year))]


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


@lru_cache(maxsize=4096)
def _window_slots(
    cadence_json: str, tz_name: str, first: str, last: str
) -> tuple[_Occurrence, ...]:
    """A cadence's occurrences in the local months first..last, in time order (cached)."""
    return tuple(
        o
        for year in range(int(first[:4]), int(last[:4]) + 1)
        for o in _year_slots(cadence_json, tz_name, year)
        if first <= o.month <= last
    )


def copy_text(targets: Sequence[Target], window: Window) -> Iterator[str]:
    """The window's slots of targets as PostgreSQL COPY text (SLOT_COLUMNS), one block per
    target.

    The bulk path of a country-wide plan: formatting text is several times cheaper than
    making a PlannedSlot and a tuple per row, and COPY reads it as it is.
    """
    for t in targets:
        village = "\\N" if t.village_id is None else t.village_id
        head = f"{t.station_id}\t{t.programme_id}\t{village}\t"
        occurrences = _window_slots(t.cadence, t.timezone, window.first, window.last)
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


SLOT_COLUMNS = (
    "station_id",
    "programme_id",
    "village_id",
    "starts_at",
    "period_key",
    "local_month",
    "network",
)

# What the cadences ask for, staged per transaction; the plan is then a few set operations
# between it and `broadcasts`, the same SQL on SQLite and PostgreSQL.
PLAN_SLOTS = Table(
    "plan_slots",
    MetaData(),
    Column("station_id", Integer),
    Column("programme_id", Integer),
    Column("village_id", Integer),
    Column("starts_at", UTCDateTime()),
    Column("period_key", String(64)),
    Column("local_month", String(7)),
    Column("network", String(8)),
)
_SLOTS_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS plan_slots (station_id int, programme_id int, "
    "village_id int, starts_at {ts}, period_key varchar(64), local_month varchar(7), "
    "network varchar(8)){tail}"
)


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


def _stage(session: Session, targets: Sequence[Target], window: Window) -> int:
    """Put the window's slots of targets into the plan_slots table; how many there are."""
    if session.get_bind().dialect.name == "postgresql":
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(_SLOTS_DDL.format(ts="timestamptz", tail=" ON COMMIT DELETE ROWS"))
            cur.execute("TRUNCATE plan_slots")
            # Row-by-row INSERTs manage a few thousand rows a second; a country-wide plan
            # has millions of slots.
            with cur.copy(f"COPY plan_slots ({', '.join(SLOT_COLUMNS)}) FROM STDIN") as copy:
                for block in copy_text(targets, window):
                    copy.write(block)
            # A temporary table has no statistics: without them the planner guesses it is
            # tiny and compares it row by row with `broadcasts` (hours for a country).
            cur.execute("ANALYZE plan_slots")
    else:
        session.execute(text(_SLOTS_DDL.format(ts="datetime", tail="")))
        session.execute(delete(PLAN_SLOTS))
        rows = [
            dict(zip(SLOT_COLUMNS, _slot_values(s), strict=True))
            for t in targets
            for s in target_slots(t, window)
        ]
        for start in range(0, len(rows), 5000):
            session.execute(insert(PLAN_SLOTS), rows[start : start + 5000])
    return sum(_count_after(t, window) for t in targets)


def _count_after(target: Target, window: Window) -> int:
    slots = _window_slots(target.cadence, target.timezone, window.first, window.last)
    if window.not_before is None:
        return len(slots)
    return len(slots) - bisect_right(slots, window.not_before, key=lambda o: o.at)


def _insert_staged(session: Session, *, window: Window, now: datetime) -> int:
    """Insert the staged slots nobody has made yet; how many were inserted.

    A slot is skipped when its period already has a live broadcast (the once-a-period
    index) or when the plan made it before (the plan-key index): a broadcast staff moved
    or cancelled is not made again. Slots at or before window.not_before are left out.
    """
    s = PLAN_SLOTS.c
    b = cast(Table, Broadcast.__table__)
    at = literal(now, UTCDateTime())
    rows = select(
        s.station_id,
        s.programme_id,
        s.village_id,
        s.starts_at,
        s.period_key,
        s.local_month,
        s.network,
        s.period_key,
        literal(1),
        literal(BroadcastStatus.planned.value),
        literal("normal"),
        at,
        at,
        literal(1),
    ).where(true())  # SQLite reads ON CONFLICT after a bare SELECT as a join clause
    if window.not_before is not None:
        rows = rows.where(s.starts_at > literal(window.not_before, UTCDateTime()))
    columns = [*SLOT_COLUMNS, "plan_key", "plan_version", *DEFAULT_COLUMNS]
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = make(b).from_select(columns, rows).on_conflict_do_nothing()
    # Core, not the ORM's bulk insert; SQLAlchemy keeps an INSERT's row count only when asked.
    result = session.connection().execute(stmt, execution_options={"preserve_rowcount": True})
    return max(result.rowcount, 0)


def _reconcile(
    session: Session, *, station_ids: Sequence[int], window: Window, now: datetime
) -> tuple[dict[int, int], dict[int, int]]:
    """Re-plan the future broadcasts the plan made and nobody touched since, against the
    staged slots: cancel those the cadence no longer asks for, move those whose slot moved
    (a monthly programme's new day, a new time zone). Returns {station: count} of both.

    Untouched: made by the plan, at the version the plan left it (not moved, filled,
    assembled, cancelled by anyone else), planned, with no rundown, still ahead.
    """
    s = PLAN_SLOTS.c
    b = cast(Table, Broadcast.__table__).c
    after_now = literal(now, UTCDateTime())
    untouched = and_(
        b.station_id.in_(station_ids),
        b.plan_key.is_not(None),
        b.version == b.plan_version,
        b.status == BroadcastStatus.planned.value,
        b.starts_at > after_now,
        b.local_month >= window.first,
        b.local_month <= window.last,
        ~exists().where(RundownItem.broadcast_id == b.id),
    )
    same_slot = and_(
        s.station_id == b.station_id, s.programme_id == b.programme_id, s.period_key == b.plan_key
    )
    table = cast(Table, Broadcast.__table__)
    if not session.execute(select(exists().where(untouched))).scalar():
        # A window planned for the first time (the rolling plan's first run for a country):
        # nothing to re-plan, so neither the staged plan's index nor the two joins.
        return Counter(), Counter()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Rows just inserted have no statistics yet: the planner then expects a handful of
        # broadcasts and looks each one up in plan_slots. With this index that costs a probe,
        # not a scan of the whole staged plan (hours for a country's first run).
        session.execute(
            text("CREATE INDEX plan_slots_key ON plan_slots (station_id, programme_id, period_key)")
        )
    cancelled = session.execute(
        update(table)
        .where(untouched, ~exists().where(same_slot))
        # The plan retires the slot: it no longer stands for it (plan_key None), so the
        # slot may be made again if the cadence comes back to it.
        .values(
            status=BroadcastStatus.cancelled.value,
            plan_key=None,
            version=b.version + 1,
            updated_at=after_now,
        )
        .returning(b.station_id)
    ).all()
    moved = session.execute(
        update(table)
        .where(untouched, same_slot, s.starts_at > after_now, s.starts_at != b.starts_at)
        .values(
            starts_at=s.starts_at,  # UPDATE ... FROM plan_slots: one join, not a lookup a row
            network=s.network,  # the kind of the new slot's local day
            version=b.version + 1,
            plan_version=b.version + 1,
            updated_at=after_now,
        )
        .returning(b.station_id)
    ).all()
    if postgres:
        session.execute(text("DROP INDEX plan_slots_key"))
    return Counter(sid for (sid,) in cancelled), Counter(sid for (sid,) in moved)


def plan_window(
    session: Session,
    *,
    targets: Sequence[Target],
    station_ids: Sequence[int],
    window: Window,
    now: datetime,
    replan: bool = True,
) -> PlanResult:
    """Make the window's broadcasts for these stations' targets: the one way the plan is
    made (`loaxa plan`, the API, the scheduler's rolling plan, the country-wide bulk plan).

    Idempotent: a slot the plan made once is never made again, whatever became of its
    broadcast. With replan, future broadcasts the plan made and nobody touched follow the
    current cadences (see _reconcile); nothing else is changed and nothing is deleted.
    """
    considered = _stage(session, targets, window)
    result = PlanResult()
    if replan and station_ids:
        # Before inserting: what is re-planned is what was there, never what this run made.
        cancelled, moved = _reconcile(session, station_ids=station_ids, window=window, now=now)
        result.cancelled, result.moved = sum(cancelled.values()), sum(moved.values())
        result.by_station = {
            sid: (cancelled.get(sid, 0), moved.get(sid, 0)) for sid in {*cancelled, *moved}
        }
    result.created = _insert_staged(session, window=window, now=now)
    result.existing = considered - result.created
    return result


def station_targets(session: Session, station_ids: Sequence[int]) -> dict[int, list[Target]]:
    """The targets of each station (see plan_targets), read in three queries."""
    stations = {
        s.id: s
        for s in session.scalars(
            select(Station)
            .where(Station.id.in_(station_ids))
            .options(selectinload(Station.networks))
        )
    }
    programmes: dict[int, list[Programme]] = {}
    for p in session.scalars(
        select(Programme)
        .where(Programme.station_id.in_(station_ids), not_emergency_programme())
        .order_by(Programme.id)
    ):
        programmes.setdefault(p.station_id, []).append(p)
    villages: dict[int, list[Village]] = {}
    for v in session.scalars(
        select(Village).where(Village.station_id.in_(station_ids)).order_by(Village.id)
    ):
        villages.setdefault(v.station_id, []).append(v)
    return {
        sid: plan_targets(stations[sid], programmes.get(sid, []), villages.get(sid, []))
        for sid in station_ids
        if sid in stations
    }


def plan_station(
    session: Session,
    *,
    station_id: int,
    window: Window,
    actor: User | None = None,
    now: datetime | None = None,
) -> PlanResult:
    """Plan one station's window (see plan_window) and record it in the audit log."""
    now = now or clock.now()
    session.get_one(Station, station_id)
    targets = station_targets(session, [station_id])[station_id]
    result = plan_window(
        session, targets=targets, station_ids=[station_id], window=window, now=now
    )
    audit.record(
        session,
        actor=actor,
        action="broadcast.plan",
        entity="station",
        entity_id=station_id,
        after={"months": [window.first, window.last], **result.counts()},
    )
    return result


def plan_year(
    session: Session,
    *,
    station_id: int,
    year: int,
    actor: User | None = None,
    now: datetime | None = None,
) -> PlanResult:
    """Create the year's broadcasts from the cadences; running it again changes nothing.

    The whole local year, past months included (history entered late). A monthly
    programme's month that already has a broadcast (whenever it was moved to) is left
    alone; a slot the plan made once is not made again. Future broadcasts the plan made
    and nobody touched follow a changed cadence: cancelled when their slot is gone, moved
    when it moved; nothing is ever deleted.
    """
    return plan_station(
        session, station_id=station_id, window=Window.year(year), actor=actor, now=now
    )


def plan_station_for(
    session: Session,
    *,
    station_id: int,
    year: int | None = None,
    horizon_months: int | None = None,
    actor: User | None = None,
) -> tuple[Window, PlanResult]:
    """Plan a year, or the coming months (the rolling plan's window): exactly one of them."""
    if (year is None) == (horizon_months is None):
        raise Invalid("give either year (a whole year) or horizon_months (the coming months)")
    now = clock.now()
    if year is not None:
        window = Window.year(year)
        return window, plan_year(session, station_id=station_id, year=year, actor=actor, now=now)
    assert horizon_months is not None
    try:
        check_plan_horizon(horizon_months)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    station = session.get_one(Station, station_id)
    window = Window.horizon(now, ZoneInfo(station.timezone), horizon_months)
    result = plan_station(session, station_id=station_id, window=window, actor=actor, now=now)
    return window, result


def plan_many(session: Session, *, station_ids: Sequence[int], year: int) -> PlanResult:
    """Plan several stations' year in one go (bulk, for large deployments and the benchmark)."""
    targets = [t for ts in station_targets(session, station_ids).values() for t in ts]
    return plan_window(
        session,
        targets=targets,
        station_ids=station_ids,
        window=Window.year(year),
        now=clock.now(),
        replan=False,
    )


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
            total.add(part)
    return total
