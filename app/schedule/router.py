"""Broadcast and rundown endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response, status

from app.accounts.deps import AdminUser, ApproverUser, ViewerUser
from app.accounts.models import Role
from app.audio import listen
from app.db import INT32_MAX, DbId, SessionDep
from app.errors import responses
from app.pagination import Page, PageDep, paginate
from app.schedule import assembly, planning, service
from app.schedule import network as schedule_network
from app.schedule import status as schedule_status
from app.schedule import warnings as schedule_warnings
from app.schedule.schemas import (
    BroadcastCreate,
    BroadcastMove,
    BroadcastOut,
    PlanOut,
    RundownOut,
    RundownSet,
    SchedulerOut,
    WarningOut,
    WarningsPage,
)
from app.segments.schemas import Month
from app.stations import service as stations
from app.stations.schemas import StationOut, StationUpdate

router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])
planning_router = APIRouter(prefix="/api/v1", tags=["broadcasts"])


@router.get("", response_model=Page[BroadcastOut])
def list_broadcasts(
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    programme: Annotated[str | None, Query(max_length=40)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    month: Month | None = None,
    station_id: DbId | None = None,
    village_id: DbId | None = None,
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
    items = service.to_out_many(session, rows)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


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
    return service.to_out(session, broadcast)


@router.get("/{broadcast_id}", response_model=BroadcastOut)
def get_broadcast(session: SessionDep, user: ViewerUser, broadcast_id: DbId) -> BroadcastOut:
    return service.to_out(session, service.get_broadcast(session, broadcast_id, user=user))


@router.patch("/{broadcast_id}", response_model=BroadcastOut, responses=responses(412))
def move_broadcast(
    session: SessionDep, user: ApproverUser, broadcast_id: DbId, body: BroadcastMove
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
    return service.to_out(session, broadcast)


@router.delete("/{broadcast_id}", response_model=BroadcastOut)
def cancel_broadcast(session: SessionDep, user: ApproverUser, broadcast_id: DbId) -> BroadcastOut:
    """Cancel: the broadcast stays on record as cancelled and leaves the playlists."""
    broadcast = service.get_broadcast(session, broadcast_id, user=user, for_update=True)
    service.cancel_broadcast(session, broadcast=broadcast, actor=user)
    return service.to_out(session, broadcast)


@router.get("/{broadcast_id}/rundown", response_model=RundownOut)
def get_rundown(session: SessionDep, user: ViewerUser, broadcast_id: DbId) -> RundownOut:
    broadcast = service.get_broadcast(session, broadcast_id, user=user)
    return assembly.rundown_view(session, broadcast)


@router.put("/{broadcast_id}/rundown", response_model=RundownOut, responses=responses(409))
def set_rundown(
    session: SessionDep, user: ApproverUser, broadcast_id: DbId, body: RundownSet
) -> RundownOut:
    """Set the segments and their order (approved segments with audio only); 409 for a
    segment that already aired in another broadcast unless `confirm_aired` is true."""
    broadcast = service.get_broadcast(session, broadcast_id, user=user, for_update=True)
    service.set_rundown(
        session,
        broadcast=broadcast,
        segment_ids=body.segment_ids,
        actor=user,
        confirm_aired=body.confirm_aired,
    )
    return assembly.rundown_view(session, broadcast)


@router.post("/{broadcast_id}/assemble", response_model=RundownOut)
def assemble(user: ApproverUser, broadcast_id: DbId, background: BackgroundTasks) -> RundownOut:
    """Render the master file; 422 naming the shortfall or excess when outside the window.

    A plain `def`: rendering runs in the thread pool, never on the event loop, and holds
    no database transaction while it renders. Its listening copy is made after the answer.
    """
    view = assembly.assemble_broadcast(broadcast_id, actor_id=user.id)
    listen.make_soon(background, view.master_sha256)
    return view


@planning_router.post("/stations/{station_id}/plan", response_model=PlanOut)
def plan_station(
    session: SessionDep,
    user: ApproverUser,
    station_id: DbId,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    horizon_months: Annotated[
        int | None,
        Query(ge=1, le=36, description="the coming months instead of a year: 1 to 36"),
    ] = None,
) -> PlanOut:
    """Create a year's broadcasts (or the coming months') from the cadences; running it
    again changes nothing."""
    stations.get_station(session, station_id, user=user)
    window, result = planning.plan_station_for(
        session, station_id=station_id, year=year, horizon_months=horizon_months, actor=user
    )
    return PlanOut(
        station_id=station_id, year=year, months=(window.first, window.last), **result.counts()
    )


@planning_router.get("/warnings", response_model=WarningsPage)
def list_warnings(
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    station_id: DbId | None = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    open: Annotated[
        bool | None, Query(description="true: unresolved only; false: resolved only")
    ] = None,
) -> WarningsPage:
    """What the scheduler found wrong or missing, grouped by kind, station and month, most
    recently changed first; led by a "scheduler not running" warning while none runs."""
    return schedule_warnings.list_page(
        session, user=user, page=page, station_id=station_id, kind=kind, open_only=open
    )


@planning_router.post("/warnings/{warning_id}/ack", response_model=WarningOut)
def acknowledge_warning(
    session: SessionDep,
    user: ViewerUser,
    # From 0: the computed "scheduler not running" warning has id 0 (answered with a 404).
    warning_id: Annotated[int, Path(ge=0, le=INT32_MAX)],
) -> WarningOut:
    """Acknowledge a warning (who and when); 404 for an unknown one or another station's."""
    warning = schedule_warnings.acknowledge(session, warning_id=warning_id, user=user)
    return schedule_warnings.to_out_many(session, [warning])[0]


@planning_router.get("/scheduler", response_model=SchedulerOut)
def scheduler_overview(session: SessionDep, user: ViewerUser) -> SchedulerOut:
    """The scheduler's jobs (last run, outcome, next run) and whether one is running. Its
    processes (host:pid) and the jobs' details, which name every station's work, only for
    an admin of no station."""
    full = user.role == Role.admin.value and user.station_id is None
    return schedule_status.overview(session, full=full)


@planning_router.patch("/stations/{station_id}", response_model=StationOut, tags=["stations"])
def update_station(
    session: SessionDep, admin: AdminUser, station_id: DbId, body: StationUpdate
) -> StationOut:
    """Change a station's details; a new network kind applies from its next local day (here,
    beside the broadcasts it restamps: stations know nothing of broadcasts)."""
    station = stations.get_station(session, station_id)
    schedule_network.update_station(
        session, station=station, changes=body.model_dump(exclude_unset=True), actor=admin
    )
    return stations.to_out(station)
