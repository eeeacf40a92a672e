"""Revoking a device's token and issuing a new one (issue 21, finding 7): API, console, CLI."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.db import unit_of_work
from tests.cli.test_cli import loaxa
from tests.helpers import make_station, staff

PLAYLIST = "/api/v1/playout/playlist"


def _device(client: TestClient, admin: dict[str, str], station_id: int) -> tuple[int, str]:
    r = client.post(
        "/api/v1/devices", json={"name": "PC Đài xã", "station_id": station_id}, headers=admin
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def _polls(client: TestClient, token: str) -> int:
    return client.get(PLAYLIST, headers={"Authorization": f"Bearer {token}"}).status_code


def test_an_admin_revokes_a_token_and_issues_a_new_one_through_the_api(
    client: TestClient,
) -> None:
    ids = make_station()
    h = staff(client, ids["station_id"])
    device_id, token = _device(client, h["admin"], ids["station_id"])
    assert _polls(client, token) == 200
    # Only an admin.
    assert (
        client.post(f"/api/v1/devices/{device_id}/revoke", headers=h["approver"]).status_code == 403
    )
    r = client.post(f"/api/v1/devices/{device_id}/revoke", headers=h["admin"])
    assert r.status_code == 200 and r.json()["is_active"] is False
    # The token answers 401 at once, on every device endpoint.
    assert _polls(client, token) == 401
    dev = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/playout/emergencies", headers=dev).status_code == 401
    assert client.post("/api/v1/playout/as-run", json=[], headers=dev).status_code == 401
    # A new token: shown once, works; the device is enabled again; the old one stays dead.
    r = client.post(f"/api/v1/devices/{device_id}/token", headers=h["admin"])
    assert r.status_code == 200, r.text
    fresh = r.json()["token"]
    assert fresh.startswith("dev_") and fresh != token and r.json()["is_active"] is True
    assert _polls(client, fresh) == 200
    assert _polls(client, token) == 401
    # Another new token kills the one before it.
    newer = client.post(f"/api/v1/devices/{device_id}/token", headers=h["admin"]).json()["token"]
    assert _polls(client, fresh) == 401 and _polls(client, newer) == 200
    assert "token" not in client.get("/api/v1/devices", headers=h["admin"]).json()[0]
    assert client.post("/api/v1/devices/999/revoke", headers=h["admin"]).status_code == 404
    with unit_of_work(write=False) as db:
        actions = db.scalars(
            select(AuditEvent.action).where(AuditEvent.entity == "device").order_by(AuditEvent.id)
        ).all()
    assert actions == ["device.create", "device.revoke", "device.token", "device.token"]


def test_the_cli_revokes_a_device(client: TestClient) -> None:
    ids = make_station()
    admin = staff(client, ids["station_id"])["admin"]
    device_id, token = _device(client, admin, ids["station_id"])
    done = loaxa("device", "revoke", str(device_id))
    assert done.returncode == 0, done.stderr
    assert f"revoked the token of device {device_id}" in done.stdout
    assert _polls(client, token) == 401
    missing = loaxa("device", "revoke", "999")
    assert missing.returncode == 1 and "device 999 does not exist" in missing.stderr
