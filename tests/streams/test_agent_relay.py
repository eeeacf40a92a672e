"""The real agent relays a stream through the real hub: in its window, through a 10 s cut
of the upstream, around an emergency, and reports what the loudspeakers actually played.

The player writes what it plays to files (raw PCM, 8 kHz mono 16-bit: 16 000 bytes a
second), one per run: "stream-…" for the relay, "file-…" for stored audio (the
emergency, the station's fallback). What the files hold is what the speakers heard.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.playout.agent import Agent, AgentConfig, SubprocessPlayer
from tests.helpers import make_station, staff
from tests.playout.helpers import approved_segment, pink
from tests.streams.conftest import Hub, Upstream

WINDOW_S = 44
BYTES_PER_S = 16_000


def _player(out: Path) -> str:
    """A player that writes what it plays, one file per run. A stream is read as it comes,
    as MP3 (joining a mount on air starts mid-frame, where format probing may take seconds),
    with little probing (a player that buffers seconds before it plays would go on playing
    them after the stream is gone: true of the speakers, but not what is tested here); a
    file in real time (-re)."""
    script = out.parent / "player.sh"
    script.write_text(
        'case "$1" in\n'
        "  http*) kind=stream;"
        " opts='-f mp3 -fflags nobuffer -probesize 2048 -analyzeduration 0';;\n"
        "  *) kind=file; opts=-re;;\n"
        "esac\n"
        'exec ffmpeg -nostdin -v error $opts -ss "$2" -i "$1" -f s16le -ac 1 -ar 8000 '
        f'-y "{out}/$kind-$(date +%s%N).raw"\n'
    )
    return f"sh {script} {{file}} {{offset_s}}"


def _seconds(out: Path, kind: str) -> list[float]:
    return [p.stat().st_size / BYTES_PER_S for p in sorted(out.glob(f"{kind}-*.raw"))]


def _listen_until(url: str, token: str, starts: datetime, stop: threading.Event) -> None:
    time.sleep(max((starts - datetime.now(UTC)).total_seconds(), 0))
    while not stop.is_set():
        try:
            with httpx.stream("GET", url, auth=("device", token), timeout=3) as r:
                for _chunk in r.iter_bytes():
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            pass
        stop.wait(0.5)


@pytest.mark.slow
@pytest.mark.alone  # see the comment at the relayed-against-heard check
def test_the_agent_relays_through_a_cut_and_an_emergency(
    client: TestClient, hub: Hub, upstream: Upstream, server_url: str, tmp_path: Path
) -> None:
    ids = make_station(villages=0, network="fm")
    sid = ids["station_id"]
    h = staff(client, sid)
    ident = approved_segment(client, h, pink(tmp_path / "ident.mp3", 2, seed=3), title="Ident")
    alarm = approved_segment(client, h, pink(tmp_path / "alarm.mp3", 3, seed=4), title="Bão")
    r = client.patch(
        f"/api/v1/stations/{sid}",
        json={"relay_fallback_segment_id": ident["id"]},
        headers=h["admin"],
    )
    assert r.status_code == 200 and r.json()["relay_fallback_segment_id"] == ident["id"]
    r = client.post(
        f"/api/v1/stations/{sid}/programmes",
        json={
            "code": "vov1",
            "name": "Tiếp sóng VOV1",
            "scope": "station",
            "cadence": {"kind": "daily", "time": "05:00"},
            "min_duration_ms": WINDOW_S * 1000,
            "max_duration_ms": WINDOW_S * 1000,
            "source": {"kind": "relay", "url": upstream.url},
        },
        headers=h["admin"],
    )
    assert r.status_code == 201, r.text
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    r = client.post(
        "/api/v1/broadcasts",
        json={"programme": "vov1", "station_id": sid, "starts_at": starts.isoformat()},
        headers=h["approver"],
    )
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    token = client.post(
        "/api/v1/devices", json={"name": "PC Đài xã", "station_id": sid}, headers=h["admin"]
    ).json()["token"]
    # Another cluster of the commune listens too (reconnecting when the stream drops), as
    # hundreds do: the hub's relay stays up while this agent plays the emergency.
    neighbour = client.post(
        "/api/v1/devices", json={"name": "PC Thôn 2", "station_id": sid}, headers=h["admin"]
    ).json()["token"]
    stop_neighbour = threading.Event()
    threading.Thread(
        target=_listen_until,
        args=(f"{hub.base}/relay-{sid}-vov1", neighbour, starts, stop_neighbour),
        daemon=True,
    ).start()
    out = tmp_path / "heard"
    out.mkdir()
    config = AgentConfig.model_validate(
        {
            "server_url": server_url,
            "device_token": token,
            "cache_dir": tmp_path / "cache",
            "journal": tmp_path / "journal.sqlite",
            "player_command": _player(out),
            "start_grace_seconds": 2,
            "min_remaining_seconds": 0.3,
            "emergency_poll_seconds": 0.5,
            "playlist_poll_seconds": 1,
            "upload_interval_seconds": 0.5,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 1,
            "relay_retry_base_seconds": 0.5,
            "relay_retry_max_seconds": 2,
            "tick_seconds": 0.05,
            "heartbeat_seconds": 0.2,
        }
    )
    agent = Agent(config, player=SubprocessPlayer(config.player_command))
    ends = starts + timedelta(seconds=WINDOW_S)
    script: list[tuple[float, str]] = [(12, "cut"), (22, "feed"), (32, "emergency")]
    done: list[str] = []

    def director() -> None:  # the world around the agent, on the wall clock
        for at, what in script:
            time.sleep(max((starts + timedelta(seconds=at) - datetime.now(UTC)).total_seconds(), 0))
            if what == "cut":
                upstream.cut()
            elif what == "feed":
                upstream.feed()
            else:
                r = client.post(
                    "/api/v1/emergencies",
                    json={"station_id": sid, "segment_id": alarm["id"]},
                    headers=h["approver"],
                )
                assert r.status_code == 201, r.text
            done.append(what)

    world = threading.Thread(target=director, daemon=True)
    world.start()
    try:
        deadline = time.monotonic() + WINDOW_S + 40
        while time.monotonic() < deadline:
            time.sleep(min(agent.step(), 0.05))
            parts = [e for e in agent.journal.events() if e.broadcast_id == bid]
            if datetime.now(UTC) > ends + timedelta(seconds=2) and parts and all(
                p.upload == "accepted" for p in parts
            ):
                break
        events = agent.journal.events()
    finally:
        stop_neighbour.set()
        agent.close()
        world.join(timeout=30)
    assert done == ["cut", "feed", "emergency"]

    parts = sorted((e for e in events if e.broadcast_id == bid), key=lambda p: p.part)
    assert [p.status for p in parts] == ["interrupted", "played"], parts
    assert all(p.upload == "accepted" for p in parts), [p.reject_reason for p in parts]
    first, resumed = parts
    # It started at the slot's time and stopped at the window's end.
    assert abs((first.started_at - starts).total_seconds()) <= 2
    assert resumed.ended_at is not None
    assert abs((resumed.ended_at - ends).total_seconds()) <= 1.5
    # The 10 s cut: one dropout of about 10 s (the hub retries its upstream every 2 s).
    assert first.dropout_count == 1
    assert first.dropout_ms is not None and 8_000 <= first.dropout_ms <= 16_000
    # The emergency interrupted the relay, played whole, and the relay resumed after it.
    [urgent] = [e for e in events if e.emergency_id is not None]
    assert urgent.status == "played"
    assert first.ended_at is not None
    assert abs((urgent.started_at - first.ended_at).total_seconds()) <= 1
    assert urgent.ended_at is not None
    assert 0 <= (resumed.started_at - urgent.ended_at).total_seconds() <= 2
    # What the as-run says the speakers relayed is what the files show, within 2 s. Known
    # limit: the agent counts from the player's start (or the hub saying the mount is on
    # air), not from its first sound; with another test busy on the second core the player
    # started ~1.7 s late on each of its three connections (relayed 27.2 s, heard 22.2 s).
    relayed_s = sum((p.relayed_ms or 0) for p in parts) / 1000
    heard_s = sum(_seconds(out, "stream"))
    assert abs(relayed_s - heard_s) <= 2, (relayed_s, _seconds(out, "stream"))
    assert heard_s >= WINDOW_S - 10 - 3 - 8  # window less the cut, the alarm and the lags
    # The station's fallback (2 s) filled the dropout; the alarm (3 s) played whole.
    files = _seconds(out, "file")
    assert len(files) == 2 and any(abs(s - 2) <= 0.5 for s in files), files
    assert any(abs(s - 3) <= 0.5 for s in files), files

    # The server holds the same figures.
    from sqlalchemy import select

    from app.db import unit_of_work
    from app.playout.models import AsRunEvent

    with unit_of_work(write=False) as s:
        rows = s.execute(
            select(AsRunEvent.sha256, AsRunEvent.relayed_ms, AsRunEvent.dropout_count).where(
                AsRunEvent.broadcast_id == bid
            )
        ).all()
    assert sorted(r.relayed_ms for r in rows) == sorted(p.relayed_ms for p in parts)
    assert all(r.sha256 is None for r in rows)
    assert sum(r.dropout_count for r in rows) == 1
