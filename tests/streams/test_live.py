"""Live voice (issue 24) through the real hub (Icecast 2.4.4), the real server and the
real agent: a source client feeds a session with its own credentials, the devices in
scope switch to it and hear the tone within seconds, devices outside do not, ending it
returns them to their schedule, a source gone for 60 s ends it, and what went out is kept
as audio on target loudness.

The player writes what it plays as raw PCM (8 kHz mono 16-bit), one file per run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.audio.models import AudioAsset
from app.playout.agent import Agent, AgentConfig, SubprocessPlayer
from app.playout.models import AsRunEvent
from tests.helpers import make_station, staff
from tests.streams.conftest import Hub, wait_for

BYTES_PER_S = 16_000
TONE_HZ = 660


def _player(out: Path) -> str:
    """A player that writes what it plays as it plays it (one file per run): a stream read
    with little probing and written through at once, so that the test sees when sound
    came out."""
    script = out.parent / "player.sh"
    script.write_text(
        'case "$1" in\n'
        "  http*) kind=stream;"
        " opts='-f mp3 -fflags nobuffer -probesize 2048 -analyzeduration 0';;\n"
        "  *) kind=file; opts=-re;;\n"
        "esac\n"
        'exec ffmpeg -nostdin -v error $opts -ss "$2" -i "$1" -f s16le -ac 1 -ar 8000 '
        f'-flush_packets 1 -y "{out}/$kind-$(date +%s%N).raw"\n'
    )
    return f"sh {script} {{file}} {{offset_s}}"


def tone_seconds(raw: Path, hz: int = TONE_HZ) -> float:
    """How many seconds of `raw` (s16le 8 kHz) carry the tone, judged per 0.1 s block."""
    data = np.frombuffer(raw.read_bytes(), dtype="<i2").astype(np.float64)
    block = 800
    found = 0
    for i in range(0, len(data) - block, block):
        x = data[i : i + block]
        if np.sqrt(np.mean(x**2)) < 300:
            continue
        spectrum = np.abs(np.fft.rfft(x * np.hanning(block)))
        peak = np.argmax(spectrum) * 8000 / block
        found += abs(peak - hz) <= 20
    return found / 10


def source(url: str, *, hz: int = TONE_HZ) -> subprocess.Popen[bytes]:
    """A source client (ffmpeg) sending a tone in real time to an Icecast mount."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi",
         "-i", f"sine=frequency={hz}:sample_rate=44100", "-af", "volume=0.5",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k",
         "-content_type", "audio/mpeg", "-f", "mp3", url],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def source_url(hub: Hub, opened: dict[str, Any], password: str | None = None) -> str:
    """The session's source URL (the test client's host is "testserver": the hub's port)."""
    s = opened["source"]
    assert s["url"].endswith(f":{hub.port}")
    return f"icecast://{s['username']}:{password or s['password']}@127.0.0.1:{hub.port}{s['mount']}"


