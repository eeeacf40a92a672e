"""Device endpoints: register a playout PC, list devices with their health."""

from __future__ import annotations

from fastapi import APIRouter, status

from app import clock
from app.accounts.deps import AdminUser
from app.db import DbId, SessionDep
from app.devices import service
from app.devices.schemas import DeviceCreate, DeviceCreated, DeviceOut

router = APIRouter(prefix="/api/v1", tags=["stations"])


@router.post("/devices", response_model=DeviceCreated, status_code=status.HTTP_201_CREATED)
def create_device(session: SessionDep, admin: AdminUser, body: DeviceCreate) -> DeviceCreated:
    device, token = service.create_device(
        session,
        name=body.name,
        station_id=body.station_id,
        village_id=body.village_id,
        actor=admin,
    )
    return DeviceCreated.model_validate(
        {**DeviceOut.model_validate(device).model_dump(), "token": token}
    )


@router.get("/devices", response_model=list[DeviceOut])
def list_devices(
    session: SessionDep, admin: AdminUser, station_id: DbId | None = None
) -> list[DeviceOut]:
    """Devices with their health: online, last playlist pull and play, agent, free disk."""
    now = clock.now()
    return [
        DeviceOut.model_validate(d).model_copy(
            update={"online": service.is_online(d.last_seen_at, now)}
        )
        for d in service.list_devices(session, station_id=station_id)
    ]
