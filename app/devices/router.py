"""Device endpoints: register a playout PC, list devices with their health, revoke a
device's token or give it a new one."""

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


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut)
def revoke_device(session: SessionDep, admin: AdminUser, device_id: DbId) -> DeviceOut:
    """Revoke the device's token (a stolen or retired PC): it answers 401 at once, and the
    device is disabled until it gets a new token."""
    device = service.get_device(session, device_id, for_update=True)
    service.revoke_device(session, device=device, actor=admin)
    return DeviceOut.model_validate(device)


@router.post("/devices/{device_id}/token", response_model=DeviceCreated)
def new_device_token(session: SessionDep, admin: AdminUser, device_id: DbId) -> DeviceCreated:
    """A new token for the device, shown once; the old one is dead at once."""
    device = service.get_device(session, device_id, for_update=True)
    token = service.issue_token(session, device=device, actor=admin)
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