def on_air(hub: Hub, mount: str) -> bool:
    try:
        sources = httpx.get(f"{hub.base}/status-json.xsl", timeout=2).json()["icestats"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    found = sources.get("source") or []
    found = [found] if isinstance(found, dict) else found
    return any(
        str(e.get("listenurl", "")).endswith(mount) and e.get("stream_start_iso8601") for e in found
    )


class Running:
    """A real agent for a device, made and stepping in its own thread (its journal is a
    SQLite connection of that thread) until stopped; `heard` holds what its player played."""

    def __init__(self, server_url: str, token: str, folder: Path) -> None:
        self.heard = folder / "heard"
        self.heard.mkdir(parents=True)
        self.config = AgentConfig.model_validate(
            {
                "server_url": server_url,
                "device_token": token,
                "cache_dir": folder / "cache",
                "journal": folder / "journal.sqlite",
                "player_command": _player(self.heard),
                "emergency_poll_seconds": 0.5,
                "playlist_poll_seconds": 5,
                "upload_interval_seconds": 0.5,
                "retry_base_seconds": 0.2,
                "retry_max_seconds": 1,
                "relay_retry_base_seconds": 0.3,
                "relay_retry_max_seconds": 1,
                "tick_seconds": 0.05,
                "heartbeat_seconds": 0.2,
            }
        )
        self.agent: Agent | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        agent = Agent(self.config, player=SubprocessPlayer(self.config.player_command))
        self.agent = agent
        self.ready.set()
        try:
            agent.run()
        finally:
            agent.close()

    @property
    def playing(self) -> bool:
        return self.agent is not None and self.agent.current is not None

    def stop(self) -> None:
        assert self.agent is not None
        self.agent.request_stop()
        self.thread.join(15)


@pytest.mark.slow
def test_a_live_session_reaches_its_villages_within_seconds_ends_and_is_kept(
    client: TestClient, hub: Hub, server_url: str, tmp_path: Path, session: Session
) -> None:
    ids = make_station(network="ip")
    sid, (v1, v2, v3) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)

    def add_device(name: str, village: int) -> str:
        r = client.post(
            "/api/v1/devices",
            json={"name": name, "station_id": sid, "village_id": village},
            headers=h["admin"],
        )
        return str(r.json()["token"])

    t1, t2, t3 = (add_device(f"Cụm loa thôn {n}", v) for n, v in ((1, v1), (2, v2), (3, v3)))
    body = {
        "station_id": sid,
        "village_ids": [v1, v2],
        "title": "Ứng phó bão",
        "priority": "emergency",
    }
    for who in ("editor", "viewer"):
        assert client.post("/api/v1/live", json=body, headers=h[who]).status_code == 403
    bad = client.post("/api/v1/live", json={**body, "priority": "urgent"}, headers=h["approver"])
    assert bad.status_code == 422
    r = client.post("/api/v1/live", json=body, headers=h["approver"])
    assert r.status_code == 201, r.text
    opened = r.json()
    assert opened["source"]["password"] and opened["source"]["mount"].startswith(f"/live-{sid}-")
    assert opened["websocket_url"].startswith("ws://") and opened["listen_url"].endswith(
        opened["source"]["mount"]
    )
    again = client.post("/api/v1/live", json=body, headers=h["approver"])
    assert again.status_code == 409 and "already has live session" in again.json()["detail"]

    # A wrong password is refused by the hub (loaxa's stream_auth): nothing goes on air.
    wrong = source(source_url(hub, opened, "not-the-password"))
    assert wrong.wait(timeout=20) != 0
    assert not on_air(hub, opened["source"]["mount"])

    a1 = Running(server_url, t1, tmp_path / "a1")
    a3 = Running(server_url, t3, tmp_path / "a3")
    heard1, heard3 = a1.heard, a3.heard
    agents = [a1, a3]
    feeder = source(source_url(hub, opened))
    try:
        wait_for(lambda: on_air(hub, opened["source"]["mount"]), 15, "the live mount on air")
        first_frame = time.monotonic()
        # The device in scope plays the tone within 5 s of the first frame on the mount.
        wait_for(
            lambda: any(tone_seconds(p) >= 0.5 for p in heard1.glob("stream-*.raw")),
            5,
            "the cluster of thôn 1 to play the tone",
        )
        assert time.monotonic() - first_frame < 5
        # Outside the session's villages: not in its poll, refused by the hub.
        polled = client.get(
            "/api/v1/playout/emergencies", headers={"Authorization": f"Bearer {t3}"}
        )
        assert polled.json() == []
        listen = httpx.get(f"{hub.base}{opened['source']['mount']}", auth=("device", t3), timeout=3)
        assert listen.status_code in (401, 403)
        in_scope = client.get(
            "/api/v1/playout/emergencies", headers={"Authorization": f"Bearer {t2}"}
        ).json()
        assert [(x["kind"], x["id"]) for x in in_scope] == [("live", opened["id"])]
        time.sleep(3)
        r = client.delete(f"/api/v1/live/{opened['id']}", headers=h["approver"])
        assert r.status_code == 200 and r.json()["end_reason"] == "Kết thúc"
        assert client.delete(f"/api/v1/live/{opened['id']}", headers=h["approver"]).is_success
        ended = time.monotonic()
        wait_for(lambda: not a1.playing, 5, "the cluster to leave the live session")
        assert time.monotonic() - ended < 5
        # The hub cuts off the source still sending: nothing more goes out.
        wait_for(lambda: not on_air(hub, opened["source"]["mount"]), 5, "the source cut off")
        assert feeder.wait(timeout=10) != 0
        # Frames after the end: the hub asks loaxa again and refuses a new source.
        late = source(source_url(hub, opened))
        assert late.wait(timeout=20) != 0
    finally:
        feeder.terminate()
        feeder.wait(10)
        for running in agents:
            running.stop()
    assert not list(heard3.glob("stream-*.raw"))
    heard = sum(tone_seconds(p) for p in heard1.glob("stream-*.raw"))
    assert heard >= 3

    # Kept: the recording, normalised, on target loudness; the as-run names the session.
    def kept() -> bool:
        got = client.get(f"/api/v1/live/{opened['id']}", headers=h["viewer"]).json()
        return got["recording_ms"] is not None or got["recording_note"] is not None

    wait_for(kept, 30, "the recording to be kept")
    out = client.get(f"/api/v1/live/{opened['id']}", headers=h["viewer"]).json()
    assert out["recording_note"] is None and out["recording_ms"] >= 3000, out
    session.rollback()  # a fresh snapshot: the hub wrote these after the test began
    asset = session.scalars(
        select(AudioAsset).where(AudioAsset.sha256 == out["recording_sha256"])
    ).one()
    assert asset.origin == "live" and abs((asset.loudness_lufs or 0) + 16) <= 1.0
    events = session.scalars(
        select(AsRunEvent).where(AsRunEvent.live_session_id == opened["id"])
    ).all()
    assert events and all(e.sha256 is None for e in events)
    # The report: "Phát trực tiếp", its length, the village whose cluster carried it.
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    report = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": sid, "year": local.year, "month": local.month},
        headers=h["viewer"],
    ).json()
    [row] = report["live"]
    assert row["kind"] == "Phát trực tiếp" and row["title"] == "Ứng phó bão"
    assert row["duration_ms"] == out["recording_ms"] and row["recorded"]
    village_names = {v["id"]: v["name"] for v in client.get(
        f"/api/v1/stations/{sid}/villages", headers=h["admin"]).json()}  # fmt: skip
    assert row["villages"] == [village_names[v1]]


