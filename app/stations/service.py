"""Stations, villages and programmes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from app.accounts.models import Role, User
from app.audit import service as audit
from app.config import get_settings
from app.db import Base, add_unique
from app.errors import Conflict, Invalid, NotFound
from app.stations.cadence import parse_cadence
from app.stations.models import Network, Programme, Station, Village, not_emergency_programme
from app.stations.network import network_on, network_state, start_network
from app.stations.overlaps import Clash, Cluster, Rule, clashes
from app.stations.schemas import PendingNetwork, StationOut

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


# What PATCH /stations/{id} sets as plain values (the network has rules of its own). The
# report's settings: None restores the default (app.stations.document).
REPORT_FIELDS = (
    "report_number_pattern",
    "report_signer_name",
    "report_signer_title",
    "report_recipients",
)
# Checked by the caller first (app.schedule.network.update_station): an approved segment.
RELAY_FIELDS = ("relay_fallback_segment_id",)
EDITABLE_FIELDS = ("name", "hotline", *REPORT_FIELDS, *RELAY_FIELDS)


def station_snapshot(station: Station) -> dict[str, Any]:
    return {
        "name": station.name,
        "timezone": station.timezone,
        "hotline": station.hotline,
        **{field: getattr(station, field) for field in (*REPORT_FIELDS, *RELAY_FIELDS)},
    }


def to_out(station: Station) -> StationOut:
    """The station as the API shows it: its network kind today and any change pending."""
    state = network_state(station)
    pending = (
        PendingNetwork(network=Network(state.pending), effective_from=state.pending_from)
        if state.pending is not None and state.pending_from is not None
        else None
    )
    return StationOut(
        id=station.id,
        name=station.name,
        timezone=station.timezone,
        hotline=station.hotline,
        network=Network(state.today),
        pending_network=pending,
        created_at=station.created_at,
        **{field: getattr(station, field) for field in (*REPORT_FIELDS, *RELAY_FIELDS)},
    )


def create_station(
    session: Session,
    *,
    name: str,
    timezone: str | None = None,
    hotline: str | None = None,
    network: Network = Network.ip,
    actor: User | None = None,
) -> Station:
    """A station with the default programmes, in `timezone` or else the configured zone
    (LOAXA_TIMEZONE), on an `ip` network unless told otherwise; 409 when the name is taken."""
    if session.scalar(select(Station.id).where(Station.name == name)) is not None:
        raise Conflict(f"station {name!r} already exists")
    station = Station(name=name, timezone=timezone or get_settings().timezone, hotline=hotline)
    start_network(station, network, actor=actor)
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
        after={**station_snapshot(station), "network": network.value},
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

    Not its network kind: that restamps broadcasts (app.schedule.network.update_station).
    """
    name = changes.get("name")
    taken = Conflict(f"station {name!r} already exists")
    if (
        name is not None
        and name != station.name
        and session.scalar(select(Station.id).where(Station.name == name)) is not None
    ):
        raise taken
    before = station_snapshot(station)
    session.flush()
    try:
        with session.begin_nested():  # a racing rename to the same name loses here
            for field in EDITABLE_FIELDS:
                if field in changes:
                    setattr(station, field, changes[field])
            session.flush()
    except IntegrityError as exc:
        raise taken from exc
    if station_snapshot(station) != before:
        audit.record(
            session,
            actor=actor,
            action="station.update",
            entity="station",
            entity_id=station.id,
            before=before,
            after=station_snapshot(station),
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
    stmt = scope_to_user(
        select(Station).options(selectinload(Station.networks)).order_by(Station.id),
        Station.id,
        user,
    )
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
        refuse_new_clashes(
            session, station, field="cadence", clusters={0: Cluster(0, name, cadence)}
        )
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


def create_programme(
    session: Session,
    *,
    station: Station,
    code: str,
    name: str,
    scope: str,
    cadence: dict[str, Any],
    min_duration_ms: int,
    max_duration_ms: int,
    source: Mapping[str, str] | None = None,
    actor: User | None = None,
) -> Programme:
    """A new programme of the station: its rule as data; a relay when `source` says so.

    422 naming the field: a code the station already has, a cadence that does not parse,
    a relay whose window is not exact, a slot that would double-book a cluster.
    """
    taken = Invalid(f"code: the station already has a programme {code!r}")
    if session.scalar(
        select(Programme.id).where(Programme.station_id == station.id, Programme.code == code)
    ):
        raise taken
    try:
        cadence = parse_cadence(cadence).model_dump(mode="json")
    except ValueError as exc:
        raise Invalid(f"cadence: {exc}") from exc
    if not 0 < min_duration_ms <= max_duration_ms:
        raise Invalid("max_duration_ms: the window must have 0 < minimum <= maximum")
    if source is not None and min_duration_ms != max_duration_ms:
        raise Invalid("max_duration_ms: a relay's window is exact (minimum = maximum)")
    refuse_new_clashes(
        session,
        station,
        field="cadence",
        rules={0: Rule(0, code, scope, cadence, max_duration_ms)},
    )
    programme = Programme(
        station_id=station.id,
        code=code,
        name=name,
        scope=scope,
        cadence=cadence,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        source_kind=source["kind"] if source else None,
        source_url=source["url"] if source else None,
    )
    if not add_unique(session, programme):
        raise taken
    audit.record(
        session,
        actor=actor,
        action="programme.create",
        entity="programme",
        entity_id=programme.id,
        after=_programme_snapshot(programme),
    )
    return programme


def _programme_snapshot(programme: Programme) -> dict[str, Any]:
    return {
        "code": programme.code,
        "name": programme.name,
        "scope": programme.scope,
        "cadence": programme.cadence,
        "window_ms": [programme.min_duration_ms, programme.max_duration_ms],
        "source": (
            {"kind": programme.source_kind, "url": programme.source_url}
            if programme.source_kind
            else None
        ),
    }


def list_programmes(session: Session, *, station_id: int) -> list[Programme]:
    return list(
        session.scalars(
            select(Programme)
            .where(Programme.station_id == station_id, not_emergency_programme())
            .order_by(Programme.id)
        )
    )


def update_programme_rules(
    session: Session,
    *,
    programme: Programme,
    cadence: dict[str, Any] | None = None,
    min_duration_ms: int | None = None,
    max_duration_ms: int | None = None,
    name: str | None = None,
    source: Mapping[str, str] | None = None,
    actor: User | None = None,
) -> Programme:
    """Change a programme's rule (cadence, duration window), name, or a relay's stream."""
    before = _programme_snapshot(programme)
    if source is not None and not programme.is_relay:
        raise Invalid(
            f"source: programme {programme.code} airs a rundown of segments; "
            "it cannot become a relay"
        )
    new_cadence = programme.cadence
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
        new_cadence = parsed.model_dump(mode="json")
    low = programme.min_duration_ms if min_duration_ms is None else min_duration_ms
    high = programme.max_duration_ms if max_duration_ms is None else max_duration_ms
    if not 0 < low <= high:
        raise Invalid(f"the duration window must have 0 < minimum <= maximum; got {low}..{high}")
    if programme.is_relay and low != high:
        raise Invalid(
            f"max_duration_ms: a relay's window is exact (minimum = maximum); got {low}..{high}"
        )
    refuse_new_clashes(
        session,
        get_station(session, programme.station_id),
        field="cadence" if cadence is not None else "max_duration_ms",
        rules={
            programme.id: Rule(programme.id, programme.code, programme.scope, new_cadence, high)
        },
    )
    programme.cadence = new_cadence
    programme.min_duration_ms, programme.max_duration_ms = low, high
    if name is not None:
        programme.name = name
    if source is not None:
        programme.source_url = source["url"]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="programme.rules",
        entity="programme",
        entity_id=programme.id,
        before=before,
        after=_programme_snapshot(programme),
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
    refuse_new_clashes(
        session,
        get_station(session, village.station_id),
        field="cadence",
        clusters={village.id: Cluster(village.id, village.name, cadence)},
    )
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


def station_clashes(
    session: Session,
    station: Station,
    *,
    rules: Mapping[int, Rule] | None = None,
    clusters: Mapping[int, Cluster] | None = None,
) -> list[Clash]:
    """Village slots that overlap a commune programme on the station's clusters (see
    app.stations.overlaps), with some programmes' rules or villages' slots as proposed."""
    proposed = {p.id: _rule(p) for p in list_programmes(session, station_id=station.id)}
    proposed.update(rules or {})
    found = {
        v.id: Cluster(v.id, v.name, v.cadence)
        for v in list_villages(session, station_id=station.id)
    }
    found.update(clusters or {})
    return clashes(list(proposed.values()), list(found.values()))


def _rule(programme: Programme) -> Rule:
    return Rule(
        programme.id, programme.code, programme.scope, programme.cadence, programme.max_duration_ms
    )


def refuse_new_clashes(
    session: Session,
    station: Station,
    *,
    field: str,
    rules: Mapping[int, Rule] | None = None,
    clusters: Mapping[int, Cluster] | None = None,
) -> None:
    """422 naming both sides when a change would double-book a village cluster.

    Only in a station whose villages carry the commune's programmes from now on (``ip`` on
    its latest day); overlaps that exist already are the scheduler's to warn about, and do
    not block unrelated changes.
    """
    if network_on(station, date.max) != Network.ip.value:
        return
    before = {c.key for c in station_clashes(session, station)}
    new = [
        c
        for c in station_clashes(session, station, rules=rules, clusters=clusters)
        if c.key not in before
    ]
    if new:
        raise Invalid(f"{field}: " + "; ".join(c.describe() for c in new))
