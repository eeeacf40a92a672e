"""The real agent, the real server on a loopback port and a real Mosquitto: an emergency
reaches the loudspeaker through the broker within a second of the POST; with the broker
gone the agent polls as before, and it returns to push when the broker is back."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import unit_of_work
from app.devices.models import Device
from app.playout.agent import Agent, AgentConfig, SubprocessPlayer
from app.push import publisher as publisher_module
from app.push import topics
from app.push.models import PushOutbox
from tests.helpers import make_station, staff
from tests.playout.agent_fixtures import NULL_PLAYER
from tests.playout.helpers import approved_segment, broadcast, pink, short_windows
from tests.push.conftest import Broker, Client


def _step_until(agent: Agent, done: Callable[[], Any], seconds: float, what: str) -> Any:
    """Step the agent as its own loop does: sleep until due, or until a push message."""
    assert agent.push is not None
    deadline = time.monotonic() + seconds
    while True:
        value = done()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        agent.push.wait(min(agent.step(), 0.05))


def _config(server_url: str, token: str, tmp_path: Path, **extra: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "server_url": server_url,
            "device_token": token,
            "cache_dir": tmp_path / "cache",
            "journal": tmp_path / "journal.sqlite",
            "player_command": NULL_PLAYER,
            "emergency_poll_seconds": 10,  # the most allowed: polling cannot explain 1 s
            "playlist_poll_seconds": 60,
            "push_retry_base_seconds": 0.2,
            "push_retry_max_seconds": 0.5,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 1,
            "tick_seconds": 0.05,
            "heartbeat_seconds": 0.5,
            **extra,
        }
    )


@pytest.fixture
def setup(
    client: TestClient, server_url: str, tmp_path: Path, push: publisher_module.Publisher
) -> Iterator[dict[str, Any]]:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    short_windows()
    seg = approved_segment(client, h, pink(tmp_path / "a.mp3", 2), title="Bão số 3")
    r = client.post(
        "/api/v1/devices",
        json={"name": "PC Đài xã", "station_id": ids["station_id"]},
        headers=h["admin"],
    )
    yield {"ids": ids, "h": h, "segment": seg, "token": r.json()["token"], "device": r.json()["id"]}


def _emergency(client: TestClient, setup: dict[str, Any]) -> tuple[int, datetime]:
    posted = datetime.now(UTC)
    r = client.post(
        "/api/v1/emergencies",
        json={"station_id": setup["ids"]["station_id"], "segment_id": setup["segment"]["id"]},
        headers=setup["h"]["approver"],
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], posted


def _started(agent: Agent, emergency_id: int) -> datetime | None:
    parts = [e for e in agent.journal.events() if e.emergency_id == emergency_id]
    return parts[0].started_at if parts else None


def _cancel(client: TestClient, setup: dict[str, Any], emergency_id: int) -> None:
    r = client.delete(f"/api/v1/emergencies/{emergency_id}", headers=setup["h"]["approver"])
    assert r.status_code == 200


def test_an_emergency_plays_within_a_second_of_the_post(
    client: TestClient,
    server_url: str,
    tmp_path: Path,
    setup: dict[str, Any],
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = Agent(
        _config(server_url, setup["token"], tmp_path),
        player=SubprocessPlayer(NULL_PLAYER),
    )
    assert agent.push is not None
    try:
        _step_until(agent, lambda: agent.push and agent.push.connected, 15, "push connected")
        # Polls are now the safety net: the next emergency poll is a minute away.
        _step_until(
            agent,
            lambda: agent.sync.next_emergency_poll - agent.now() > timedelta(seconds=30),
            15,
            "the slow safety-net poll",
        )
        # A malformed message (someone with loaxa's login, a future version) is ignored.
        sender = Client(broker.port, "loaxa", broker.password)
        assert sender.connect()
        alert = topics.alert_topic(setup["ids"]["station_id"])
        with caplog.at_level(logging.WARNING, logger="loaxa.agent.push"):
            for junk in (b"\xff\xfe", b"[]", b'{"v":1,"kind":"boom","version":1}', b"{" * 5000):
                sender.mqtt.publish(alert, junk, qos=1).wait_for_publish(5)
            _step_until(agent, lambda: agent.push and agent.push.ignored == 4, 5, "ignored")
        assert "ignored a message" in caplog.text
        sender.close()
        assert agent.push.connected

        emergency_id, posted = _emergency(client, setup)
        started = _step_until(agent, lambda: _started(agent, emergency_id), 5, "the emergency")
        assert (started - posted).total_seconds() < 1.0, started - posted
        # The agent said so with its telemetry: the device's push state is on record.
        with unit_of_work(write=False) as session:
            state = session.scalar(select(Device.push_state).where(Device.id == setup["device"]))
        assert state == "connected"
    finally:
        agent.close()


def test_broker_down_the_agent_polls_and_returns_to_push(
    client: TestClient,
    server_url: str,
    tmp_path: Path,
    setup: dict[str, Any],
    broker: Broker,
) -> None:
    agent = Agent(
        _config(server_url, setup["token"], tmp_path, emergency_poll_seconds=1),
        player=SubprocessPlayer(NULL_PLAYER),
    )
    assert agent.push is not None
    try:
        _step_until(agent, lambda: agent.push and agent.push.connected, 15, "push connected")
        broker.stop()
        _step_until(agent, lambda: agent.push and not agent.push.connected, 5, "push lost")
        assert agent.push.state == "polling"

        # The POST still succeeds at once; the agent finds the emergency by polling.
        emergency_id, posted = _emergency(client, setup)
        assert (datetime.now(UTC) - posted).total_seconds() < 1.0
        started = _step_until(agent, lambda: _started(agent, emergency_id), 10, "polled emergency")
        assert (started - posted).total_seconds() < 5
        _cancel(client, setup, emergency_id)
        _step_until(agent, lambda: agent.current is None, 10, "the cancelled emergency stopped")

        # The broker is back: the agent subscribes again, the publisher sends what waited.
        broker.start()
        _step_until(agent, lambda: agent.push and agent.push.connected, 15, "push again")

        def outbox_empty() -> bool:
            with unit_of_work(write=False) as session:
                rows = session.scalars(select(PushOutbox)).all()
                return bool(rows) and all(r.sent_at is not None for r in rows)

        _step_until(agent, outbox_empty, 10, "the outbox sent")
        _step_until(
            agent,
            lambda: agent.sync.next_emergency_poll - agent.now() > timedelta(seconds=30),
            15,
            "the slow safety-net poll",
        )
        messages = agent.push.messages
        emergency_id, posted = _emergency(client, setup)
        started = _step_until(agent, lambda: _started(agent, emergency_id), 5, "pushed emergency")
        assert (started - posted).total_seconds() < 1.0
        assert agent.push.messages > messages
    finally:
        agent.close()


def test_a_broker_that_lost_the_login_gets_it_again(
    client: TestClient,
    server_url: str,
    tmp_path: Path,
    setup: dict[str, Any],
    broker: Broker,
    push: publisher_module.Publisher,
) -> None:
    agent = Agent(
        _config(server_url, setup["token"], tmp_path), player=SubprocessPlayer(NULL_PLAYER)
    )
    assert agent.push is not None
    try:
        _step_until(agent, lambda: agent.push and agent.push.connected, 15, "push connected")
        # The broker forgets the device (a lost file, a new broker): it is cut off and refused.
        push._control(lambda corr: publisher_module.logout_commands(setup["device"], corr))
        _step_until(agent, lambda: agent.push and not agent.push.connected, 5, "cut off")
        # The agent asks the server to make its login again, and is back.
        _step_until(agent, lambda: agent.push and agent.push.connected, 15, "push again")
        emergency_id, posted = _emergency(client, setup)
        started = _step_until(agent, lambda: _started(agent, emergency_id), 5, "the emergency")
        assert (started - posted).total_seconds() < 1.0
    finally:
        agent.close()


def test_a_playlist_change_is_pulled_at_once(
    client: TestClient,
    server_url: str,
    tmp_path: Path,
    setup: dict[str, Any],
    broker: Broker,
) -> None:
    agent = Agent(
        # Playlists every 2 s while polling: with push, the safety net's 300 s soon applies.
        _config(server_url, setup["token"], tmp_path, playlist_poll_seconds=2),
        player=SubprocessPlayer(NULL_PLAYER),
    )
    assert agent.push is not None
    try:
        _step_until(agent, lambda: agent.push and agent.push.connected, 15, "push connected")
        _step_until(
            agent,
            lambda: agent.sync.next_playlist_pull - agent.now() > timedelta(seconds=120),
            15,
            "the slow safety-net playlist pull",
        )
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
        b = broadcast(
            client,
            setup["h"],
            station_id=setup["ids"]["station_id"],
            starts_at=starts.isoformat(),
            segment_ids=[setup["segment"]["id"]],
        )
        assembled = time.monotonic()

        def listed() -> bool:
            day = starts.astimezone(agent.timezone()).date()
            stored = agent.journal.playlist(day)
            return stored is not None and f'"broadcast_id": {b["id"]}' in json.dumps(stored.body)

        _step_until(agent, listed, 5, "the new broadcast in the agent's playlist")
        assert time.monotonic() - assembled < 3
    finally:
        agent.close()
