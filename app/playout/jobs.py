"""Playout's periodic job: count the coming days' playlists of one time zone's stations.

Playlists are computed live from the broadcasts on every poll, so nothing is stored or
published ahead; this job logs what the devices will get (a plain function of `now`,
read-only, safe to run any number of times). `app.schedule.runner` registers it once per
station time zone, shortly after that zone's midnight.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.db import unit_of_work
from app.playout import playlists
from app.stations.models import Station


def count_coming_playlists(now: datetime, *, tz_name: str, days_ahead: int = 2) -> int:
    """Devices of the stations in time zone `tz_name` whose playlist has items, summed over
    the zone's today and the next `days_ahead` days (each day is logged)."""
    today = now.astimezone(ZoneInfo(tz_name)).date()
    with unit_of_work(write=False) as session:
        station_ids = list(session.scalars(select(Station.id).where(Station.timezone == tz_name)))
        return sum(
            playlists.count_playlists(
                session, day=today + timedelta(days=offset), station_ids=station_ids
            )
            for offset in range(days_ahead + 1)
        )
