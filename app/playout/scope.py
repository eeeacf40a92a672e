"""Which broadcasts and emergencies a playout device carries: the one place that says so.

Broadcasts, always within the device's own station:

* the station's PC (a device with no village) plays the commune's programmes (broadcasts
  with ``village_id IS NULL``), in either kind of network;
* a village device plays its village's broadcasts and, when the broadcast was published
  under an ``ip`` network (its recorded ``Broadcast.network``, not the station's kind
  today), the commune's programmes too: in an ``ip`` station every village cluster is a
  networked loudspeaker and nothing else brings the commune's programmes to the village.
  Under ``fm`` the villages hear those from the transmitter the station's PC feeds.

Emergencies: one for the whole station (``village_ids`` null) plays on every device of the
station. One for some villages plays on those villages' devices; under ``fm`` (recorded on
the emergency when it went on air) also on the station's PC, since the transmitter is how
the villages hear the station; under ``ip`` on those villages' clusters only, as the
villages not named must not hear it and the station PC's loudspeakers are not theirs.

Playlists, audio access, as-run intake, emergencies, the compliance reports and the
nightly playlist count all ask here; a change to what a device carries is an edit to this
module and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, literal_column, or_
from sqlalchemy.orm import QueryableAttribute

from app.schedule.models import Broadcast
from app.stations.models import Network

# A device's station and village: columns of the statement (Device.station_id) when the
# device is joined in, plain values when it is already known.
Column = ColumnElement[Any] | QueryableAttribute[Any]

# An inline constant: the playlist poll is compiled once to plain SQL with bind parameters.
_IP: ColumnElement[str] = literal_column(f"'{Network.ip.value}'")


def carries_broadcast(
    station_id: Column | int, village_id: Column | int | None
) -> ColumnElement[bool]:
    """SQL: the Broadcast row is carried by the device at (station_id, village_id)."""
    same_station = Broadcast.station_id == station_id
    if village_id is None:  # the station's PC
        return and_(same_station, Broadcast.village_id.is_(None))
    commune_over_ip = and_(Broadcast.village_id.is_(None), Broadcast.network == _IP)
    if isinstance(village_id, int):
        # A known village device: plain equality keeps the village index usable.
        return and_(same_station, or_(Broadcast.village_id == village_id, commune_over_ip))
    # The device's column: NULL (the station PC) matches NULL; a village adds the commune's.
    return and_(
        same_station,
        or_(
            Broadcast.village_id.is_not_distinct_from(village_id),
            and_(village_id.is_not(None), commune_over_ip),
        ),
    )


def carries_emergency(
    village_ids: Sequence[int] | None, network: str, device_village_id: int | None
) -> bool:
    """Whether an emergency for these villages (None: all), on air under `network`, plays on
    this device of its station."""
    if village_ids is None:
        return True
    if device_village_id is None:
        return network != Network.ip.value
    return device_village_id in village_ids
