"""Playout's scheduled job: counting the coming playlists of one time zone's stations."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db import unit_of_work
from app.devices import service as devices
from app.playout.jobs import count_coming_playlists
from app.schedule import service as schedule
from app.stations import service as stations


def test_count_coming_playlists_counts_only_its_own_zone(database_url: str) -> None:
    with unit_of_work() as session:
        hanoi = stations.create_station(session, name="Xuân Phúc", timezone="Asia/Ho_Chi_Minh")
        paris = stations.create_station(session, name="Paris", timezone="Europe/Paris")
        for station_id, starts_at in (
            (hanoi.id, datetime(2024, 3, 16, 10, tzinfo=UTC)),  # 16 March, 17:00 local
            (paris.id, datetime(2024, 3, 17, 16, tzinfo=UTC)),  # 17 March, 17:00 local
        ):
            broadcast = schedule.create_broadcast(
                session, station_id=station_id, programme_code="cchc", starts_at=starts_at
            )
            broadcast.status, broadcast.master_sha256 = "assembled", "a" * 64
            broadcast.master_duration_ms = 600_000
            devices.create_device(session, name=f"PC {station_id}", station_id=station_id)
    now = datetime(2024, 3, 16, 0, 30, tzinfo=UTC)  # 07:30 in Vietnam, 01:30 in Paris
    assert count_coming_playlists(now, tz_name="Asia/Ho_Chi_Minh") == 1
    assert count_coming_playlists(now, tz_name="Europe/Paris") == 1
    assert count_coming_playlists(now, tz_name="Europe/Paris", days_ahead=0) == 0
    assert count_coming_playlists(now, tz_name="UTC") == 0
