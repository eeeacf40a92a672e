"""The report counts relays: slots planned and relayed (90 % of the window), minutes heard
against minutes planned, dropouts, each village's cluster in an ip station, and why a slot
came in empty; the hub records an upstream that never answered and warns, grouped."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app import clock
from app.db import unit_of_work
from app.reports.formats import read_csv_tables
from app.streams.hub import Watch
from tests.helpers import make_station, staff
from tests.playout.helpers import device

WINDOW_MS = 600_000
CLOSED = "http://127.0.0.1:9/vov1"  # nothing listens there: the upstream never answers


def _event(eid: str, bid: int, start: datetime, relayed_s: float, drops: int = 0) -> Any:
    return {
        "event_id": eid,
        "broadcast_id": bid,
        "sha256": None,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(milliseconds=WINDOW_MS)).isoformat(),
        "status": "played",
        "relayed_ms": round(relayed_s * 1000),
        "dropouts": {"count": drops, "total_ms": drops * 5000},
    }


def test_the_report_counts_relays_per_month_and_village(
    client: TestClient, tmp_path: Path
) -> None:
    ids = make_station(villages=2, network="ip")
    sid, (v1, v2) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)
    r = client.post(
        f"/api/v1/stations/{sid}/programmes",
        json={
            "code": "vov1",
            "name": "Tiếp sóng VOV1",
            "scope": "station",
            "cadence": {"kind": "daily", "time": "06:00"},
            "min_duration_ms": WINDOW_MS,
            "max_duration_ms": WINDOW_MS,
            "source": {"kind": "relay", "url": CLOSED},
        },
        headers=h["admin"],
    )
    assert r.status_code == 201, r.text
    clock.set_now(lambda: datetime(2024, 3, 1, tzinfo=UTC))
    pc = device(client, h["admin"], sid)
    c1 = device(client, h["admin"], sid, v1)
    device(client, h["admin"], sid, v2)  # Thôn 2's cluster hears nothing
    starts = [datetime(2024, 3, d, 23, 0, tzinfo=UTC) for d in (4, 5, 6)]  # 06:00 local
    bids = []
    for at in starts:
        r = client.post(
            "/api/v1/broadcasts",
            json={"programme": "vov1", "station_id": sid, "starts_at": at.isoformat()},
            headers=h["approver"],
        )
        assert r.status_code == 201, r.text
        bids.append(r.json()["id"])
    clock.set_now(lambda: datetime(2024, 4, 2, tzinfo=UTC))
    events = [
        (pc, _event("pc-1", bids[0], starts[0], 590, 1)),  # relayed (98 %)
        (c1, _event("t1-1", bids[0], starts[0], 580, 2)),  # Thôn 1 relayed it too
        (pc, _event("pc-2", bids[1], starts[1], 300, 3)),  # half: not relayed
    ]
    for dev, ev in events:
        r = client.post("/api/v1/playout/as-run", json=[ev], headers=dev["h"])
        assert r.json()["accepted"] == [ev["event_id"]], r.text
    # The hub judges a slot when it ends: the third one, whose upstream never answered.
    with unit_of_work() as s:
        Watch().tick(s, now=starts[2] + timedelta(minutes=11), sources={})

    r = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": sid, "year": 2024, "month": 3},
        headers=h["viewer"],
    )
    assert r.status_code == 200, r.text
    [row] = r.json()["relays"]
    assert row["programme"] == "vov1" and row["month"] == "2024-03"
    assert (row["planned"], row["due"], row["relayed"]) == (3, 3, 1)
    assert row["planned_ms"] == 3 * WINDOW_MS
    assert row["relayed_ms"] == 590_000 + 300_000
    assert (row["dropouts"], row["dropout_ms"]) == (1 + 3, 4 * 5000)
    assert len(row["not_relayed"]) == 2
    assert any("không kết nối được" in line for line in row["not_relayed"]), row
    villages = {v["name"]: v for v in row["villages"]}
    assert villages["Thôn 1"]["relayed"] == 1 and villages["Thôn 1"]["relayed_ms"] == 580_000
    assert villages["Thôn 2"]["relayed"] == 0 and villages["Thôn 2"]["relayed_ms"] == 0

    # The grouped warning: one group for the station's month, the silent slot named.
    warnings = client.get("/api/v1/warnings", headers=h["approver"]).json()
    items = warnings["items"] if isinstance(warnings, dict) else warnings
    [group] = [w for w in items if w["kind"] == "relay-not-received"]
    assert group["month"] == "2024-03" and group["station_id"] == sid
    assert bids[2] in [i.get("broadcast_id") for i in group["items"]]
    assert "không nhận được tín hiệu" in group["message"]

    csv = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": sid, "year": 2024, "month": 3, "format": "csv"},
        headers=h["viewer"],
    ).content
    relays = read_csv_tables(csv)[-1]
    assert relays[0][:4] == ["Tháng", "Mã chương trình", "Chương trình", "Nơi"]
    assert relays[1][3:7] == ["Cả kỳ", "3", "3", "1"]
    assert [r[3] for r in relays[2:]] == ["Thôn 1", "Thôn 2"]
    xlsx = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": sid, "year": 2024, "month": 3, "format": "xlsx"},
        headers=h["viewer"],
    )
    assert xlsx.status_code == 200 and len(xlsx.content) > 1000
    pdf = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": sid, "year": 2024, "month": 3, "format": "pdf"},
        headers=h["viewer"],
    )
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True
    ).stdout.decode()
    assert "TIẾP SÓNG ĐÀI CẤP TRÊN" in text and "Tiếp sóng VOV1" in text


def test_staff_see_whether_the_hub_receives_today_s_relay(client: TestClient) -> None:
    ids = make_station(villages=0, network="fm")
    sid = ids["station_id"]
    h = staff(client, sid)
    r = client.post(
        f"/api/v1/stations/{sid}/programmes",
        json={
            "code": "vov1",
            "name": "VOV1",
            "scope": "station",
            "cadence": {"kind": "daily", "time": "06:00"},
            "min_duration_ms": 1_800_000,
            "max_duration_ms": 1_800_000,
            "source": {"kind": "relay", "url": CLOSED},
        },
        headers=h["admin"],
    )
    assert r.status_code == 201, r.text
    starts = datetime(2024, 3, 16, 6, 0, tzinfo=UTC) - timedelta(hours=7)  # 06:00 local
    clock.set_now(lambda: starts - timedelta(hours=1))
    r = client.post(
        "/api/v1/broadcasts",
        json={"programme": "vov1", "station_id": sid, "starts_at": starts.isoformat()},
        headers=h["approver"],
    )
    assert r.status_code == 201, r.text

    def today() -> list[dict[str, Any]]:
        r = client.get("/api/v1/streams/today", params={"station_id": sid}, headers=h["approver"])
        assert r.status_code == 200, r.text
        return list(r.json())

    assert [x["words"] for x in today()] == ["VOV1: 06:00"]
    mount = f"/relay-{sid}-vov1"
    on_air = {mount: {"stream_start_iso8601": "2024-03-16T06:00:01+0700"}}
    watch = Watch()
    for minute, sources in ((2, on_air), (12, {})):
        at = starts + timedelta(minutes=minute)
        clock.set_now(lambda at=at: at)
        with unit_of_work() as s:
            watch.tick(s, now=at, sources=sources)
        if minute == 2:
            assert [x["words"] for x in today()] == ["VOV1: đang nhận"]
    [lost] = today()
    assert lost["phase"] == "on-air" and lost["receiving"] is False
    assert lost["words"] == "VOV1: mất tín hiệu từ 06:12"
    clock.set_now(lambda: starts + timedelta(minutes=45))
    [over] = today()
    assert over["phase"] == "over" and over["relayed"] is False
    assert over["words"].startswith("VOV1: không tiếp sóng được")
