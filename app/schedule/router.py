"""Broadcast and rundown endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.deps import ApproverUser, SessionDep, ViewerUser
from app.errors import NotFound
from app.pagination import Page, PageDep, paginate
from app.schedule import assembly, planning, service
from app.schedule import warnings as schedule_warnings
from app.schedule.models import Broadcast, BroadcastStatus
from app.schedule.schemas import (
    BroadcastCreate,
    BroadcastMove,
    BroadcastOut,
    RundownOut,
    RundownSet,
)
from app.segments.schemas import Month
from app.stations import service as stations
from app.stations.models import Programme, Station, Village
from app.stations.schemas import ProgrammeOut, VillageOut

router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])
planning_router = APIRouter(prefix="/api/v1", tags=["broadcasts"])


def to_out_many(session: Session, broadcasts: list[Broadcast]) -> list[BroadcastOut]:
    codes = {
        pid: code
        for pid, code in session.execute(
            select(Programme.id, Programme.code).where(
                Programme.id.in_({b.programme_id for b in broadcasts})
            )
        )
    }
    zones = {
        sid: ZoneInfo(tz)
        for sid, tz in session.execute(
            select(Station.id, Station.timezone).where(
                Station.id.in_({b.station_id for b in broadcasts})
            )
        )
    }
    masters = assembly.masters_out(session, broadcasts)
    return [
        BroadcastOut(
            id=b.id,
            station_id=b.station_id,
            programme=codes[b.programme_id],
            village_id=b.village_id,
            starts_at=b.starts_at.astimezone(UTC),
            starts_at_local=b.starts_at.astimezone(zones[b.station_id]),
            local_month=b.local_month,
            status=BroadcastStatus(b.status),
            priority=b.priority,
            master_sha256=b.master_sha256,
            master_duration_ms=b.master_duration_ms,
            master=masters.get(b.id),
            assembled_at=b.assembled_at,
            version=b.version,
        )
        for b in broadcasts
    ]


def to_out(session: Session, broadcast: Broadcast) -> BroadcastOut:
    return to_out_many(session, [broadcast])[0]


@router.get("", response_model=Page[BroadcastOut])
def list_broadcasts(
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    programme: Annotated[str | None, Query(max_length=40)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    month: Month | None = None,
    station_id: int | None = None,
    village_id: int | None = None,
) -> Page[BroadcastOut]:
    """Broadcasts in time order (a year of a programme, or a month)."""
    stmt = service.list_query(
        user=user,
        station_id=station_id,
        programme=programme,
        year=year,
        month=month,
        village_id=village_id,
    )
    rows, total = paginate(session, stmt, page)
    return Page(items=to_out_many(session, rows), total=total, limit=page.limit, offset=page.offset)


@router.post("", response_model=BroadcastOut, status_code=status.HTTP_201_CREATED)
def create_broadcast(
    session: SessionDep, user: ApproverUser, body: BroadcastCreate, response: Response
) -> BroadcastOut:
    broadcast = service.create_broadcast(
        session,
        station_id=body.station_id,
        programme_code=body.programme,
        starts_at=body.starts_at,
        village_id=body.village_id,
        actor=user,
    )
    response.headers["Location"] = f"/api/v1/broadcasts/{broadcast.id}"
    return to_out(session, broadcast)


@router.get("/{broadcast_id}", response_model=BroadcastOut)
def get_broadcast(session: SessionDep, user: ViewerUser, broadcast_id: int) -> BroadcastOut:
    return to_out(session, service.get_broadcast(session, broadcast_id, user=user))


@router.patch("/{broadcast_id}", response_model=BroadcastOut)
def move_broadcast(
    session: SessionDep, user: ApproverUser, broadcast_id: int, body: BroadcastMove
) -> BroadcastOut:
    """Move a broadcast (a CCHC broadcast within its local month)."""
    broadcast = service.get_broadcast(session, broadcast_id, user=user, for_update=True)
    service.move_broadcast(
        session,
        broadcast=broadcast,
        starts_at=body.starts_at,
        expected_version=body.version,
        actor=user,
    )
    return to_out(session, broadcast)


@router.delete("/{broadcast_id}", response_model=BroadcastOut)
def cancel_broadcast(session: SessionDep, user: ApproverUser, broadcast_id: int) -> BroadcastOut:
    """Cancel: the broadcast stays on record as cancelled and leaves the playlists."""
    broadcast = service.get_broadcast(session, broadcast_id, user=user, for_update=True)
    service.cancel_broadcast(session, broadcast=broadcast, actor=user)
    return to_out(session, broadcast)


@router.get("/{broadcast_id}/rundown", response_model=RundownOut)
def get_rundown(session: SessionDep, user: ViewerUser, broadcast_id: int) -> RundownOut:
    broadcast = service.get_broadcast(session, broadcast_id, user=user)
    return assembly.rundown_view(session, broadcast)


@router.put("/{broadcast_id}/rundown", response_model=RundownOut)
def set_rundown(
    session: SessionDep, user: ApproverUser, broadcast_id: int, body: RundownSet
) -> RundownOut:
    """Set the segments and their order (approved segments with audio only)."""
    broadcast = service.get_broadcast(session, broadcast_id, user=user, for_update=True)
    service.set_rundown(session, broadcast=broadcast, segment_ids=body.segment_ids, actor=user)
    return assembly.rundown_view(session, broadcast)


@router.post("/{broadcast_id}/assemble", response_model=RundownOut)
def assemble(user: ApproverUser, broadcast_id: int) -> RundownOut:
    """Render the master file; 422 naming the shortfall or excess when outside the window.

    A plain `def`: rendering runs in the thread pool, never on the event loop, and holds
    no database transaction while it renders.
    """
    return assembly.assemble_broadcast(broadcast_id, actor_id=user.id)


class PlanOut(BaseModel):
    station_id: int
    year: int
    created: int
    existing: int
    cancelled: int


@planning_router.post("/stations/{station_id}/plan", response_model=PlanOut)
def plan_station_year(
    session: SessionDep,
    user: ApproverUser,
    station_id: int,
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> PlanOut:
    """Create the year's broadcasts from the cadences; running it again changes nothing."""
    stations.get_station(session, station_id, user=user)
    result = planning.plan_year(session, station_id=station_id, year=year, actor=user)
    return PlanOut(station_id=station_id, year=year, **result.__dict__)


class WarningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: int | None
    broadcast_id: int | None
    kind: str
    message: str
    created_at: datetime


@planning_router.get("/warnings", response_model=Page[WarningOut])
def list_warnings(
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    station_id: int | None = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[WarningOut]:
    """What the scheduler found wrong or missing, newest first."""
    visible = sorted(s.id for s in stations.list_stations(session, user=user))
    if station_id is not None:
        visible = [station_id] if station_id in visible else []
    rows, total = paginate(
        session, schedule_warnings.list_query(station_ids=visible, kind=kind), page
    )
    return Page(
        items=[WarningOut.model_validate(w) for w in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


class ProgrammeRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: dict[str, Any] | None = None
    min_duration_ms: int | None = Field(default=None, gt=0, le=24 * 3600 * 1000)
    max_duration_ms: int | None = Field(default=None, gt=0, le=24 * 3600 * 1000)


class VillageCadence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: dict[str, Any] | None


@planning_router.patch("/stations/{station_id}/programmes/{code}", response_model=ProgrammeOut)
def update_programme(
    session: SessionDep, user: ApproverUser, station_id: int, code: str, body: ProgrammeRules
) -> ProgrammeOut:
    """Set the station's rule for a programme, e.g. the CCHC slot "third Saturday 17:00"."""
    stations.get_station(session, station_id, user=user)
    programme = stations.get_programme(session, station_id=station_id, code=code)
    stations.update_programme_rules(
        session,
        programme=programme,
        cadence=body.cadence,
        min_duration_ms=body.min_duration_ms,
        max_duration_ms=body.max_duration_ms,
        actor=user,
    )
    return ProgrammeOut.model_validate(programme)


@planning_router.put(
    "/stations/{station_id}/villages/{village_id}/cadence", response_model=VillageOut
)
def set_village_cadence(
    session: SessionDep,
    user: ApproverUser,
    station_id: int,
    village_id: int,
    body: VillageCadence,
) -> VillageOut:
    """Give one village its own slots (days of week and time); null restores the default."""
    stations.get_station(session, station_id, user=user)
    village = session.get(Village, village_id)
    if village is None or village.station_id != station_id:
        raise NotFound(f"village {village_id} does not exist in station {station_id}")
    stations.set_village_cadence(session, village=village, cadence=body.cadence, actor=user)
    return VillageOut.model_validate(village)
