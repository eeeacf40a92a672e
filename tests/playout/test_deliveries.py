"""Each device's pickup and start of an emergency, recorded at the wire (poll and as-run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import clock
from tests.helpers import make_station, staff
from tests.playout.helpers import approved_segment, device, pink, short_windows

EMERGENCIES = "/api/v1/playout/emergencies"
AS_RUN = "/api/v1/playout/as-run"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pink(tmp_path_factory.mktemp("clips") / "a.mp3", 2)


def test_a_poll_records_the_pickup_once_and_as_run_the_start(
    client: TestClient, clip: Path
) -> None:
    # fm: the station's PC feeds the transmitter, so it plays a village emergency too (in an ip
    # station only the villages' clusters do: tests/playout/test_networks.py).
    ids = make_station(network="fm")
    h = staff(client, ids["station_id"])
    short_windows()
    sid, (v1, v2, _) = ids["station_id"], ids["village_ids"]
    t0 = datetime(2024, 9, 7, 3, 0, tzinfo=UTC)
    clock.set_now(lambda: t0)
    seg = approved_segment(client, h, clip, title="Bão số 3")
    pc, pc1, pc2 = (device(client, h["admin"], sid, v) for v in (None, v1, v2))
    quiet = client.get(EMERGENCIES, headers=pc1["h"])  # nothing on air: nothing recorded
    e = client.post(
        "/api/v1/emergencies",
        json={"station_id": sid, "segment_id": seg["id"], "village_ids": [v1]},
        headers=h["approver"],
    ).json()

    def deliveries() -> dict[int, dict[str, Any]]:
        r = client.get(f"/api/v1/emergencies/{e['id']}", headers=h["viewer"])
        assert r.status_code == 200, r.text
        return {d["device_id"]: d for d in r.json()["deliveries"]}

    # In scope: the station's PC (it carries every village) and village 1's; not village 2's.
    assert set(deliveries()) == {pc["id"], pc1["id"]}
    assert all(d["picked_up_at"] is None for d in deliveries().values())

    clock.set_now(lambda: t0 + timedelta(seconds=4))
    first = client.get(EMERGENCIES, headers={**pc1["h"], "If-None-Match": quiet.headers["etag"]})
    assert first.status_code == 200 and [x["id"] for x in first.json()] == [e["id"]]
    got = deliveries()[pc1["id"]]
    assert datetime.fromisoformat(got["picked_up_at"]) == t0 + timedelta(seconds=4)
    assert got["started_at"] is None and got["device_name"] == f"PC {v1}"
    assert deliveries()[pc["id"]]["picked_up_at"] is None

    # Later polls (a 304, or a restarted agent without its ETag) keep the first pickup.
    clock.set_now(lambda: t0 + timedelta(seconds=20))
    again = client.get(EMERGENCIES, headers={**pc1["h"], "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get(EMERGENCIES, headers=pc1["h"]).status_code == 200
    assert datetime.fromisoformat(deliveries()[pc1["id"]]["picked_up_at"]) == t0 + timedelta(
        seconds=4
    )
    assert client.get(EMERGENCIES, headers=pc2["h"]).json() == []
    assert pc2["id"] not in deliveries()

    def played(event_id: str, start: int) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "emergency_id": e["id"],
            "sha256": e["sha256"],
            "started_at": (t0 + timedelta(seconds=start)).isoformat(),
            "ended_at": (t0 + timedelta(seconds=start + 2)).isoformat(),
            "status": "played",
        }

    r = client.post(AS_RUN, json=[played("em-2", 9)], headers=pc1["h"])
    assert r.json()["accepted"] == ["em-2"]
    assert datetime.fromisoformat(deliveries()[pc1["id"]]["started_at"]) == t0 + timedelta(
        seconds=9
    )
    # A batch arriving late about an earlier start: the earliest start wins.
    client.post(AS_RUN, json=[played("em-1", 6)], headers=pc1["h"])
    client.post(AS_RUN, json=[played("em-3", 12)], headers=pc1["h"])
    assert datetime.fromisoformat(deliveries()[pc1["id"]]["started_at"]) == t0 + timedelta(
        seconds=6
    )
    # The station PC started it without a recorded pickup: the start still shows.
    client.post(AS_RUN, json=[played("pc-1", 7)], headers=pc["h"])
    d = deliveries()[pc["id"]]
    assert d["picked_up_at"] is None and d["started_at"] is not None
    # The list keeps its shape: no deliveries there.
    listed = client.get("/api/v1/emergencies", headers=h["viewer"]).json()["items"]
    assert "deliveries" not in listed[0]
