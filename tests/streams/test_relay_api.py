"""Relay programmes through the API: created with their stream, planned daily, listed in
playlists as streams, reported and counted as relayed; bad input refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import clock
from tests.helpers import make_station, staff
from tests.playout.helpers import device

VN_0600_UTC = datetime(2024, 3, 16, 6, 0, tzinfo=UTC) - timedelta(hours=7)
VOV1 = {
    "code": "vov1",
    "name": "Tiếp sóng Đài Tiếng nói Việt Nam",
    "scope": "station",
    "cadence": {"kind": "daily", "time": "06:00"},
    "min_duration_ms": 1_800_000,
    "max_duration_ms": 1_800_000,
    "source": {"kind": "relay", "url": "http://radio.example.vn:8000/vov1"},
}


def _programmes(sid: int) -> str:
    return f"/api/v1/stations/{sid}/programmes"


@pytest.fixture
def world(client: TestClient) -> dict[str, Any]:
    ids = make_station(villages=2, network="ip")
    return {**ids, "h": staff(client, ids["station_id"])}


def _relay(client: TestClient, world: dict[str, Any], **changes: Any) -> Any:
    r = client.post(
        _programmes(world["station_id"]), json={**VOV1, **changes}, headers=world["h"]["admin"]
    )
    return r


def test_an_admin_creates_a_relay_and_the_plan_makes_a_slot_each_day(
    client: TestClient, world: dict[str, Any]
) -> None:
    r = _relay(client, world)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["source"] == VOV1["source"] and body["cadence"] == VOV1["cadence"]
    listed = client.get(_programmes(world["station_id"]), headers=world["h"]["viewer"]).json()
    assert [p["code"] for p in listed if p["source"]] == ["vov1"]

    clock.set_now(lambda: datetime(2024, 3, 1, tzinfo=UTC))
    r = client.post(
        f"/api/v1/stations/{world['station_id']}/plan",
        params={"year": 2024},
        headers=world["h"]["approver"],
    )
    assert r.status_code == 200, r.text
    got = client.get(
        "/api/v1/broadcasts",
        params={"programme": "vov1", "year": 2024, "size": 500},
        headers=world["h"]["viewer"],
    ).json()
    relays = got["items"]
    assert got["total"] == 366  # every day of a leap year, once
    assert {b["starts_at"][11:16] for b in relays} == {"23:00"}  # 06:00 in Hà Nội, UTC
    assert all(b["village_id"] is None for b in relays)


def test_a_relay_is_a_stream_item_in_the_playlist_and_m3u(
    client: TestClient, world: dict[str, Any]
) -> None:
    assert _relay(client, world).status_code == 201
    sid = world["station_id"]
    station_pc = device(client, world["h"]["admin"], sid)
    cluster = device(client, world["h"]["admin"], sid, world["village_ids"][0])
    r = client.post(
        "/api/v1/broadcasts",
        json={"programme": "vov1", "station_id": sid, "starts_at": VN_0600_UTC.isoformat()},
        headers=world["h"]["approver"],
    )
    assert r.status_code == 201, r.text
    b = r.json()
    # Ready as soon as it is planned: no rundown, no assembly.
    for dev in (station_pc, cluster):
        items = client.get(
            "/api/v1/playout/playlist", params={"date": "2024-03-16"}, headers=dev["h"]
        ).json()["items"]
        [item] = [i for i in items if i["broadcast_id"] == b["id"]]
        assert item["kind"] == "stream"
        assert item["sha256"] is None and item["audio_url"] is None
        assert item["stream_url"] == f"http://testserver:8001/relay-{sid}-vov1"
        assert item["duration_ms"] == 1_800_000
        assert item["starts_at"] == VN_0600_UTC.isoformat()
    m3u = client.get(
        "/api/v1/playout/playlist",
        params={"date": "2024-03-16", "format": "m3u"},
        headers=station_pc["h"],
    ).text
    assert f"#EXTINF:1800,{VOV1['name']}\nhttp://testserver:8001/relay-{sid}-vov1\n" in m3u

    # A rundown or an assembly of a relay: refused, naming why.
    r = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [1]},
        headers=world["h"]["approver"],
    )
    assert r.status_code == 422 and "segment_ids" in r.json()["detail"], r.text
    r = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=world["h"]["approver"])
    assert r.status_code == 422 and "relays a stream" in r.json()["detail"], r.text


def test_the_as_run_of_a_relay_reports_what_was_heard(
    client: TestClient, world: dict[str, Any]
) -> None:
    assert _relay(client, world, min_duration_ms=600_000, max_duration_ms=600_000).is_success
    sid = world["station_id"]
    pc = device(client, world["h"]["admin"], sid)
    starts = VN_0600_UTC
    b = client.post(
        "/api/v1/broadcasts",
        json={"programme": "vov1", "station_id": sid, "starts_at": starts.isoformat()},
        headers=world["h"]["approver"],
    ).json()
    clock.set_now(lambda: starts + timedelta(hours=1))
    ended = (starts + timedelta(minutes=10)).isoformat()

    def event(eid: str, **kw: Any) -> dict[str, Any]:
        return {
            "event_id": eid,
            "broadcast_id": b["id"],
            "sha256": None,
            "started_at": starts.isoformat(),
            "ended_at": ended,
            "status": "played",
            "relayed_ms": 590_000,
            "dropouts": {"count": 1, "total_ms": 10_000},
            **kw,
        }

    r = client.post(
        "/api/v1/playout/as-run",
        json=[
            event("bad-sha", sha256="a" * 64),
            event("no-relayed", relayed_ms=None),
            event("too-long", ended_at=(starts + timedelta(minutes=11)).isoformat()),
            event("good"),
        ],
        headers=pc["h"],
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["accepted"] == ["good"]
    reasons = {x["event_id"]: x["reason"] for x in result["rejected"]}
    assert "sha256 must be null" in reasons["bad-sha"]
    assert "relayed_ms is required" in reasons["no-relayed"]
    assert "longer than the 600.0 s window" in reasons["too-long"]
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=world["h"]["viewer"]).json()
    assert got["status"] == "aired"  # 590 of 600 s: over the 90 % a relay needs


def test_a_relay_heard_for_less_than_90_percent_is_not_relayed(
    client: TestClient, world: dict[str, Any]
) -> None:
    assert _relay(client, world, min_duration_ms=600_000, max_duration_ms=600_000).is_success
    sid = world["station_id"]
    pc = device(client, world["h"]["admin"], sid)
    b = client.post(
        "/api/v1/broadcasts",
        json={"programme": "vov1", "station_id": sid, "starts_at": VN_0600_UTC.isoformat()},
        headers=world["h"]["approver"],
    ).json()
    clock.set_now(lambda: VN_0600_UTC + timedelta(hours=1))
    r = client.post(
        "/api/v1/playout/as-run",
        json=[
            {
                "event_id": "short",
                "broadcast_id": b["id"],
                "sha256": None,
                "started_at": VN_0600_UTC.isoformat(),
                "ended_at": (VN_0600_UTC + timedelta(minutes=10)).isoformat(),
                "status": "played",
                "relayed_ms": 530_000,
                "dropouts": {"count": 3, "total_ms": 70_000},
            }
        ],
        headers=pc["h"],
    )
    assert r.json()["accepted"] == ["short"]
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=world["h"]["viewer"]).json()
    assert got["status"] != "aired"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source": {"kind": "relay", "url": "rtsp://radio.example.vn/vov1"}}, "url"),
        ({"source": {"kind": "relay", "url": "ftp://radio.example.vn/vov1"}}, "url"),
        ({"source": {"kind": "relay", "url": "http:///vov1"}}, "url"),
        ({"source": {"kind": "relay"}}, "url"),
        ({"source": {"kind": "podcast", "url": "http://a.vn/x"}}, "kind"),
        ({"max_duration_ms": 25 * 3600_000, "min_duration_ms": 25 * 3600_000}, "max_duration_ms"),
        ({"max_duration_ms": 1_900_000}, "max_duration_ms"),
        ({"cadence": {"kind": "daily", "time": "6h"}}, "cadence"),
        ({"cadence": {"kind": "hourly"}}, "kind"),
        ({"code": "VOV 1"}, "code"),
        ({"code": "cchc"}, "code"),
    ],
)
def test_bad_relays_are_refused_naming_the_field(
    client: TestClient, world: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    r = _relay(client, world, **changes)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"], r.json()
    listed = client.get(_programmes(world["station_id"]), headers=world["h"]["viewer"]).json()
    assert [p["code"] for p in listed] == ["cchc", "village-weekly"]  # nothing half-made


def test_a_second_relay_with_the_same_code_is_refused(
    client: TestClient, world: dict[str, Any]
) -> None:
    assert _relay(client, world).status_code == 201
    r = _relay(client, world, name="VOV1 lần hai")
    assert r.status_code == 422 and "code" in r.json()["detail"]


def test_an_admin_edits_a_relay_s_stream_and_name(
    client: TestClient, world: dict[str, Any]
) -> None:
    assert _relay(client, world).status_code == 201
    r = client.patch(
        f"{_programmes(world['station_id'])}/vov1",
        json={"name": "VOV1 buổi sáng", "source": {"kind": "relay", "url": "https://a.vn/v.m3u8"}},
        headers=world["h"]["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "VOV1 buổi sáng"
    assert r.json()["source"]["url"] == "https://a.vn/v.m3u8"
    r = client.patch(
        f"{_programmes(world['station_id'])}/vov1",
        json={"min_duration_ms": 60_000},
        headers=world["h"]["admin"],
    )
    assert r.status_code == 422 and "exact" in r.json()["detail"]
    r = client.patch(
        f"{_programmes(world['station_id'])}/cchc",
        json={"source": {"kind": "relay", "url": "https://a.vn/v.m3u8"}},
        headers=world["h"]["admin"],
    )
    assert r.status_code == 422 and "source" in r.json()["detail"]


def test_a_relay_may_not_double_book_a_village_cluster(
    client: TestClient, world: dict[str, Any]
) -> None:
    # An ip station's clusters play the commune's relays too: a daily relay at the villages'
    # weekly slot (Sunday 18:00, up to 10 min) asks one loudspeaker for two things at once.
    r = _relay(client, world, cadence={"kind": "daily", "time": "17:55"})
    assert r.status_code == 422, r.text
    assert "cadence" in r.json()["detail"] and "village-weekly" in r.json()["detail"]
    assert _relay(client, world, cadence={"kind": "daily", "time": "05:00"}).status_code == 201
