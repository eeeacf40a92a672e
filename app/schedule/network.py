"""A station's network kind changed: its history (app.stations.network) and its broadcasts.

Each broadcast records the kind of its own local day, which says who carries it
(app.playout.scope); a change applies from the station's next local day, so the broadcasts
from that day on are restamped here, in the schedule, which owns them. Stations know
nothing of broadcasts (the layering the README states).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, case, update
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.errors import Invalid
from app.schedule.models import Broadcast
from app.segments.models import Segment, SegmentStatus
from app.stations import service as stations
from app.stations.models import Network, Station
from app.stations.network import (
    NetworkState,
    change_history,
    local_midnight,
    network_state,
    snapshot,
)


def set_network(
    session: Session,
    *,
    station: Station,
    network: Network,
    actor: User | None = None,
    now: datetime | None = None,
) -> NetworkState:
    """Change the station's kind from its next local day on; restamp those days' broadcasts.

    Idempotent: asking for the kind already in force (or already pending) changes nothing
    but the pending answer of the day.
    """
    now = now or clock.now()
    before = network_state(station, now)
    session.flush()
    tomorrow = change_history(station, network, actor=actor, now=now)
    session.flush()
    result = session.execute(
        update(Broadcast)
        .where(
            Broadcast.station_id == station.id,
            Broadcast.starts_at >= local_midnight(station, tomorrow),
            Broadcast.network != network.value,
        )
        .values(
            network=network.value,
            updated_at=now,
            version=Broadcast.version + 1,
            # A restamp is not a change by staff: a broadcast the plan may still re-plan
            # (plan_version == version, app.schedule.planning) stays so.
            plan_version=case(
                (Broadcast.plan_version == Broadcast.version, Broadcast.version + 1),
                else_=Broadcast.plan_version,
            ),
        )
    )
    restamped = cast(CursorResult[Any], result).rowcount
    after = network_state(station, now)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="station.network",
            entity="station",
            entity_id=station.id,
            before=snapshot(before),
            after={**snapshot(after), "broadcasts_restamped": restamped},
        )
    return after


def update_station(
    session: Session,
    *,
    station: Station,
    changes: Mapping[str, Any],
    actor: User | None = None,
) -> Station:
    """Change a station's details (app.stations.service.update_station) and, when given, its
    network kind from its next local day on (set_network). A relay fallback must be one of
    the station's approved segments with audio (422 naming the field)."""
    fallback = changes.get("relay_fallback_segment_id")
    if fallback is not None:
        segment = session.get(Segment, fallback)
        if segment is None or segment.station_id != station.id:
            raise Invalid(f"relay_fallback_segment_id: segment {fallback} does not exist")
        if segment.status != SegmentStatus.approved.value or segment.audio_id is None:
            raise Invalid(
                f"relay_fallback_segment_id: segment {fallback} must be approved and have audio"
            )
    stations.update_station(
        session,
        station=station,
        changes={k: v for k, v in changes.items() if k != "network"},
        actor=actor,
    )
    if changes.get("network") is not None:
        set_network(session, station=station, network=Network(changes["network"]), actor=actor)
    return station
