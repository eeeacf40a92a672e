"""What playout devices must learn at once, said in one place.

Services call these after their change is flushed, inside the same transaction; whoever
must tell the devices (the push publisher, issue 25) registers a listener at startup.
With no listener nothing happens and devices still learn by polling, which stays the
safety net. Listeners must never raise into the caller nor block it: a request that
changed something must not fail because devices could not be told.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

ChangeKind = Literal["alert", "playlist", "token"]


@dataclass(frozen=True)
class DeviceChange:
    """A change devices must learn of. ``alert``: a station's emergency or live state
    (``station_id``); ``playlist``: one station's day playlists (``station_id``, and
    ``village_id`` when only that village's changed); ``token``: one device's token ended
    (``device_id``)."""

    kind: ChangeKind
    station_id: int | None = None
    village_id: int | None = None
    device_id: int | None = None


Listener = Callable[[Session, DeviceChange], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Register a listener (idempotent)."""
    if listener not in _listeners:
        _listeners.append(listener)


def forget(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def changed(session: Session, change: DeviceChange) -> None:
    """Tell every listener; called by the service that made the change."""
    for listener in list(_listeners):
        listener(session, change)


def alert_changed(session: Session, station_id: int) -> None:
    """A station's emergency or live state began or ended."""
    changed(session, DeviceChange("alert", station_id=station_id))


def token_ended(session: Session, device_id: int) -> None:
    """A device's token stopped working (revoked or replaced)."""
    changed(session, DeviceChange("token", device_id=device_id))


def playlist_changed(session: Session, station_id: int, village_id: int | None = None) -> None:
    """A station's day playlists changed (only one village's when ``village_id`` is set)."""
    changed(session, DeviceChange("playlist", station_id=station_id, village_id=village_id))
