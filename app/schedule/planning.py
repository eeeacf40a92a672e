"""Planning: turn programmes' cadences into a year of broadcasts, idempotently and in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.schedule.cadence import local_month, parse_cadence, year_occurrences
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.schedule.service import period_key_for
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
    tz = ZoneInfo(station.timezone)
    slots: list[Slot] = []
    for programme in programmes:
        default = parse_cadence(programme.cadence)
        targets: list[tuple[int | None, Any]] = (
            [(None, default)]
            if programme.scope == "station"
            else [(v.id, parse_cadence(v.cadence) if v.cadence else default) for v in villages]
        )
        for village_id, cadence in targets:
            for at in year_occurrences(cadence, year, tz):
                key = period_key_for(cadence.kind, at, village_id, tz)
                slots.append(
                    Slot(station.id, programme.id, village_id, at, key, local_month(at, tz))
                )
    return slots


def insert_slots(session: Session, slots: Sequence[Slot], *, now: datetime) -> int:
    """Insert the slots that do not exist yet (ON CONFLICT DO NOTHING); returns how many."""
    if not slots:
        return 0
    rows: list[dict[str, Any]] = [
        {
            "station_id": s.station_id,
            "programme_id": s.programme_id,
            "village_id": s.village_id,
            "starts_at": s.starts_at,
            "period_key": s.period_key,
            "local_month": s.local_month,
            "status": BroadcastStatus.planned.value,
            "priority": "normal",
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for s in slots
    ]
    table = Broadcast.__table__
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - other databases are not supported
        raise NotImplementedError(dialect)
    # Existing periods are skipped by the partial unique index; RETURNING counts the new rows.
    stmt = stmt.on_conflict_do_nothing(
        index_elements=UNIQUE_PERIOD, index_where=UNIQUE_WHERE
    ).returning(table.c.id)
    created = 0
    connection = session.connection()
    for start in range(0, len(rows), 5000):
        created += len(connection.execute(stmt, rows[start : start + 5000]).all())
    return created


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
