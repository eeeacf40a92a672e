"""The demo commune: Xuân Phúc (Như Thanh, Thanh Hóa), from its 2024 CCHC plan."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts.models import Role, User
from app.stations import service as stations
from app.stations.models import Station, Village

STATION_NAME = "Xuân Phúc"
STATION_HOTLINE = "0237 3868 115"  # illustrative; the plan names no number
VILLAGE_COUNT = 8


@dataclass
class SeedResult:
    station_id: int
    created: list[str]
    admin_password: str | None  # set only when generated now; shown once


def seed_demo(session: Session) -> SeedResult:
    """Load the demo commune; a second run finds everything there and changes nothing."""
    created: list[str] = []
    station = session.scalar(select(Station).where(Station.name == STATION_NAME))
    if station is None:
        station = stations.create_station(session, name=STATION_NAME, hotline=STATION_HOTLINE)
        created.append(
            f"station {station.name} (id {station.id}) with programmes cchc, village-weekly"
        )
    existing = set(session.scalars(select(Village.name).where(Village.station_id == station.id)))
    for n in range(1, VILLAGE_COUNT + 1):
        name = f"Thôn {n}"
        if name not in existing:
            stations.create_village(session, station=station, name=name)
            created.append(f"village {name}")
    generated: str | None = None
    if session.scalar(select(User.id).where(User.username == "admin")) is None:
        password = os.environ.get("LOAXA_ADMIN_PASSWORD")
        if not password:
            password = generated = secrets.token_urlsafe(12)
        accounts.create_user(session, username="admin", password=password, role=Role.admin)
        created.append("user admin (role admin)")
    return SeedResult(station_id=station.id, created=created, admin_password=generated)
