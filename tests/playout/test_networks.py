"""Playlists as the network kind changes, and which of two overlapping items wins.

Switching a station's kind never changes a playlist in the middle of its day nor makes a
device play an item twice; when two items overlap on a device the playlist says which
plays (emergency, then priority, then the commune's programme, then the village's).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
from app.db import unit_of_work
from app.devices import service as devices
from app.schedule import jobs
from app.schedule import service as schedule
from app.schedule.models import Broadcast, BroadcastStatus, ScheduleWarning
from app.stations import service as stations
from tests.helpers import make_station, staff

PLAYLIST = "/api/v1/playout/playlist"
MASTER_MS = 600_000
# 10:00 on Saturday 16 March 2024 in Vietnam (UTC+7).
MORNING = datetime(2024, 3, 16, 3, 0, tzinfo=UTC)


def _on_air(
    s: Session, *, station_id: int, code: str, at: str, village_id: int | None = None
) -> int:
    """A broadcast with a (pretend) master, ready for the playlists."""
    b = schedule.create_broadcast(
        s,
        station_id=station_id,
        programme_code=code,
        starts_at=datetime.fromisoformat(at),
        village_id=village_id,
    )
    b.status = BroadcastStatus.assembled.value
    b.master_sha256 = hashlib.sha256(f"master {b.id}".encode()).hexdigest()
    b.master_duration_ms = MASTER_MS
    s.flush()
    return b.id


def _devices(station_id: int, village_ids: list[int]) -> dict[str, dict[str, str]]:
    with unit_of_work() as s:
        made = {"station": devices.create_device(s, name="PC đài", station_id=station_id)[1]}
        for n, vid in enumerate(village_ids, start=1):
            made[f"thon{n}"] = devices.create_device(
                s, name=f"Cụm loa thôn {n}", station_id=station_id, village_id=vid
            )[1]
    return {k: {"Authorization": f"Bearer {t}"} for k, t in made.items()}


def _keys(client: TestClient, headers: dict[str, str], day: str) -> list[str]:
    r = client.get(PLAYLIST, params={"date": day}, headers=headers)
    assert r.status_code == 200, r.text
    return [i["event_key"] for i in r.json()["items"]]


def test_switching_kind_mid_day_keeps_today_s_playlists_and_plays_nothing_twice(
    client: TestClient,
) -> None:
    ids = make_station(network="fm", villages=2)
    sid, (v1, v2) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)
    clock.set_now(lambda: MORNING)
    with unit_of_work() as s:
        today = _on_air(s, station_id=sid, code="cchc", at="2024-03-16T17:00:00+07:00")
        tonight = _on_air(
            s, station_id=sid, code="village-weekly", at="2024-03-16T19:00:00+07:00", village_id=v1
        )
        tomorrow = _on_air(
            s, station_id=sid, code="village-weekly", at="2024-03-17T18:00:00+07:00", village_id=v1
        )
        next_month = _on_air(s, station_id=sid, code="cchc", at="2024-04-20T17:00:00+07:00")
    pcs = _devices(sid, [v1, v2])
    days = ("2024-03-16", "2024-03-17", "2024-04-20")

    def playlists() -> dict[tuple[str, str], Any]:
        out = {}
        for who, headers in pcs.items():
            for day in days:
                r = client.get(PLAYLIST, params={"date": day}, headers=headers)
                out[(who, day)] = (r.headers["etag"], [i["event_key"] for i in r.json()["items"]])
        return out

    before = playlists()
    assert before[("thon1", "2024-03-16")][1] == [f"b{tonight}"]
    assert before[("thon2", "2024-04-20")][1] == []

    # At 10:00 the station becomes ip: from tomorrow on.
    r = client.patch(f"/api/v1/stations/{sid}", json={"network": "ip"}, headers=h["admin"])
    assert r.status_code == 200 and r.json()["pending_network"]["effective_from"] == "2024-03-17"
    after = playlists()
    for who in pcs:  # today's playlists: byte for byte the same (same ETag)
        assert after[(who, "2024-03-16")] == before[(who, "2024-03-16")], who
    # Later days: every cluster carries the commune's programme, the station's PC as before.
    assert after[("station", "2024-04-20")] == before[("station", "2024-04-20")]
    assert after[("thon1", "2024-04-20")][1] == after[("thon2", "2024-04-20")][1] == [
        f"b{next_month}"
    ]
    assert after[("thon1", "2024-03-17")][1] == [f"b{tomorrow}"]
    # Each broadcast appears once in a device's playlists, whichever day it is asked for.
    for who in pcs:
        keys = [k for day in days for k in after[(who, day)][1]]
        assert len(keys) == len(set(keys)), who
    assert f"b{today}" not in after[("thon1", "2024-03-16")][1]

    # The next morning, and the day after a switch back (asked that day: from the day after).
    clock.set_now(lambda: MORNING + timedelta(days=1))
    assert client.get(f"/api/v1/stations/{sid}", headers=h["admin"]).json()["network"] == "ip"
    r = client.patch(f"/api/v1/stations/{sid}", json={"network": "fm"}, headers=h["admin"])
    assert r.json()["network"] == "ip"
    assert _keys(client, pcs["thon2"], "2024-03-17") == after[("thon2", "2024-03-17")][1]
    assert _keys(client, pcs["thon2"], "2024-04-20") == []


def test_the_playlist_says_which_of_two_overlapping_items_wins(
    client: TestClient, session: Session
) -> None:
    ids = make_station(network="ip", villages=2)
    sid, (v1, v2) = ids["station_id"], ids["village_ids"]
    with unit_of_work() as s:
        # An old plan: the village slot (17:05) runs into the commune's programme (17:00).
        commune = _on_air(s, station_id=sid, code="cchc", at="2024-03-16T17:00:00+07:00")
        village = _on_air(
            s, station_id=sid, code="village-weekly", at="2024-03-16T17:05:00+07:00", village_id=v1
        )
        later = _on_air(
            s, station_id=sid, code="village-weekly", at="2024-03-16T17:09:00+07:00", village_id=v2
        )
    pcs = _devices(sid, [v1, v2])

    def items(who: str) -> dict[str, dict[str, Any]]:
        r = client.get(PLAYLIST, params={"date": "2024-03-16"}, headers=pcs[who])
        return {
            i["event_key"]: {k: i[k] for k in ("rank", "yields_to", "supersedes")}
            for i in r.json()["items"]
        }

    c, v, w = f"b{commune}", f"b{village}", f"b{later}"
    assert items("station") == {c: {"rank": 1, "yields_to": [], "supersedes": []}}
    # The commune's programme wins over the village's on the village's cluster.
    assert items("thon1") == {
        c: {"rank": 1, "yields_to": [], "supersedes": [v]},
        v: {"rank": 2, "yields_to": [c], "supersedes": []},
    }
    assert items("thon2") == {
        c: {"rank": 1, "yields_to": [], "supersedes": [w]},
        w: {"rank": 2, "yields_to": [c], "supersedes": []},
    }
    # A plain M3U player cannot follow that: it gets the winner only.
    m3u = client.get(
        PLAYLIST, params={"date": "2024-03-16", "format": "m3u"}, headers=pcs["thon1"]
    ).text
    assert m3u.count("#EXTINF") == 1 and "Cải cách hành chính" in m3u

    # A priority broadcast beats a normal one whoever's it is.
    with unit_of_work() as s:
        s.get_one(Broadcast, village).priority = "priority"
    assert items("thon1") == {
        c: {"rank": 2, "yields_to": [v], "supersedes": []},
        v: {"rank": 1, "yields_to": [], "supersedes": [c]},
    }

    # The scheduler warns about both, naming the one that will not play.
    clock.set_now(lambda: datetime(2024, 3, 14, 0, 0, tzinfo=UTC))
    assert jobs.check_overlaps(clock.now()) == 2
    assert jobs.check_overlaps(clock.now()) == 0  # stored once
    found = {
        w.broadcast_id: w.message
        for w in session.query(ScheduleWarning).filter(ScheduleWarning.kind == "overlap")
    }
    assert set(found) == {commune, later}
    assert f"broadcast {commune} will not play there" in found[commune]
    assert "village 'Thôn 2'" in found[later] and "the commune's cchc" in found[later]


def test_the_scheduler_warns_about_slots_that_overlapped_before_the_station_became_ip(
    client: TestClient, session: Session
) -> None:
    ids = make_station(network="fm", villages=2)
    sid, (v1, _v2) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)
    clash = {"cadence": {"kind": "weekly", "weekdays": [5], "time": "17:05"}}
    r = client.put(f"/api/v1/stations/{sid}/villages/{v1}/cadence", json=clash, headers=h["admin"])
    assert r.status_code == 200  # fm: the villages do not carry the commune's programme
    assert jobs.check_overlaps(clock.now()) == 0
    assert client.patch(
        f"/api/v1/stations/{sid}", json={"network": "ip"}, headers=h["admin"]
    ).is_success
    assert jobs.check_overlaps(clock.now()) == 1
    assert jobs.check_overlaps(clock.now()) == 0
    listed = client.get("/api/v1/warnings", params={"kind": "overlap"}, headers=h["viewer"]).json()
    # Besides it, every answer carries the computed "no scheduler running" warning (id 0).
    [warning] = [w for w in listed["items"] if w["kind"] == "overlap"]
    assert "village 'Thôn 1'" in warning["message"]
    assert "every Saturday 17:05" in warning["message"] and "cchc" in warning["message"]
    # An overlap that exists already does not block unrelated changes.
    with unit_of_work() as s:
        station = stations.get_station(s, sid)
        assert len(stations.station_clashes(s, station)) == 1
    r = client.patch(
        f"/api/v1/stations/{sid}/programmes/village-weekly",
        json={"min_duration_ms": 120_000},
        headers=h["approver"],
    )
    assert r.status_code == 200, r.text