@pytest.mark.slow
def test_a_session_whose_source_is_gone_60_s_ends_by_itself(
    client: TestClient, hub: Hub, server_url: str, tmp_path: Path, session: Session
) -> None:
    ids = make_station(network="ip")
    sid = ids["station_id"]
    h = staff(client, sid)
    r = client.post(
        "/api/v1/live",
        json={"station_id": sid, "title": "Họp dân", "priority": "normal"},
        headers=h["approver"],
    )
    opened = r.json()
    # Fed by `loaxa-agent live` (a generated tone standing in for the PC's input).
    feeder = subprocess.Popen(
        [sys.executable, "-m", "app.playout.agent.cli", "live",
         "--source", source_url(hub, opened), "--input-format", "lavfi",
         "--input", f"sine=frequency={TONE_HZ}:sample_rate=44100"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: on_air(hub, opened["source"]["mount"]), 15, "the live mount on air")
        time.sleep(1.5)  # the hub sees it on air
    finally:
        feeder.terminate()
        feeder.wait(10)
    wait_for(lambda: not on_air(hub, opened["source"]["mount"]), 10, "the source to go")
    time.sleep(1.5)
    assert (
        client.get(f"/api/v1/live/{opened['id']}", headers=h["viewer"]).json()["ended_at"] is None
    )
    later = datetime.now(UTC) + timedelta(seconds=61)
    clock.set_now(lambda: later)

    def ended() -> Any:
        return client.get(f"/api/v1/live/{opened['id']}", headers=h["viewer"]).json()["ended_at"]

    wait_for(ended, 10, "the hub to end the session")
    got = client.get(f"/api/v1/live/{opened['id']}", headers=h["viewer"]).json()
    assert got["end_reason"] == "nguồn phát mất tín hiệu quá 60 giây"
    # The station may open another one now.
    r = client.post(
        "/api/v1/live",
        json={"station_id": sid, "title": "Họp dân (tiếp)", "priority": "normal"},
        headers=h["approver"],
    )
    assert r.status_code == 201, r.text
