"""Which broadcasts and emergencies a playout device carries: the one place that says so.

Broadcasts: the station's PC (a device with no village) plays the station's programmes
(broadcasts with ``village_id IS NULL``); a village PC plays its village's (broadcasts of
that village). Always within the device's own station.

Emergencies: one for the whole station (``village_ids`` null) plays on every device of the
station; one for some villages plays on those villages' PCs and on the station's PC.

Playlists, audio access, as-run intake, emergencies, the compliance reports and the
nightly playlist count all ask here; a change to what a device carries is an edit to this
module and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import QueryableAttribute

from app.schedule.models import Broadcast

# A device's station and village: columns of the statement (Device.station_id) when the
# device is joined in, plain values when it is already known.
Column = ColumnElement[Any] | QueryableAttribute[Any]


def carries_broadcast(
    station_id: Column | int, village_id: Column | int | None
) -> ColumnElement[bool]:
    """SQL: the Broadcast row is carried by the device at (station_id, village_id)."""
    same_station = Broadcast.station_id == station_id
    if village_id is None:
        return and_(same_station, Broadcast.village_id.is_(None))
    if isinstance(village_id, int):
        # A known village device: plain equality keeps the village index usable.
        return and_(same_station, Broadcast.village_id == village_id)
    # The device's column: NULL (the station PC) matches NULL.
    return and_(same_station, Broadcast.village_id.is_not_distinct_from(village_id))


def carries_emergency(village_ids: Sequence[int] | None, device_village_id: int | None) -> bool:
    """Whether an emergency for these villages (None: all) plays on this device of its station."""
    return village_ids is None or device_village_id is None or device_village_id in village_ids
