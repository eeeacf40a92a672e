"""Years outside 2000-2100 are refused with 422 everywhere in the API (issue 21, finding 9:
`starts_at` in year 9999 or 0001 answered 500), and so are overlong numbers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_station, staff

FAR = ["9999-12-31T23:00:00+07:00", "0001-01-01T00:00:00+07:00", "2100-12-31T23:30:00-05:00"]


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


@pytest.mark.parametrize("when", FAR)
def test_a_broadcast_in_a_far_year_is_422(client: TestClient, world: dict, when: str) -> None:
    h, sid = world["h"], world["station_id"]
    r = client.post(
        "/api/v1/broadcasts",
        json={"programme": "cchc", "station_id": sid, "starts_at": when},
        headers=h["approver"],
    )
    assert r.status_code == 422, r.text
    assert "starts_at" in r.text and "2000 to 2100" in r.text
    ok = client.post(
        "/api/v1/broadcasts",
        json={"programme": "cchc", "station_id": sid, "starts_at": "2030-05-18T17:00:00+07:00"},
        headers=h["approver"],
    )
    assert ok.status_code == 201, ok.text
    moved = client.patch(
        f"/api/v1/broadcasts/{ok.json()['id']}",
        json={"starts_at": when, "version": ok.json()["version"]},
        headers=h["approver"],
    )
    assert moved.status_code == 422, moved.text


@pytest.mark.parametrize("month", ["9999-01", "0001-12", "٢٠٢٤-03"])
def test_a_month_in_a_far_year_or_not_in_ascii_digits_is_422(
    client: TestClient, world: dict, month: str
) -> None:
    h = world["h"]
    body = {"title": "Tin", "programme": "cchc", "topic": "progress", "target_month": month}
    assert client.post("/api/v1/segments", json=body, headers=h["editor"]).status_code == 422
    r = client.get("/api/v1/segments", params={"month": month}, headers=h["editor"])
    assert r.status_code == 422
    r = client.get("/api/v1/broadcasts", params={"month": month}, headers=h["editor"])
    assert r.status_code == 422


def test_an_as_run_event_in_a_far_year_is_rejected_alone(client: TestClient, world: dict) -> None:
    h, sid = world["h"], world["station_id"]
    made = client.post(
        "/api/v1/devices", json={"name": "PC", "station_id": sid}, headers=h["admin"]
    )
    pc = {"Authorization": f"Bearer {made.json()['token']}"}
    event = {
        "event_id": "far-1",
        "broadcast_id": 1,
        "sha256": "a" * 64,
        "started_at": "9999-12-31T23:00:00+07:00",
        "ended_at": "9999-12-31T23:10:00+07:00",
        "status": "played",
    }
    r = client.post("/api/v1/playout/as-run", json=[event], headers=pc)
    assert r.status_code == 200, r.text
    (refused,) = r.json()["rejected"]
    assert refused["event_id"] == "far-1" and "2000 to 2100" in refused["reason"]


def test_a_30_digit_device_place_is_422(client: TestClient, world: dict) -> None:
    h, sid = world["h"], world["station_id"]
    r = client.post(
        "/api/v1/devices",
        json={"name": "PC", "station_id": sid, "village_id": 10**29},
        headers=h["admin"],
    )
    assert r.status_code == 422, r.text
    assert "village_id" in r.text
