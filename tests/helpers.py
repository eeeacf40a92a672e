"""Small builders for test data, through the same service functions the API uses."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts.models import Role, User
from app.db import unit_of_work
from app.stations import service as stations
from app.stations.models import Network, Station

PASSWORD = "mật-khẩu-đủ-dài"


def make_station(
    name: str = "Xuân Phúc", villages: int = 3, network: str = Network.ip.value
) -> dict[str, Any]:
    """A committed station with villages (an `ip` network unless told); returns plain ids."""
    with unit_of_work() as session:
        station = stations.create_station(
            session, name=name, hotline="0237 3868 115", network=Network(network)
        )
        village_ids = [
            stations.create_village(session, station=station, name=f"Thôn {n}").id
            for n in range(1, villages + 1)
        ]
        result = {"station_id": station.id, "village_ids": village_ids}
    return result


def make_user(username: str, role: Role, station_id: int | None = None) -> int:
    with unit_of_work() as session:
        user = accounts.create_user(
            session, username=username, password=PASSWORD, role=role, station_id=station_id
        )
        user_id = user.id
    return user_id


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Authorization headers for the user, through the real token endpoint."""
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def staff(client: TestClient, station_id: int | None = None) -> dict[str, dict[str, str]]:
    """One signed-in user of each role, keyed by role name."""
    headers = {}
    for role in Role:
        make_user(f"{role.value}1", role, station_id if role != Role.admin else None)
        headers[role.value] = login(client, f"{role.value}1")
    return headers


def get_station(session: Session, station_id: int) -> Station:
    station = session.get(Station, station_id)
    assert station is not None
    return station


def user(session: Session, user_id: int) -> User:
    u = session.get(User, user_id)
    assert u is not None
    return u
