"""Who may listen to a mount of the hub: the station's own devices, by their token.

Icecast asks loaxa for every listener (``<authentication type="url">``, ``listener_add``,
app.streams.config): it posts the mount and the HTTP basic credentials the player sent.
The password is the device's token, checked by the one device check there is
(app.devices.service: device_token_hash, device_by_token), so a token that is revoked or
disabled is refused here at once, like everywhere else. The device must be of the mount's
station and carry the programme: a commune relay plays on the station's PC and, in an
``ip`` station, on every village cluster; a village relay on village clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.devices.service import device_by_token, device_token_hash
from app.errors import LoaxaError
from app.stations.models import Network, Programme, Station
from app.stations.network import local_today, network_on
from app.streams.mounts import parse_relay_mount


@dataclass(frozen=True)
class Answer:
    """Icecast's answer: allowed, or refused with the reason (in its log)."""

    allowed: bool
    reason: str = ""
    device_id: int | None = None


def check_listener(session: Session, *, mount: str, password: str | None) -> Answer:
    """Whether the device whose token is `password` may listen to `mount`."""
    parsed = parse_relay_mount(mount)
    if parsed is None:
        return Answer(False, f"unknown mount {mount}")
    station_id, code = parsed
    try:
        device = device_by_token(session, token_hash=device_token_hash(password))
    except LoaxaError as exc:  # no token, a staff token, or an unknown or revoked one
        return Answer(False, exc.message)
    if device.station_id != station_id:
        return Answer(False, f"device {device.id} belongs to another station", device.id)
    programme = session.scalar(
        select(Programme).where(Programme.station_id == station_id, Programme.code == code)
    )
    if programme is None or not programme.is_relay:
        return Answer(False, f"no relay {code} in station {station_id}", device.id)
    if programme.scope == "village" and device.village_id is None:
        return Answer(False, f"{code} is for the villages' clusters", device.id)
    if programme.scope == "station" and device.village_id is not None:
        station = session.get_one(Station, station_id)
        if network_on(station, local_today(station, clock.now())) != Network.ip.value:
            return Answer(False, f"{code} reaches the villages by the FM transmitter", device.id)
    return Answer(True, device_id=device.id)
