"""Phát khẩn cấp by typing ("Soạn nội dung", "Nghe thử", "Phát ngay"), by a recording, and
"Nói trực tiếp" / "Kết thúc" (issue 24): nothing preselected, the confirmation tells the
devices that hear it now from those offline, and the live feed's WebSocket refuses in words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from app import clock
from app.config import get_settings
from app.db import unit_of_work
from app.devices.models import Device
from app.playout.models import Emergency, LiveSession
from tests.console.helpers import csrf, post, refused
from tests.helpers import login
from tests.playout.helpers import approved_segment, device, pink

RoleClient = Callable[[str], TestClient]
ClientFactory = Callable[[], TestClient]
EMERGENCIES = "/api/v1/playout/emergencies"
STORM = "Lũ lên nhanh ở suối Cát. Bà con thôn 1 không qua ngầm."


@pytest.fixture(autouse=True)
def offline_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "emergency_tts_engine", "espeak")


def api(browser_client: ClientFactory) -> tuple[TestClient, dict[str, dict[str, str]]]:
    client = browser_client()
    return client, {r: login(client, "admin" if r == "admin" else f"{r}1")
                    for r in ("editor", "approver", "admin", "viewer")}  # fmt: skip


def test_typed_emergency_heard_confirmed_with_offline_devices_apart_and_played(
    as_role: RoleClient, station: dict[str, Any], browser_client: ClientFactory, tmp_path: Path
) -> None:
    client, h = api(browser_client)
    sid, (v1, v2, _v3) = station["station_id"], station["village_ids"]
    approved_segment(client, h, pink(tmp_path / "a.mp3", 2), title="Tin CCHC tháng 9")
    pc1 = device(client, h["admin"], sid, v1)
    pc2 = device(client, h["admin"], sid, v2)
    client.get(EMERGENCIES, headers=pc1["h"])  # pc1 is online; pc2 has never been seen
    approver = as_role("approver")

    page = approver.get("/emergency")
    assert "Soạn nội dung" in page.text and "Nói trực tiếp" in page.text
    assert " selected>" not in page.text.split('id="segment_id"')[1].split("</select>")[0]

    heard = post(approver, "/emergency/preview", {"text": STORM})
    assert heard.status_code == 200 and 'src="data:audio/mpeg;base64,' in heard.text
    assert "Máy sẽ đọc là" in heard.text and STORM in heard.text

    empty = refused(approver, "/emergency/confirm", {"text": "  ", "scope": "station"})
    assert "Hãy soạn nội dung, ghi âm, hoặc chọn một tin bài" in empty.text
    long = refused(approver, "/emergency/confirm", {"text": "Bão. " * 500, "scope": "station"})
    assert "Nội dung quá dài" in long.text
    choice = {"text": STORM, "repeat": "3", "scope": "villages", "village_ids": [str(v1), str(v2)]}
    r = post(approver, "/emergency/confirm", choice)
    assert r.status_code == 200 and "Phát ngay" in r.text, r.text
    now = r.text.split("Nghe ngay")[1].split("</div>")[0]
    offline = r.text.split("Đang mất kết nối")[1].split("</div>")[0]
    assert f"PC {v1}" in now and f"PC {v2}" not in now
    assert f"PC {v2}" in offline and "sẽ phát khi kết nối lại trước" in offline
    with unit_of_work(write=False) as db:
        assert db.scalars(select(Emergency)).all() == []  # not yet

    r = post(approver, "/emergency", choice)
    assert r.status_code == 303, r.text
    eid = int(r.headers["location"].rsplit("/", 1)[1])
    e = client.get(f"/api/v1/emergencies/{eid}", headers=h["viewer"]).json()
    assert e["repeat"] == 3 and e["title"].startswith("Khẩn cấp: Lũ lên nhanh")
    assert [x["id"] for x in client.get(EMERGENCIES, headers=pc2["h"]).json()] == [eid]


def test_a_recording_from_the_page_goes_on_air_said_twice(
    as_role: RoleClient, station: dict[str, Any], browser_client: ClientFactory, tmp_path: Path
) -> None:
    client, h = api(browser_client)
    sid = station["station_id"]
    pc = device(client, h["admin"], sid, None)
    approver = as_role("approver")
    recording = pink(tmp_path / "ghi-am.mp3", 3)
    with open(recording, "rb") as f:
        r = approver.post(
            "/emergency/confirm",
            data={"csrf_token": csrf(approver, "/emergency"), "scope": "station", "repeat": "2"},
            files={"recording": ("ghi-am.mp3", f, "audio/mpeg")},
        )
    assert r.status_code == 200 and "Bản ghi âm vừa ghi" in r.text, r.text
    held = re.search(r'name="held" value="([^"]+)"', r.text)
    assert held
    r = post(approver, "/emergency", {"held": held[1], "repeat": "2", "scope": "station"})
    assert r.status_code == 303, r.text
    eid = int(r.headers["location"].rsplit("/", 1)[1])
    e = client.get(f"/api/v1/emergencies/{eid}", headers=h["viewer"]).json()
    assert e["repeat"] == 2 and 7000 <= e["duration_ms"] <= 8500  # 3 s, 1.5 s, 3 s
    assert [x["id"] for x in client.get(EMERGENCIES, headers=pc["h"]).json()] == [eid]
    # The held file is used once.
    again = refused(approver, "/emergency", {"held": held[1], "repeat": "2", "scope": "station"})
    assert "hãy ghi lại" in again.text


def test_speaking_live_opens_once_ends_and_the_feed_refuses_in_words(
    as_role: RoleClient, station: dict[str, Any], browser_client: ClientFactory
) -> None:
    client, h = api(browser_client)
    sid, (v1, _v2, _v3) = station["station_id"], station["village_ids"]
    pc = device(client, h["admin"], sid, v1)
    approver = as_role("approver")
    r = post(approver, "/emergency/live", {"title": "Họp khẩn", "priority": "emergency",
                                           "scope": "station"})  # fmt: skip
    assert r.status_code == 303, r.text
    page_url = r.headers["location"]
    live_id = int(page_url.rsplit("/", 1)[1])
    page = approver.get(page_url)
    assert "Nói trực tiếp" in page.text and "Kết thúc" in page.text
    assert [(x["kind"], x["id"]) for x in client.get(EMERGENCIES, headers=pc["h"]).json()] == [
        ("live", live_id)
    ]
    second = refused(approver, "/emergency/live", {"title": "Lần hai", "priority": "normal",
                                                   "scope": "station"})  # fmt: skip
    assert "Đài đang có một phiên phát trực tiếp" in second.text

    ws_path = f"/api/v1/live/{live_id}/ws"

    def ws_refusal(who: TestClient, path: str) -> str:
        with who.websocket_connect(path) as ws:
            said = ws.receive_json()
            with pytest.raises(WebSocketDisconnect):
                ws.receive_bytes()
        return str(said["error"])

    stranger = browser_client()
    assert "not signed in" in ws_refusal(stranger, f"{ws_path}?csrf_token=x")
    assert "CSRF" in ws_refusal(approver, f"{ws_path}?csrf_token=wrong")
    editor = as_role("editor")
    assert "approver" in ws_refusal(editor, f"{ws_path}?csrf_token={csrf(editor)}")

    r = post(approver, f"/emergency/live/{live_id}/end", {})
    assert r.status_code == 303
    assert client.get(EMERGENCIES, headers=pc["h"]).json() == []
    assert "has ended" in ws_refusal(approver, f"{ws_path}?csrf_token={csrf(approver)}")
    with unit_of_work(write=False) as db:
        s = db.get_one(LiveSession, live_id)
        assert s.ended_at is not None and s.end_reason == "Kết thúc"
        assert db.scalar(select(Device.id).where(Device.id == pc["id"])) is not None
    assert clock.now() - s.ended_at < timedelta(minutes=1)
