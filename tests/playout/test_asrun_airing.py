"""A "played" event is an airing only when it covers its master, and no event ends after it
was received (issue 21, finding 8): judged event by event, refusals in `rejected`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import clock
from tests.helpers import make_station, staff
from tests.playout.helpers import approved_segment, broadcast, device, pink, short_windows

AS_RUN = "/api/v1/playout/as-run"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pink(tmp_path_factory.mktemp("clips") / "a.mp3", 12, seed=3)


def _event(
    event_id: str, b: dict[str, Any], start: datetime, ms: int, status: str = "played"
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "broadcast_id": b["id"],
        "sha256": b["master_sha256"],
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(milliseconds=ms)).isoformat(),
        "status": status,
    }


def test_a_played_event_must_cover_its_master_and_not_end_after_it_arrived(
    client: TestClient, clip: Path
) -> None:
    ids = make_station()
    sid = ids["station_id"]
    h = staff(client, sid)
    short_windows()
    seg = approved_segment(client, h, clip)
    b = broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[seg["id"]]
    )
    master_ms = b["master_duration_ms"]
    assert master_ms > 20_000
    pc = device(client, h["admin"], sid)
    now = datetime(2024, 3, 16, 10, 0, 30, tzinfo=UTC)
    clock.set_now(lambda: now)
    on_air = datetime(2024, 3, 16, 10, 0, tzinfo=UTC)

    def status() -> str:
        return client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()["status"]

    batch = [
        # What the review sent: starts 5 s after it is received, covers a part of the master.
        _event("part", b, now + timedelta(seconds=5), master_ms // 3),
        # Covers all of it, but would end six minutes after it was received.
        _event(
            "later", b, now + timedelta(minutes=6) - timedelta(milliseconds=master_ms), master_ms
        ),
    ]
    r = client.post(AS_RUN, json=batch, headers=pc["h"])
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["accepted"] == []
    reasons = {x["event_id"]: x["reason"] for x in result["rejected"]}
    assert "must cover its audio" in reasons["part"] and "interrupted" in reasons["part"]
    assert "in the future" in reasons["later"]
    assert status() == "assembled"
    # A cut-short airing said as such is a true record, not an airing.
    r = client.post(AS_RUN, json=[_event("cut", b, on_air, 5000, "interrupted")], headers=pc["h"])
    assert r.json()["accepted"] == ["cut"], r.text
    assert status() == "assembled"
    # Resumed after an emergency where the master would be by then: the last part, with the
    # first, covers the master; an airing.
    rest_from = on_air + timedelta(seconds=9)
    rest = _event("rest", b, rest_from, master_ms - 9000)
    r = client.post(AS_RUN, json=[rest], headers=pc["h"])
    assert r.json()["accepted"] == ["rest"], r.text
    assert status() == "aired"


def test_a_played_event_a_little_short_of_its_master_is_an_airing(
    client: TestClient, clip: Path
) -> None:
    """Within the tolerance (the player's start, the PC's clock)."""
    ids = make_station()
    h = staff(client, ids["station_id"])
    short_windows()
    seg = approved_segment(client, h, clip)
    b = broadcast(
        client,
        h,
        station_id=ids["station_id"],
        starts_at="2024-03-16T17:00:00+07:00",
        segment_ids=[seg["id"]],
    )
    pc = device(client, h["admin"], ids["station_id"])
    clock.set_now(lambda: datetime(2024, 3, 16, 11, 0, tzinfo=UTC))
    on_air = datetime(2024, 3, 16, 10, 0, tzinfo=UTC)
    whole = _event("whole", b, on_air, b["master_duration_ms"] - 2000)
    r = client.post(AS_RUN, json=[whole], headers=pc["h"])
    assert r.json()["accepted"] == ["whole"], r.text
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()
    assert got["status"] == "aired"
