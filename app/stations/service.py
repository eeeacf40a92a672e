"""Stations, villages and programmes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.accounts.models import Role, User
from app.audit import service as audit
from app.config import get_settings
from app.db import Base, add_unique
from app.errors import Conflict, Invalid, NotFound
from app.stations.cadence import parse_cadence
from app.stations.models import Programme, Station, Village

S = TypeVar("S", bound=Select[Any])


class HasStation(Protocol):
    """A row owned by a station (segments, broadcasts, emergencies)."""

    station_id: int


CCHC = "cchc"
VILLAGE_WEEKLY = "village-weekly"

# The plan's rules as data (DESIGN.md): another commune or year changes numbers, not code.
DEFAULT_PROGRAMMES: list[dict[str, Any]] = [
    {
        "code": CCHC,
        "name": "Chuyên mục Cải cách hành chính",
        "scope": "station",
        # Once a month; the station's preferred slot: the third Saturday at 17:00.
        "cadence": {"kind": "monthly", "week": 3, "weekday": 5, "time": "17:00"},
        "min_duration_ms": 600_000,
        "max_duration_ms": 900_000,
    },
    {
        "code": VILLAGE_WEEKLY,
        "name": "Tuyên truyền CCHC trên loa phát thanh các thôn",
        "scope": "village",
        # "Regularly through the year": one slot a week per village, Sunday 18:00.
        "cadence": {"kind": "weekly", "weekdays": [6], "time": "18:00"},
        "min_duration_ms": 60_000,
        "max_duration_ms": 600_000,
    },
]


def station_snapshot(station: Station) -> dict[str, Any]:
    return {"name": station.name, "timezone": station.timezone, "hotline": station.hotline}


def create_station(
    session: Session,
    *,
    name: str,
    timezone: str | None = None,
    hotline: str | None = None,
    actor: User | None = None,
) -> Station:
    """A station with the default programmes, in `timezone` or else the configured zone
    (LOAXA_TIMEZONE); 409 when the name is taken."""
    if session.scalar(select(Station.id).where(Station.name == name)) is not None:
        raise Conflict(f"station {name!r} already exists")
    station = Station(name=name, timezone=timezone or get_settings().timezone, hotline=hotline)
    if not add_unique(session, station):
        raise Conflict(f"station {name!r} already exists")
    for spec in DEFAULT_PROGRAMMES:
        session.add(Programme(station_id=station.id, **spec))
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="station.create",
        entity="station",
        entity_id=station.id,
        after=station_snapshot(station),
    )
    return station


def update_station(
    session: Session,
    *,
    station: Station,
    changes: Mapping[str, Any],
    actor: User | None = None,
) -> Station:
    """Change a station's details (only the fields given); 409 when the new name is taken.

    The time zone is not among them: it decides which local day and month every broadcast
    belongs to, so changing it would rewrite the plan, not a detail.
    """
    before = station_snapshot(station)
    name = changes.get("name")
    if name is not None and name != station.name:
        taken = session.scalar(
            select(Station.id).where(Station.name == name, Station.id != station.id)
        )
        if taken is not None:
            raise Conflict(f"station {name!r} already exists")
        station.name = name
    if "hotline" in changes:
        station.hotline = changes["hotline"] or None
    session.flush()
    after = station_snapshot(station)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="station.update",
            entity="station",
            entity_id=station.id,
            before=before,
            after=after,
        )
    return station


def get_station(session: Session, station_id: int, *, user: User | None = None) -> Station:
    """The station, or 404 (also when a staff member belongs to another station)."""
    station = session.get(Station, station_id)
    if station is None or (user is not None and not can_see_station(user, station_id)):
        raise NotFound(f"station {station_id} does not exist")
    return station


def can_see_station(user: User, station_id: int) -> bool:
    """Admins see every station; staff only their own (none, when they have none)."""
    return user.role == Role.admin or user.station_id == station_id


def scope_to_user(
    stmt: S, column: ColumnElement[int] | InstrumentedAttribute[int], user: User
) -> S:
    """Restrict a query on a station column to what the user may see (see can_see_station)."""
    if user.role == Role.admin:
        return stmt
    if user.station_id is None:
        return stmt.where(false())
    return stmt.where(column == user.station_id)


M = TypeVar("M", bound=Base)


def get_in_station(
    session: Session,
    model: type[M],
    row_id: int,
    *,
    what: str,
    user: User | None = None,
    for_update: bool = False,
) -> M:
    """A station-owned row by id; 404 when missing or in a station the user cannot see."""
    stmt = select(model).where(sa_inspect(model).primary_key[0] == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None or (
        user is not None and not can_see_station(user, cast(HasStation, row).station_id)
    ):
        raise NotFound(f"{what} {row_id} does not exist")
    return row


def list_stations(session: Session, *, user: User) -> list[Station]:
    stmt = scope_to_user(select(Station).order_by(Station.id), Station.id, user)
    return list(session.scalars(stmt))


def create_village(
    session: Session,
    *,
    station: Station,
    name: str,
    cadence: dict[str, Any] | None = None,
    actor: User | None = None,
) -> Village:
    """A village of the station; 409 when the station already has one of that name."""
    if cadence is not None:
        try:
            cadence = parse_cadence(cadence).model_dump(mode="json")
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
    exists = session.scalar(
        select(Village.id).where(Village.station_id == station.id, Village.name == name)
    )
    if exists is not None:
        raise Conflict(f"station {station.id} already has a village named {name!r}")
    village = Village(station_id=station.id, name=name, cadence=cadence)
    if not add_unique(session, village):
        raise Conflict(f"station {station.id} already has a village named {name!r}")
    audit.record(
        session,
        actor=actor,
        action="village.create",
        entity="village",
        entity_id=village.id,
        after={"station_id": station.id, "name": name, "cadence": cadence},
    )
    return village


def list_villages(session: Session, *, station_id: int) -> list[Village]:
    return list(
        session.scalars(
            select(Village).where(Village.station_id == station_id).order_by(Village.id)
        )
    )


def get_village(session: Session, *, station_id: int, village_id: int) -> Village:
    """The station's village, or 404 (also when the village belongs to another station)."""
    village = session.get(Village, village_id)
    if village is None or village.station_id != station_id:
        raise NotFound(f"village {village_id} does not exist in station {station_id}")
    return village


