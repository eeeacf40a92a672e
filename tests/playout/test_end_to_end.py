"""The whole flow on real parts: a segment is approved, assembled into a broadcast, played
by the real agent from a real server on a loopback port, reported, and counted as aired."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.playout.agent import Agent, AgentConfig, SubprocessPlayer
from tests.helpers import make_station, staff
from tests.playout.agent_fixtures import NULL_PLAYER
from tests.playout.helpers import approved_segment, broadcast, pink, short_windows


@pytest.fixture
def server_url(database_url: str) -> Iterator[str]:
    """The real loaxa app served by uvicorn on a free loopback port."""
    from app.main import create_app

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


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


def _agent(server_url: str, token: str, folder: Path) -> Agent:
    config = AgentConfig.model_validate(
        {
            "server_url": server_url,
            "device_token": token,
            "cache_dir": folder / "cache",
            "journal": folder / "journal.sqlite",
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
    return Agent(config, player=SubprocessPlayer(config.player_command))


def _run_all_until(agents: list[Agent], done, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(min(min(a.step() for a in agents), 0.05))


def _accepted(agent: Agent, **match: int) -> list[object]:
    return [
        e
        for e in agent.journal.events()
        if e.upload == "accepted" and all(getattr(e, k) == v for k, v in match.items())
    ]


def test_ip_station_every_village_cluster_airs_the_commune_s_programme(
    client: TestClient, server_url: str, tmp_path: Path
) -> None:
    ids = make_station(villages=2, network="ip")
    sid, (v1, v2) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)
    short_windows()
    seg = approved_segment(client, h, pink(tmp_path / "a.mp3", 2), title="Tin CCHC tháng này")
    vseg = approved_segment(
        client,
        h,
        pink(tmp_path / "b.mp3", 2, seed=2),
        title="Tin thôn 1",
        programme="village-weekly",
        village_ids=[v1],
    )
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    commune = broadcast(
        client, h, station_id=sid, starts_at=starts.isoformat(), segment_ids=[seg["id"]]
    )
    after = starts + timedelta(milliseconds=commune["master_duration_ms"] + 2000)
    village = broadcast(
        client,
        h,
        station_id=sid,
        starts_at=after.replace(microsecond=0).isoformat(),
        segment_ids=[vseg["id"]],
        programme="village-weekly",
        village_id=v1,
    )
    assert commune["network"] == village["network"] == "ip"
    tokens = {}
    for name, vid in (("thon1", v1), ("thon2", v2)):
        r = client.post(
            "/api/v1/devices",
            json={"name": f"Cụm loa {name}", "station_id": sid, "village_id": vid},
            headers=h["admin"],
        )
        tokens[name] = r.json()["token"]
    thon1 = _agent(server_url, tokens["thon1"], tmp_path / "thon1")
    thon2 = _agent(server_url, tokens["thon2"], tmp_path / "thon2")
    try:
        # Both clusters air the commune's programme; Thôn 1 its own slot too, Thôn 2 not.
        _run_all_until(
            [thon1, thon2],
            lambda: _accepted(thon1, broadcast_id=village["id"])
            and _accepted(thon2, broadcast_id=commune["id"]),
            60,
        )
        for agent in (thon1, thon2):
            [event] = [e for e in agent.journal.events() if e.broadcast_id == commune["id"]]
            assert event.status == "played" and event.upload == "accepted"
            assert abs((event.started_at - starts).total_seconds()) <= 2
        [own] = _accepted(thon1, broadcast_id=village["id"])
        assert own.status == "played"  # type: ignore[attr-defined]
        assert not [e for e in thon2.journal.events() if e.broadcast_id == village["id"]]

        # An emergency for Thôn 2 plays on Thôn 2's cluster only.
        r = client.post(
            "/api/v1/emergencies",
            json={"station_id": sid, "segment_id": seg["id"], "village_ids": [v2]},
            headers=h["approver"],
        )
        assert r.status_code == 201, r.text
        emergency_id = r.json()["id"]
        _run_all_until([thon1, thon2], lambda: _accepted(thon2, emergency_id=emergency_id), 30)
        [urgent] = _accepted(thon2, emergency_id=emergency_id)
        assert urgent.status == "played"  # type: ignore[attr-defined]
        _run_all_until([thon1, thon2], lambda: False, 1.5)  # Thôn 1 polls a few more times
        assert not [e for e in thon1.journal.events() if e.emergency_id == emergency_id]
    finally:
        thon1.close()
        thon2.close()

    for b in (commune, village):
        got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()
        assert got["status"] == "aired"
    month = commune["local_month"]
    report = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": sid, "year": month[:4], "month": month},
        headers=h["viewer"],
    ).json()
    [row] = [m for m in report["months"] if m["programme"] == "cchc"]
    assert row["aired"] == 1
