"""Stations, villages and devices through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.security import hash_device_token
from app.config import get_settings
from app.devices.models import Device
from tests.helpers import login, make_user


def test_admin_creates_a_station_with_the_plan_programmes(client: TestClient) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    r = client.post(
        "/api/v1/stations", json={"name": "Xuân Phúc", "hotline": "0237 3868 115"}, headers=admin
    )
    assert r.status_code == 201, r.text
    station = r.json()
    assert station["timezone"] == "Asia/Ho_Chi_Minh"
    programmes = client.get(f"/api/v1/stations/{station['id']}/programmes", headers=admin).json()
    cchc = next(p for p in programmes if p["code"] == "cchc")
    assert (cchc["min_duration_ms"], cchc["max_duration_ms"]) == (600_000, 900_000)
    assert cchc["cadence"]["kind"] == "monthly"
    assert {p["code"] for p in programmes} == {"cchc", "village-weekly"}


def test_new_stations_are_in_the_configured_time_zone(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    monkeypatch.setenv("LOAXA_TIMEZONE", "Asia/Bangkok")
    get_settings.cache_clear()
    try:
        r = client.post("/api/v1/stations", json={"name": "Xuân Phúc"}, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["timezone"] == "Asia/Bangkok"
        r = client.post(
            "/api/v1/stations", json={"name": "Hải Vân", "timezone": "Asia/Tokyo"}, headers=admin
        )
        assert r.status_code == 201, r.text
        assert r.json()["timezone"] == "Asia/Tokyo"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_villages_are_unique_per_station_and_names_are_nfc(client: TestClient) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    sid = client.post("/api/v1/stations", json={"name": "Xuân Phúc"}, headers=admin).json()["id"]
    decomposed = "Tho\u0302n Đô\u0300ng"  # "Thôn Đồng" typed with combining marks
    r = client.post(f"/api/v1/stations/{sid}/villages", json={"name": decomposed}, headers=admin)
    assert r.status_code == 201
    assert r.json()["name"] == "Thôn Đồng"
    dup = client.post(f"/api/v1/stations/{sid}/villages", json={"name": "Thôn Đồng"}, headers=admin)
    assert dup.status_code == 409
    listed = client.get(f"/api/v1/stations/{sid}/villages", headers=admin).json()
    assert [v["name"] for v in listed] == ["Thôn Đồng"]


def test_station_input_errors_name_the_field(client: TestClient) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    r = client.post("/api/v1/stations", json={"name": "A", "timezone": "Mars/Base"}, headers=admin)
    assert r.status_code == 422 and "time zone" in r.json()["detail"]
    r = client.post("/api/v1/stations", json={"name": "A", "colour": "red"}, headers=admin)
    assert r.status_code == 422 and "colour: unknown field" in r.json()["detail"]
    r = client.get("/api/v1/stations/999/villages", headers=admin)
    assert r.status_code == 404


def test_device_token_is_shown_once_and_stored_hashed(client: TestClient, session: Session) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    sid = client.post("/api/v1/stations", json={"name": "Xuân Phúc"}, headers=admin).json()["id"]
    vid = client.post(
        f"/api/v1/stations/{sid}/villages", json={"name": "Thôn 1"}, headers=admin
    ).json()["id"]
    r = client.post(
        "/api/v1/devices",
        json={"name": "PC Thôn 1", "station_id": sid, "village_id": vid},
        headers=admin,
    )
    assert r.status_code == 201
    token = r.json()["token"]
    device = session.scalar(select(Device).where(Device.id == r.json()["id"]))
    assert device is not None
    assert device.token_hash == hash_device_token(token) and token not in device.token_hash
    listed = client.get("/api/v1/devices", headers=admin).json()
    assert "token" not in listed[0]
    # A device token is not a staff token.
    assert (
        client.get("/api/v1/segments", headers={"Authorization": f"Bearer {token}"}).status_code
        == 403
    )
    other = client.post("/api/v1/stations", json={"name": "Xuân Hòa"}, headers=admin).json()["id"]
    wrong = client.post(
        "/api/v1/devices",
        json={"name": "PC", "station_id": other, "village_id": vid},
        headers=admin,
    )
    assert wrong.status_code == 404 and f"village {vid}" in wrong.json()["detail"]
