"""Stations, villages and programmes."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.accounts.deps import AdminUser, ApproverUser, ViewerUser
from app.db import DbId, SessionDep
from app.stations import service
from app.stations.schemas import (
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammeRules,
    StationCreate,
    StationOut,
    VillageCadence,
    VillageCreate,
    VillageOut,
)

router = APIRouter(prefix="/api/v1", tags=["stations"])


@router.get("/stations", response_model=list[StationOut])
def list_stations(session: SessionDep, user: ViewerUser) -> list[StationOut]:
    return [service.to_out(s) for s in service.list_stations(session, user=user)]


@router.post("/stations", response_model=StationOut, status_code=status.HTTP_201_CREATED)
def create_station(session: SessionDep, admin: AdminUser, body: StationCreate) -> StationOut:
    station = service.create_station(
        session,
        name=body.name,
        timezone=body.timezone,
        hotline=body.hotline,
        network=body.network,
        actor=admin,
    )
    return service.to_out(station)


@router.get("/stations/{station_id}", response_model=StationOut)
def get_station(session: SessionDep, user: ViewerUser, station_id: DbId) -> StationOut:
    return service.to_out(service.get_station(session, station_id, user=user))


@router.get("/stations/{station_id}/villages", response_model=list[VillageOut])
def list_villages(session: SessionDep, user: ViewerUser, station_id: DbId) -> list[VillageOut]:
    service.get_station(session, station_id, user=user)
    return [
        VillageOut.model_validate(v) for v in service.list_villages(session, station_id=station_id)
    ]


@router.post(
    "/stations/{station_id}/villages",
    response_model=VillageOut,
    status_code=status.HTTP_201_CREATED,
)
def create_village(
    session: SessionDep, admin: AdminUser, station_id: DbId, body: VillageCreate
) -> VillageOut:
    station = service.get_station(session, station_id)
    village = service.create_village(
        session, station=station, name=body.name, cadence=body.cadence, actor=admin
    )
    return VillageOut.model_validate(village)


@router.put("/stations/{station_id}/villages/{village_id}/cadence", response_model=VillageOut)
def set_village_cadence(
    session: SessionDep,
    user: ApproverUser,
    station_id: DbId,
    village_id: DbId,
    body: VillageCadence,
) -> VillageOut:
    """Give one village its own slots (days of week and time); null restores the default."""
    service.get_station(session, station_id, user=user)
    village = service.get_village(session, station_id=station_id, village_id=village_id)
    service.set_village_cadence(session, village=village, cadence=body.cadence, actor=user)
    return VillageOut.model_validate(village)


@router.patch("/stations/{station_id}/programmes/{code}", response_model=ProgrammeOut)
def update_programme(
    session: SessionDep, user: ApproverUser, station_id: DbId, code: str, body: ProgrammeRules
) -> ProgrammeOut:
    """Set the station's rule for a programme, e.g. the CCHC slot "third Saturday 17:00"."""
    service.get_station(session, station_id, user=user)
    programme = service.get_programme(session, station_id=station_id, code=code)
    service.update_programme_rules(
        session,
        programme=programme,
        cadence=body.cadence,
        min_duration_ms=body.min_duration_ms,
        max_duration_ms=body.max_duration_ms,
        name=body.name,
        source=body.source.model_dump() if body.source else None,
        actor=user,
    )
    return ProgrammeOut.of(programme)


@router.get("/stations/{station_id}/programmes", response_model=list[ProgrammeOut])
def list_programmes(session: SessionDep, user: ViewerUser, station_id: DbId) -> list[ProgrammeOut]:
    service.get_station(session, station_id, user=user)
    return [ProgrammeOut.of(p) for p in service.list_programmes(session, station_id=station_id)]


@router.post(
    "/stations/{station_id}/programmes",
    response_model=ProgrammeOut,
    status_code=status.HTTP_201_CREATED,
)
def create_programme(
    session: SessionDep, admin: AdminUser, station_id: DbId, body: ProgrammeCreate
) -> ProgrammeOut:
    """A new programme; with `source` a relay of a stream (no rundown, ready once planned)."""
    station = service.get_station(session, station_id)
    programme = service.create_programme(
        session,
        station=station,
        code=body.code,
        name=body.name,
        scope=body.scope,
        cadence=body.cadence,
        min_duration_ms=body.min_duration_ms,
        max_duration_ms=body.max_duration_ms,
        source=body.source.model_dump() if body.source else None,
        actor=admin,
    )
    return ProgrammeOut.of(programme)

