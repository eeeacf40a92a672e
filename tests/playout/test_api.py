"""Playlists, as-run logs, device health and emergencies through the HTTP API, with real audio.

Every test runs on both kinds of station (DESIGN.md "Loudspeaker networks"): under ``fm``
village devices play only their village's slots; under ``ip`` every village cluster also
plays the commune's programmes, and an emergency for some villages skips the station's PC.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.playout.models import AsRunEvent
from app.playout.playlists import count_playlists
from tests.helpers import make_station, staff
from tests.playout.helpers import approved_segment, broadcast, device, pink, short_windows

PLAYLIST = "/api/v1/playout/playlist"
EMERGENCIES = "/api/v1/playout/emergencies"
AS_RUN = "/api/v1/playout/as-run"
CCHC_TITLE = "Chuyên mục Cải cách hành chính"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        name: pink(d / f"{name}.mp3", secs, seed=n)
        for n, (name, secs) in enumerate((("a", 2), ("b", 3), ("c", 2.5)))
    }


@pytest.fixture(params=["fm", "ip"])
def world(client: TestClient, request: pytest.FixtureRequest) -> dict[str, Any]:
    ids = make_station(network=request.param)
    h = staff(client, ids["station_id"])
    short_windows()
    return {**ids, "h": h, "ip": request.param == "ip"}


def playlist(client: TestClient, dev: dict[str, Any], day: str = "2024-03-16", **kw: Any) -> Any:
    r = client.get(PLAYLIST, params={"date": day}, headers=dev["h"], **kw)
    assert r.status_code == 200, r.text
    return r.json()


def event(
    event_id: str,
    b: dict[str, Any],
    *,
    start: datetime = datetime(2024, 3, 16, 10, 0, tzinfo=UTC),
    ms: int | None = None,
    status: str = "played",
    sha: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "broadcast_id": b["id"],
        "sha256": sha or b["master_sha256"],
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(milliseconds=ms or b["master_duration_ms"])).isoformat(),
        "status": status,
    }


def test_station_and_village_devices_get_their_own_broadcasts(
    client: TestClient, world: dict[str, Any], clips: dict[str, Path], session: Session
) -> None:
    h, sid, (v1, v2, _) = world["h"], world["station_id"], world["village_ids"]
    seg = approved_segment(client, h, clips["a"], title="Tin CCHC")
    vseg = approved_segment(
        client, h, clips["b"], title="Tin thôn", programme="village-weekly", village_ids=[v1, v2]
    )
    station_b = broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[seg["id"]]
    )
    village_b = broadcast(
        client,
        h,
        station_id=sid,
        starts_at="2024-03-16T18:00:00+07:00",
        segment_ids=[vseg["id"]],
        programme="village-weekly",
        village_id=v1,
    )
    # Planned (no master yet): never on a playlist.
    broadcast(
        client,
        h,
        station_id=sid,
        starts_at="2024-03-16T19:00:00+07:00",
        segment_ids=[vseg["id"]],
        programme="village-weekly",
        village_id=v2,
        assemble=False,
    )
    pc, pc1, pc2 = (device(client, h["admin"], sid, v) for v in (None, v1, v2))

    r = client.get(PLAYLIST, params={"date": "2024-03-16"}, headers=pc["h"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, no-cache"
    assert r.headers["content-type"].startswith("application/json")
    sha, ms = station_b["master_sha256"], station_b["master_duration_ms"]
    assert r.json() == {
        "date": "2024-03-16",
        "device_id": pc["id"],
        "station_id": sid,
        "village_id": None,
        "timezone": "Asia/Ho_Chi_Minh",
        "items": [
            {
                "event_key": f"b{station_b['id']}",
                "broadcast_id": station_b["id"],
                "programme": "cchc",
                "title": CCHC_TITLE,
                "priority": "normal",
                "village_id": None,
                "rank": 1,
                "yields_to": [],
                "supersedes": [],
                "starts_at": "2024-03-16T10:00:00+00:00",
                "starts_at_local": "2024-03-16T17:00:00+07:00",
                "ends_at": (
                    datetime(2024, 3, 16, 10, tzinfo=UTC) + timedelta(milliseconds=ms)
                ).isoformat(),
                "duration_ms": ms,
                "kind": "file",
                "stream_url": None,
                "sha256": sha,
                "audio_url": f"http://testserver/api/v1/audio/{sha}",
            }
        ],
    }
    village = playlist(client, pc1)
    assert village["village_id"] == v1
    # An ip cluster plays the commune's programme too, as the station's PC has it.
    commune = [r.json()["items"][0]] if world["ip"] else []
    assert village["items"][: len(commune)] == commune
    own = village["items"][len(commune) :]
    assert [i["broadcast_id"] for i in own] == [village_b["id"]]
    assert own[0]["programme"] == "village-weekly" and own[0]["village_id"] == v1
    assert own[0]["starts_at_local"] == "2024-03-16T18:00:00+07:00"
    assert own[0]["rank"] == len(commune) + 1 and own[0]["yields_to"] == []
    assert playlist(client, pc2)["items"] == commune

    # What the scheduler's nightly job logs: the station's and village 1's playlists, and
    # in an ip station village 2's (the commune's programme).
    assert count_playlists(session, day=date(2024, 3, 16)) == (3 if world["ip"] else 2)
    assert count_playlists(session, day=date(2024, 3, 16), station_ids=[sid + 1]) == 0
    assert count_playlists(session, day=date(2024, 3, 17)) == 0

    assert client.get(PLAYLIST).status_code == 401
    assert client.get(PLAYLIST, headers={"Authorization": "Bearer dev_nope"}).status_code == 401
    staff_call = client.get(PLAYLIST, headers=h["admin"])
    assert staff_call.status_code == 403 and "devices" in staff_call.json()["detail"]


def test_a_day_is_the_station_local_day(
    client: TestClient, world: dict[str, Any], clips: dict[str, Path]
) -> None:
    h, sid = world["h"], world["station_id"]
    seg = approved_segment(client, h, clips["a"])
    # 00:30 on 17 March in Vietnam is still 16 March in UTC.
    b = broadcast(
        client, h, station_id=sid, starts_at="2024-03-17T00:30:00+07:00", segment_ids=[seg["id"]]
    )
    assert b["starts_at"].startswith("2024-03-16T17:30")
    pc = device(client, h["admin"], sid)
    assert [i["broadcast_id"] for i in playlist(client, pc, "2024-03-17")["items"]] == [b["id"]]
    assert playlist(client, pc, "2024-03-16")["items"] == []

    # Without a date: the station's today.
    with clock.frozen(datetime(2024, 3, 16, 18, 0, tzinfo=UTC)):  # 01:00 on the 17th locally
        today = playlist(client, pc, "")
        assert today["date"] == "2024-03-17" and len(today["items"]) == 1
    with clock.frozen(datetime(2024, 3, 16, 16, 59, tzinfo=UTC)):  # 23:59 on the 16th
        assert client.get(PLAYLIST, headers=pc["h"]).json()["date"] == "2024-03-16"

    for bad in ("2024-02-30", "16-03-2024", "2024-3-16", "1850-01-01"):
        r = client.get(PLAYLIST, params={"date": bad}, headers=pc["h"])
        assert r.status_code == 422 and r.json()["detail"].startswith("date:"), (bad, r.text)


def test_etag_changes_when_a_broadcast_changes_or_is_cancelled(
    client: TestClient, world: dict[str, Any], clips: dict[str, Path]
) -> None:
    h, sid = world["h"], world["station_id"]
    a = approved_segment(client, h, clips["a"], title="Tin A")
    c = approved_segment(client, h, clips["c"], title="Tin C")
    b = broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[a["id"]]
    )
    pc = device(client, h["admin"], sid)
    first = client.get(PLAYLIST, params={"date": "2024-03-16"}, headers=pc["h"])
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert etag == '"' + hashlib.sha256(first.content).hexdigest()[:32] + '"'
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(
            PLAYLIST, params={"date": "2024-03-16"}, headers={**pc["h"], "If-None-Match": inm}
        )
        assert again.status_code == 304 and again.content == b"", inm
        assert again.headers["etag"] == etag

    # A new rundown clears the master: the broadcast leaves until it is assembled again.
    r = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [c["id"]]},
        headers=h["approver"],
    )
    assert r.status_code == 200
    changed = client.get(
        PLAYLIST, params={"date": "2024-03-16"}, headers={**pc["h"], "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["items"] == []
    assert changed.headers["etag"] != etag
    assert client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=h["approver"]).is_success
    back = client.get(PLAYLIST, params={"date": "2024-03-16"}, headers=pc["h"])
    new_sha = back.json()["items"][0]["sha256"]
    assert new_sha != b["master_sha256"]
    assert back.headers["etag"] not in (etag, changed.headers["etag"])

    # The PC had cached the old master and played it after the rundown changed: the event
    # is kept (it did play), but the broadcast did not air as it stood then
    # (app.playout.aired: the master in force when it played).
    played_at = datetime.now(UTC)  # after the change
    old = client.post(AS_RUN, json=[event("old-1", b, start=played_at)], headers=pc["h"]).json()
    assert old["accepted"] == ["old-1"]
    assert client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()["status"] == (
        "assembled"
    )

    assert client.delete(f"/api/v1/broadcasts/{b['id']}", headers=h["approver"]).is_success
    cancelled = client.get(
        PLAYLIST, params={"date": "2024-03-16"}, headers={**pc["h"], "If-None-Match": etag}
    )
    assert cancelled.status_code == 200 and cancelled.json()["items"] == []
    assert cancelled.headers["etag"] != back.headers["etag"]


def test_m3u_playlist(client: TestClient, world: dict[str, Any], clips: dict[str, Path]) -> None:
    h, sid = world["h"], world["station_id"]
    seg = approved_segment(client, h, clips["b"])
    b = broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[seg["id"]]
    )
    pc = device(client, h["admin"], sid)
    as_json = client.get(PLAYLIST, params={"date": "2024-03-16"}, headers=pc["h"])
    by_param = client.get(PLAYLIST, params={"date": "2024-03-16", "format": "m3u"}, headers=pc["h"])
    by_accept = client.get(
        PLAYLIST,
        params={"date": "2024-03-16"},
        headers={**pc["h"], "Accept": "audio/x-mpegurl"},
    )
    assert by_param.status_code == 200 and by_param.content == by_accept.content
    assert by_param.headers["content-type"].startswith("audio/x-mpegurl")
    assert by_param.headers["etag"] == by_accept.headers["etag"] != as_json.headers["etag"]
    lines = by_param.content.decode("utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    extinf = [n for n, line in enumerate(lines) if line.startswith("#EXTINF:")]
    assert len(extinf) == 1
    seconds, title = lines[extinf[0]].removeprefix("#EXTINF:").split(",", 1)
    assert int(seconds) == round(b["master_duration_ms"] / 1000)
    assert title == CCHC_TITLE
    assert lines[extinf[0] + 1] == f"http://testserver/api/v1/audio/{b['master_sha256']}"
    not_modified = client.get(
        PLAYLIST,
        params={"date": "2024-03-16", "format": "m3u"},
        headers={**pc["h"], "If-None-Match": by_param.headers["etag"]},
    )
    assert not_modified.status_code == 304
    bad = client.get(PLAYLIST, params={"format": "xml"}, headers=pc["h"])
    assert bad.status_code == 422 and "format" in bad.json()["detail"]


def test_devices_download_their_own_audio_only(
    client: TestClient, world: dict[str, Any], clips: dict[str, Path]
) -> None:
    h, sid, (v1, *_) = world["h"], world["station_id"], world["village_ids"]
    seg = approved_segment(client, h, clips["a"])
    broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[seg["id"]]
    )
    pc = device(client, h["admin"], sid)
    item = playlist(client, pc)["items"][0]
    path = urlsplit(item["audio_url"]).path
    r = client.get(path, headers=pc["h"])
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == item["sha256"]
    part = client.get(path, headers={**pc["h"], "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100

    other = make_station("Xuân Hòa", villages=0)
    foreign = device(client, h["admin"], other["station_id"])
    assert client.get(path, headers=foreign["h"]).status_code == 404
    # A village PC plays the commune's programme only in an ip station.
    village = client.get(path, headers=device(client, h["admin"], sid, v1)["h"])
    assert village.status_code == (200 if world["ip"] else 404)


def test_as_run_keeps_good_events_rejects_bad_ones_and_is_idempotent(
    client: TestClient, world: dict[str, Any], clips: dict[str, Path], session: Session
) -> None:
    h, sid, (v1, *_) = world["h"], world["station_id"], world["village_ids"]
    seg = approved_segment(client, h, clips["a"])
    b = broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[seg["id"]]
    )
    pc = device(client, h["admin"], sid)
    never_seen = device(client, h["admin"], sid)
    playlist(client, pc)
    start = datetime(2024, 3, 16, 10, 0, tzinfo=UTC)
    naive = event("pc-5", b)
    naive["started_at"] = "2024-03-16T10:00:00"
    batch: list[Any] = [
        event("pc-1", b),
        event("pc-2", b, start=start + timedelta(hours=1), ms=1000, status="interrupted"),
        event("pc-3", b, sha="0" * 64),
        event("pc-4", b, start=start, ms=-1000),
        naive,
        event("pc-6", b, ms=b["master_duration_ms"] + 20_000),
        {**event("pc-7", b), "broadcast_id": 999_999},
        event("pc-8", b, start=datetime.now(UTC) + timedelta(hours=1)),
        {**event("pc-9", b), "status": "skipped"},
        {**event("pc-10", b), "emergency_id": 1},
        {"what": "not an event"},
    ]
    telemetry = {"X-Loaxa-Agent-Version": "0.3.1", "X-Loaxa-Free-Disk-Bytes": "123456789"}
    r = client.post(AS_RUN, json=batch, headers={**pc["h"], **telemetry})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["accepted"] == ["pc-1", "pc-2"] and result["duplicates"] == []
    reasons = {x["event_id"]: x["reason"] for x in result["rejected"]}
    assert set(reasons) == {"pc-3", "pc-4", "pc-5", "pc-6", "pc-7", "pc-8", "pc-9", "pc-10", None}
    assert "is not the audio of broadcast" in reasons["pc-3"]
    assert "started_at must be before ended_at" in reasons["pc-4"]
    assert "started_at" in reasons["pc-5"] and "timezone" in reasons["pc-5"]
    assert "longer than" in reasons["pc-6"]
    assert "broadcast 999999 is not in this device's scope" in reasons["pc-7"]
    assert "in the future" in reasons["pc-8"]
    assert reasons["pc-9"].startswith("status:")
    assert "exactly one of broadcast_id and emergency_id" in reasons["pc-10"]
    assert "event_id" in reasons[None]
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()
    assert got["status"] == "aired"

    # Resent (also in the object form): nothing changes.
    again = client.post(AS_RUN, json={"events": batch}, headers=pc["h"]).json()
    assert again["accepted"] == [] and again["duplicates"] == ["pc-1", "pc-2"]
    assert len(again["rejected"]) == len(result["rejected"])
    assert session.scalar(select(func.count()).select_from(AsRunEvent)) == 2
    assert client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json() == got

    # Another device: its scope, its own event ids.
    village_pc = device(client, h["admin"], sid, v1)
    other = client.post(
        AS_RUN, json=[event("v-1", b), event("pc-1", b)], headers=village_pc["h"]
    ).json()
    reasons = {x["event_id"]: x["reason"] for x in other["rejected"]}
    if world["ip"]:  # an ip cluster plays the commune's programme, and says so
        assert other["accepted"] == ["v-1"] and set(reasons) == {"pc-1"}
    else:
        assert other["accepted"] == []
        assert "not in this device's scope" in reasons["v-1"]
    assert "taken by another device" in reasons["pc-1"]

    for body in ("hello", {"events": "x"}, 42):
        bad = client.post(AS_RUN, json=body, headers=pc["h"])
        assert bad.status_code == 422 and "JSON array" in bad.json()["detail"]
    assert client.post(AS_RUN, json=[], headers=h["admin"]).status_code == 403

    devices = {d["id"]: d for d in client.get("/api/v1/devices", headers=h["admin"]).json()}
    health = devices[pc["id"]]
    assert health["online"] is True
    assert health["agent_version"] == "0.3.1" and health["free_disk_bytes"] == 123456789
    assert health["last_playlist_at"] is not None and health["last_seen_at"] is not None
    assert health["last_played_at"] == batch[1]["ended_at"].replace("+00:00", "Z")
    assert devices[never_seen["id"]]["online"] is False
    assert devices[never_seen["id"]]["last_seen_at"] is None
    clock.set_now(lambda: datetime.now(UTC) + timedelta(minutes=6))
    later = client.get("/api/v1/devices", headers=h["admin"]).json()
    assert not any(d["online"] for d in later)


def test_emergencies_reach_the_devices_in_scope_until_they_expire_or_are_cancelled(
    client: TestClient, world: dict[str, Any], clips: dict[str, Path]
) -> None:
    h, sid, (v1, v2, _) = world["h"], world["station_id"], world["village_ids"]
    t0 = datetime(2024, 9, 7, 3, 0, tzinfo=UTC)
    clock.set_now(lambda: t0)
    seg = approved_segment(client, h, clips["a"], title="Bão số 3: sơ tán khẩn cấp")
    draft = client.post(
        "/api/v1/segments",
        json={"title": "Nháp", "programme": "cchc", "topic": "emergency"},
        headers=h["editor"],
    ).json()
    other = make_station("Xuân Hòa", villages=1)
    pc, pc1, pc2 = (device(client, h["admin"], sid, v) for v in (None, v1, v2))

    def create(body: dict[str, Any], who: str = "approver") -> Any:
        return client.post("/api/v1/emergencies", json=body, headers=h[who])

    assert create({"station_id": sid, "segment_id": seg["id"]}, "editor").status_code == 403
    r = create({"station_id": sid, "segment_id": draft["id"]})
    assert r.status_code == 422 and "draft" in r.json()["detail"]
    r = create({"station_id": sid, "segment_id": seg["id"], "village_ids": other["village_ids"]})
    assert r.status_code == 422 and str(other["village_ids"][0]) in r.json()["detail"]

    r = create({"station_id": sid, "segment_id": seg["id"], "village_ids": [v1]})
    assert r.status_code == 201, r.text
    e1 = r.json()
    assert e1["village_ids"] == [v1] and e1["title"] == "Bão số 3: sơ tán khẩn cấp"
    assert e1["audio_url"] == f"http://testserver/api/v1/audio/{e1['sha256']}"
    assert e1["sha256"] == seg["audio_sha256"] and e1["duration_ms"] == seg["duration_ms"]
    created, expires = (datetime.fromisoformat(e1[k]) for k in ("created_at", "expires_at"))
    assert created == t0 and expires - created == timedelta(minutes=30)

    def poll(dev: dict[str, Any], etag: str | None = None) -> Any:
        extra = {"If-None-Match": etag} if etag else {}
        return client.get(EMERGENCIES, headers={**dev["h"], **extra})

    # For some villages: on those villages' clusters; under fm also on the station's PC,
    # whose transmitter is how villages hear the station, under ip not.
    assert [e["id"] for e in poll(pc).json()] == ([] if world["ip"] else [e1["id"]])
    first = poll(pc1)
    assert first.json() == [e1]
    assert poll(pc2).json() == []
    assert poll(pc1, first.headers["etag"]).status_code == 304
    audio = urlsplit(e1["audio_url"]).path
    assert client.get(audio, headers=pc1["h"]).status_code == 200
    assert client.get(audio, headers=pc2["h"]).status_code == 404

    clock.set_now(lambda: t0 + timedelta(minutes=1))
    e2 = create({"station_id": sid, "segment_id": seg["id"]}).json()
    assert e2["village_ids"] is None
    changed = poll(pc1, first.headers["etag"])
    assert changed.status_code == 200 and [e["id"] for e in changed.json()] == [e2["id"], e1["id"]]
    assert [e["id"] for e in poll(pc2).json()] == [e2["id"]]

    played = {
        "event_id": "em-1",
        "emergency_id": e1["id"],
        "broadcast_id": None,
        "sha256": e1["sha256"],
        "started_at": (t0 + timedelta(seconds=5)).isoformat(),
        "ended_at": (t0 + timedelta(seconds=7)).isoformat(),
        "status": "played",
    }
    assert client.post(AS_RUN, json=[played], headers=pc1["h"]).json()["accepted"] == ["em-1"]
    out_of_scope = client.post(AS_RUN, json=[{**played, "event_id": "em-2"}], headers=pc2["h"])
    assert "not in this device's scope" in out_of_scope.json()["rejected"][0]["reason"]

    r = client.delete(f"/api/v1/emergencies/{e2['id']}", headers=h["approver"])
    assert r.status_code == 200 and r.json()["cancelled_at"] is not None
    assert client.delete(f"/api/v1/emergencies/{e2['id']}", headers=h["approver"]).is_success
    assert poll(pc2).json() == []
    assert [e["id"] for e in poll(pc1).json()] == [e1["id"]]
    listed = client.get("/api/v1/emergencies?active=true", headers=h["viewer"]).json()
    assert [e["id"] for e in listed["items"]] == [e1["id"]]

    clock.set_now(lambda: t0 + timedelta(minutes=30, seconds=1))
    assert poll(pc1).json() == [] and poll(pc).json() == []
    assert client.get(audio, headers=pc1["h"]).status_code == 404


def test_polls_write_device_health_at_most_every_30_seconds(
    client: TestClient, world: dict[str, Any]
) -> None:
    h, sid = world["h"], world["station_id"]
    pc = device(client, h["admin"], sid)
    t0 = datetime(2024, 3, 16, 3, 0, tzinfo=UTC)

    def poll_at(seconds: float, version: str = "1.0") -> dict[str, Any]:
        clock.set_now(lambda: t0 + timedelta(seconds=seconds))
        headers = {**pc["h"], "X-Loaxa-Agent-Version": version}
        assert client.get(EMERGENCIES, headers=headers).status_code == 200
        listed = client.get("/api/v1/devices", headers=h["admin"]).json()
        return next(d for d in listed if d["id"] == pc["id"])

    assert poll_at(0)["last_seen_at"] == "2024-03-16T03:00:00Z"
    assert poll_at(10)["last_seen_at"] == "2024-03-16T03:00:00Z"  # not worth a write yet
    assert poll_at(31)["last_seen_at"] == "2024-03-16T03:00:31Z"
    upgraded = poll_at(35, "1.1")  # a new agent version is written at once
    assert upgraded["agent_version"] == "1.1" and upgraded["last_seen_at"] == "2024-03-16T03:00:35Z"
    assert upgraded["last_playlist_at"] is None and upgraded["online"] is True


def test_a_village_broadcast_refuses_another_village_s_segment(
    client: TestClient, tmp_path: Path
) -> None:
    from tests.helpers import make_station, staff
    from tests.playout.helpers import approved_segment, pink, short_windows

    ids = make_station(villages=2)
    h = staff(client, ids["station_id"])
    short_windows()
    v1, v2 = ids["village_ids"]
    seg = approved_segment(
        client, h, pink(tmp_path / "a.mp3", 2), programme="village-weekly", village_ids=[v1]
    )
    r = client.post(
        "/api/v1/broadcasts",
        json={
            "programme": "village-weekly",
            "station_id": ids["station_id"],
            "village_id": v2,
            "starts_at": "2024-03-17T18:00:00+07:00",
        },
        headers=h["approver"],
    )
    assert r.status_code == 201, r.text
    bad = client.put(
        f"/api/v1/broadcasts/{r.json()['id']}/rundown",
        json={"segment_ids": [seg["id"]]},
        headers=h["approver"],
    )
    assert bad.status_code == 422
    assert f"segment {seg['id']} is meant for other villages" in bad.json()["detail"]