def get_programme(session: Session, *, station_id: int, code: str) -> Programme:
    """The station's programme by code; 422 naming the known codes when there is none."""
    programme = session.scalar(
        select(Programme).where(Programme.station_id == station_id, Programme.code == code)
    )
    if programme is None:
        known = session.scalars(
            select(Programme.code)
            .where(Programme.station_id == station_id)
            .order_by(Programme.code)
        ).all()
        raise Invalid(f"unknown programme {code!r}; this station has: {', '.join(known) or 'none'}")
    return programme


def list_programmes(session: Session, *, station_id: int) -> list[Programme]:
    return list(
        session.scalars(
            select(Programme).where(Programme.station_id == station_id).order_by(Programme.id)
        )
    )


def update_programme_rules(
    session: Session,
    *,
    programme: Programme,
    cadence: dict[str, Any] | None = None,
    min_duration_ms: int | None = None,
    max_duration_ms: int | None = None,
    actor: User | None = None,
) -> Programme:
    """Change a programme's rule (cadence, duration window): data, not code."""
    before = {
        "cadence": programme.cadence,
        "window_ms": [programme.min_duration_ms, programme.max_duration_ms],
    }
    if cadence is not None:
        try:
            parsed = parse_cadence(cadence)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        if parsed.kind != parse_cadence(programme.cadence).kind:
            raise Invalid(
                f"programme {programme.code} is {programme.cadence.get('kind')}; "
                f"its cadence cannot become {parsed.kind}"
            )
        programme.cadence = parsed.model_dump(mode="json")
    low = programme.min_duration_ms if min_duration_ms is None else min_duration_ms
    high = programme.max_duration_ms if max_duration_ms is None else max_duration_ms
    if not 0 < low <= high:
        raise Invalid(f"the duration window must have 0 < minimum <= maximum; got {low}..{high}")
    programme.min_duration_ms, programme.max_duration_ms = low, high
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="programme.rules",
        entity="programme",
        entity_id=programme.id,
        before=before,
        after={"cadence": programme.cadence, "window_ms": [low, high]},
    )
    return programme


def set_village_cadence(
    session: Session,
    *,
    village: Village,
    cadence: dict[str, Any] | None,
    actor: User | None = None,
) -> Village:
    """Give a village its own weekly slots (None: back to the programme's default)."""
    before = village.cadence
    if cadence is not None:
        try:
            cadence = parse_cadence(cadence).model_dump(mode="json")
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
    village.cadence = cadence
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="village.cadence",
        entity="village",
        entity_id=village.id,
        before={"cadence": before},
        after={"cadence": cadence},
    )
    return village
