"""The stream hub on real servers: Icecast run by `loaxa hub`, an upstream Icecast fed by
ffmpeg, and loaxa's listener check on a loopback port."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import unit_of_work
from app.devices.models import Device
from tests.helpers import make_station, staff
from tests.streams.conftest import Hub, Upstream, wait_for


def _relay(client: TestClient, admin: dict[str, str], sid: int, url: str, **kw: Any) -> Any:
    body = {
        "code": "vov1",
        "name": "Tiếp sóng VOV1",
        "scope": "station",
        "cadence": {"kind": "daily", "time": "06:00"},
        "min_duration_ms": 1_800_000,
        "max_duration_ms": 1_800_000,
        "source": {"kind": "relay", "url": url},
        **kw,
    }
    r = client.post(f"/api/v1/stations/{sid}/programmes", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


def _device(client: TestClient, admin: dict[str, str], sid: int, vid: int | None = None) -> Any:
    r = client.post(
        "/api/v1/devices",
        json={"name": f"PC {sid}-{vid}", "station_id": sid, "village_id": vid},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _listen(url: str, token: str | None, want: int = 16_384) -> tuple[int, int]:
    """(HTTP status, bytes read) of a listener that stops after `want` bytes or 6 s."""
    auth = ("device", token) if token is not None else None
    try:
        with httpx.stream("GET", url, auth=auth, timeout=6) as r:
            got = 0
            if r.status_code == 200:
                for chunk in r.iter_bytes():
                    got += len(chunk)
                    if got >= want:
                        break
            return r.status_code, got
    except httpx.ReadTimeout:
        return 0, 0


def test_the_hub_relays_to_the_station_s_devices_only_from_one_upstream_connection(
    client: TestClient, hub: Hub, upstream: Upstream
) -> None:
    ids = make_station(villages=1, network="ip")
    other = make_station(name="Xuân Thái", villages=0)
    sid = ids["station_id"]
    h = staff(client, sid)
    _relay(client, h["admin"], sid, upstream.url)
    pc = _device(client, h["admin"], sid)
    cluster = _device(client, h["admin"], sid, ids["village_ids"][0])
    stranger = _device(client, h["admin"], other["station_id"])
    revoked = _device(client, h["admin"], sid)
    with unit_of_work() as s:  # revoked: the one device check refuses it everywhere
        s.execute(update(Device).where(Device.id == revoked["id"]).values(is_active=False))
    mount = f"{hub.base}/relay-{sid}-vov1"
    # The hub picks up the new programme within a tick (configuration rewritten, SIGHUP).
    wait_for(lambda: _listen(mount, pc["token"])[0] == 200, 20, "the relay mount")

    status, got = _listen(mount, pc["token"])
    assert status == 200 and got >= 16_384
    assert _listen(mount, cluster["token"])[0] == 200  # an ip station's village cluster
    assert _listen(mount, stranger["token"])[0] == 401  # another station's device
    assert _listen(mount, revoked["token"])[0] == 401  # a revoked token
    assert _listen(mount, "dev_not-a-real-token")[0] == 401
    assert _listen(mount, None)[0] == 401
    assert _listen(mount, h["admin"]["Authorization"].removeprefix("Bearer "))[0] == 401

    # Two devices listening at once: the hub holds one connection to the upstream.
    with (
        httpx.stream("GET", mount, auth=("device", pc["token"]), timeout=6) as a,
        httpx.stream("GET", mount, auth=("device", cluster["token"]), timeout=6) as b,
    ):
        assert a.status_code == b.status_code == 200
        next(a.iter_bytes()), next(b.iter_bytes())
        wait_for(lambda: upstream.listeners() == 1, 30, "the upstream to count its listeners")
        assert upstream.listeners() == 1


def test_the_probe_names_codec_and_bitrate_or_the_trouble(
    client: TestClient, upstream: Upstream, server_url: str
) -> None:
    h = staff(client, make_station(villages=0)["station_id"])
    r = client.post("/api/v1/streams/probe", json={"url": upstream.url}, headers=h["admin"])
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["ok"] is True
    assert found["codec"] == "mp3" and found["bitrate_kbps"] == 64
    assert found["bytes_read"] <= 300 * 1024

    r = client.post(
        "/api/v1/streams/probe",
        json={"url": f"{upstream.icecast.base}/not-here"},
        headers=h["admin"],
    )
    assert r.json()["ok"] is False and r.json()["error"] == "http-status"
    assert "404" in r.json()["detail"]
    closed = upstream.icecast.base.rsplit(":", 1)[0] + ":9"
    r = client.post("/api/v1/streams/probe", json={"url": f"{closed}/x"}, headers=h["admin"])
    assert r.json()["ok"] is False and r.json()["error"] == "unreachable"
    r = client.post(
        "/api/v1/streams/probe", json={"url": f"{server_url}/healthz"}, headers=h["admin"]
    )
    assert r.json()["ok"] is False and r.json()["error"] in ("not-audio", "too-slow")
    r = client.post("/api/v1/streams/probe", json={"url": "file:///etc/passwd"}, headers=h["admin"])
    assert r.status_code == 422 and "url" in r.json()["detail"]
    r = client.post("/api/v1/streams/probe", json={"url": upstream.url}, headers=h["approver"])
    assert r.status_code == 403


def test_icecast_config_prints_what_an_existing_icecast_needs(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    _relay(client, h["admin"], ids["station_id"], "http://radio.example.vn:8000/vov1?x=1&y=2")
    _relay(
        client,
        h["admin"],
        ids["station_id"],
        "https://hls.example.vn/vov2/playlist.m3u8",
        code="vov2",
        cadence={"kind": "daily", "time": "19:00"},
    )
    env = {
        "LOAXA_ICECAST_URL": "http://hub.example.vn:8000",
        "LOAXA_PUBLIC_BASE_URL": "https://loaxa.example.vn",
    }
    import os

    out = subprocess.run(
        [".venv/bin/loaxa", "icecast-config"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    root = ET.fromstring(out)
    [relay] = root.findall("relay")  # the HLS one is fed by ffmpeg, not relayed by Icecast
    assert relay.findtext("server") == "radio.example.vn"
    assert relay.findtext("port") == "8000"
    assert relay.findtext("mount") == "/vov1?x=1&y=2"
    assert relay.findtext("local-mount") == f"/relay-{ids['station_id']}-vov1"
    assert relay.findtext("on-demand") == "1"
    mounts = {m.findtext("mount-name"): m for m in root.findall("mount")}
    assert set(mounts) == {
        f"/relay-{ids['station_id']}-vov1",
        f"/relay-{ids['station_id']}-vov2",
        "/live-*",  # every live session (issue 24), its sources checked by loaxa
    }
    for m in mounts.values():
        options = {o.get("name"): o.get("value") for o in m.iter("option")}
        assert options["listener_add"] == "https://loaxa.example.vn/api/v1/streams/listener"
        assert options["auth_header"] == "icecast-auth-user: 1"
    live = {o.get("name"): o.get("value") for o in mounts["/live-*"].iter("option")}
    assert live["stream_auth"] == "https://loaxa.example.vn/api/v1/streams/source"
    assert root.findtext("listen-socket/port") == "8000"
    assert root.findtext("security/changeowner/user") == "icecast2"
    password = root.findtext("authentication/source-password")
    assert password and len(password) >= 24 and password != "hackme"


def test_an_hls_upstream_is_fed_by_ffmpeg_during_its_slot_only(
    client: TestClient, hub: Hub, tmp_path: Path
) -> None:
    import functools
    import http.server
    import threading
    from datetime import UTC, datetime, timedelta

    from tests.streams.conftest import free_port

    # An HLS upstream: AAC segments and their playlist on a local web server.
    hls = tmp_path / "hls"
    hls.mkdir()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=660:duration=90",
         "-c:a", "aac", "-b:a", "48k", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
         str(hls / "live.m3u8")],
        check=True,
        timeout=60,
    )  # fmt: skip
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(hls))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        ids = make_station(villages=0, network="fm")
        sid = ids["station_id"]
        h = staff(client, sid)
        _relay(
            client,
            h["admin"],
            sid,
            f"http://127.0.0.1:{port}/live.m3u8",
            min_duration_ms=20_000,
            max_duration_ms=20_000,
        )
        pc = _device(client, h["admin"], sid)
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        r = client.post(
            "/api/v1/broadcasts",
            json={"programme": "vov1", "station_id": sid, "starts_at": starts.isoformat()},
            headers=h["approver"],
        )
        assert r.status_code == 201, r.text
        mount = f"{hub.base}/relay-{sid}-vov1"

        def on_air() -> bool:
            entry = (_status(hub) or {}).get(f"/relay-{sid}-vov1", {})
            return bool(entry.get("stream_start_iso8601"))

        # The feeder starts before the slot (its lead) and the devices hear MP3.
        wait_for(on_air, 30, "the HLS feeder to put the mount on air")
        status, got = _listen(mount, pc["token"])
        assert status == 200 and got >= 16_384
        # After the window the feeder stops: the mount goes off air.
        wait_for(lambda: datetime.now(UTC) > starts + timedelta(seconds=21), 40, "the end")
        wait_for(lambda: not on_air(), 20, "the feeder to stop after the slot")
    finally:
        web.shutdown()


def _status(hub: Hub) -> dict[str, Any] | None:
    try:
        found = httpx.get(f"{hub.base}/status-json.xsl", timeout=2).json()["icestats"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    sources = found.get("source") or []
    sources = sources if isinstance(sources, list) else [sources]
    return {"/" + str(s.get("listenurl", "")).split("/", 3)[-1]: s for s in sources}
