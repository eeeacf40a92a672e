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

import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.devices.service import device_by_token, device_token_hash
from app.errors import LoaxaError
from app.playout.live import RECORDER_USER, is_live_mount
from app.playout.models import LiveSession
from app.playout.scope import carries_emergency
from app.stations.models import Network, Programme, Station
from app.stations.network import local_today, network_on
from app.streams.mounts import mount_secret, parse_relay_mount


@dataclass(frozen=True)
class Answer:
    """Icecast's answer: allowed, or refused with the reason (in its log)."""

    allowed: bool
    reason: str = ""
    device_id: int | None = None


def check_listener(
    session: Session, *, mount: str, password: str | None, user: str | None = None
) -> Answer:
    """Whether the device whose token is `password` may listen to `mount`."""
    if is_live_mount(mount):
        return check_live_listener(session, mount=mount, password=password, user=user)
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


def check_live_listener(
    session: Session, *, mount: str, password: str | None, user: str | None
) -> Answer:
    """A live session's mount: the devices in its scope while it is open, and the hub's
    recorder (its own password for that mount)."""
    found = session.scalar(select(LiveSession).where(LiveSession.mount == mount))
    if found is None:
        return Answer(False, f"no live session on {mount}")
    if found.ended_at is not None:
        return Answer(False, f"live session {found.id} has ended")
    if user == RECORDER_USER:
        if password and hmac.compare_digest(password, mount_secret("recorder", mount)):
            return Answer(True)
        return Answer(False, "wrong recorder password")
    try:
        device = device_by_token(session, token_hash=device_token_hash(password))
    except LoaxaError as exc:
        return Answer(False, exc.message)
    if device.station_id != found.station_id:
        return Answer(False, f"device {device.id} belongs to another station", device.id)
    if not carries_emergency(found.village_ids, found.network, device.village_id):
        return Answer(False, f"device {device.id} is outside the session's villages", device.id)
    return Answer(True, device_id=device.id)
