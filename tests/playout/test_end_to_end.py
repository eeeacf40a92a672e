"""The whole flow on real parts: a segment is approved, assembled into a broadcast, played
by the real agent from a real server on a loopback port, reported, and counted as aired."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from app.playout.agent import Agent, AgentConfig, SubprocessPlayer
from tests.helpers import make_station, staff
from tests.playout.agent_fixtures import NULL_PLAYER
from tests.playout.helpers import approved_segment, broadcast, pink, short_windows


def _run_until(agent: Agent, done, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(min(agent.step(), 0.05))


def test_segment_to_loudspeaker_to_report(
    client: TestClient, server_url: str, tmp_path: Path
) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    short_windows()
    seg = approved_segment(client, h, pink(tmp_path / "a.mp3", 2), title="Tin CCHC tháng này")
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    b = broadcast(
        client,
        h,
        station_id=ids["station_id"],
        starts_at=starts.isoformat(),
        segment_ids=[seg["id"]],
    )
    token = client.post(
        "/api/v1/devices",
        json={"name": "PC Đài xã", "station_id": ids["station_id"]},
        headers=h["admin"],
    ).json()["token"]
    config = AgentConfig.model_validate(
        {
            "server_url": server_url,
            "device_token": token,
            "cache_dir": tmp_path / "cache",
            "journal": tmp_path / "journal.sqlite",
            "player_command": NULL_PLAYER,
            "start_grace_seconds": 2,
            "min_remaining_seconds": 0.3,
            "emergency_poll_seconds": 0.5,
            "playlist_poll_seconds": 1,
            "upload_interval_seconds": 0.5,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 1,
            "tick_seconds": 0.05,
            "heartbeat_seconds": 0.2,
        }
    )
    agent = Agent(config, player=SubprocessPlayer(config.player_command))
    try:

        def aired() -> bool:
            events = agent.journal.events()
            return any(e.status == "played" and e.upload == "accepted" for e in events)

        _run_until(agent, aired, 60)
        [event] = [e for e in agent.journal.events() if e.broadcast_id == b["id"]]
        assert event.status == "played" and event.upload == "accepted"
        # It started on time (within the grace) and played the whole master.
        assert abs((event.started_at - starts).total_seconds()) <= 2
        played_ms = (event.ended_at - event.started_at).total_seconds() * 1000
        assert abs(played_ms - b["master_duration_ms"]) <= 1500

        # An emergency interrupts nothing here but must play within seconds, and be logged.
        r = client.post(
            "/api/v1/emergencies",
            json={"station_id": ids["station_id"], "segment_id": seg["id"]},
            headers=h["approver"],
        )
        assert r.status_code == 201, r.text
        emergency_id = r.json()["id"]
        created = datetime.now(UTC)

        def emergency_played() -> bool:
            return any(
                e.emergency_id == emergency_id and e.upload == "accepted"
                for e in agent.journal.events()
            )

        _run_until(agent, emergency_played, 30)
        [urgent] = [e for e in agent.journal.events() if e.emergency_id == emergency_id]
        assert urgent.status == "played"
        assert (urgent.started_at - created).total_seconds() < 30
    finally:
        agent.close()

    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()
    assert got["status"] == "aired"
    local_month = got["local_month"]
    report = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": ids["station_id"], "year": local_month[:4], "month": local_month},
        headers=h["viewer"],
    ).json()
    [row] = report["months"]
    assert row["aired"] == 1 and row["compliant"] is True
    assert abs(row["aired_ms"] - b["master_duration_ms"]) <= 1500
    devices = client.get("/api/v1/devices", headers=h["admin"]).json()
    assert devices[0]["last_played_at"] is not None
