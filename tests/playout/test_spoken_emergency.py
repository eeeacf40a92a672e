"""Emergencies said in words (issue 24): typed text read aloud (espeak-ng, offline) and
played `repeat` times, in one step: segment, approval, emergency."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.audit.models import AuditEvent
from app.config import get_settings
from app.segments.models import Segment
from app.stations.models import Programme
from tests.helpers import make_station, staff
from tests.playout.helpers import device

EMERGENCIES = "/api/v1/playout/emergencies"
STORM = "Bão số 3 sắp đổ bộ. Bà con thôn Đông di chuyển đến nhà văn hóa ngay."


@pytest.fixture(autouse=True)
def offline_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "emergency_tts_engine", "espeak")


def duration_s(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    return float(json.loads(out)["format"]["duration"])


def test_typed_text_plays_at_once_twice_in_its_scope_and_is_approved_by_its_author(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    ids = make_station(network="ip")
    sid, (v1, v2, v3) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)
    clock.set_now(lambda: datetime(2026, 9, 7, 3, 0, tzinfo=UTC))
    pc1, pc2, pc3 = (device(client, h["admin"], sid, v) for v in (v1, v2, v3))

    once = client.post(
        "/api/v1/emergencies",
        json={"station_id": sid, "village_ids": [v1, v2], "text": STORM, "repeat": 1},
        headers=h["approver"],
    )
    assert once.status_code == 201, once.text
    r = client.post(
        "/api/v1/emergencies",
        json={"station_id": sid, "village_ids": [v1, v2], "text": STORM},
        headers=h["approver"],
    )
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["repeat"] == 2 and e["title"].startswith("Khẩn cấp: Bão số 3")
    # Said twice, with a pause between: more than twice the single saying.
    single, double = once.json()["duration_ms"], e["duration_ms"]
    assert 2 * single + 1000 <= double <= 2 * single + 2500

    polled = {n: client.get(EMERGENCIES, headers=d["h"]).json() for n, d in
              (("pc1", pc1), ("pc2", pc2), ("pc3", pc3))}  # fmt: skip
    assert e["id"] in [x["id"] for x in polled["pc1"]]
    assert e["id"] in [x["id"] for x in polled["pc2"]]
    assert polled["pc3"] == []
    audio = client.get(f"/api/v1/audio/{e['sha256']}", headers=pc1["h"])
    assert audio.status_code == 200
    (tmp_path / "e.mp3").write_bytes(audio.content)
    assert abs(duration_s(tmp_path / "e.mp3") - double / 1000) < 0.2

    segment = session.get_one(Segment, e["segment_id"])
    programme = session.get_one(Programme, segment.programme_id)
    assert programme.is_emergency and segment.status == "approved"
    assert segment.script == STORM and segment.priority == "emergency"
    approvals = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "segment.approve", AuditEvent.entity_id == segment.id
        )
    ).all()
    assert len(approvals) == 1 and approvals[0].actor == "approver1"
    # The emergency programme is nobody's schedule: not among the station's programmes.
    listed = client.get(f"/api/v1/stations/{sid}/programmes", headers=h["admin"]).json()
    codes = [p["code"] for p in (listed["items"] if isinstance(listed, dict) else listed)]
    assert programme.code not in codes


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"text": "   "}, "empty"),
        ({"text": "Bão. " * 500}, "longer than"),
        ({"text": STORM, "repeat": 0}, "repeat: Input should be greater than or equal to 1"),
        ({"text": STORM, "repeat": 6}, "repeat: Input should be less than or equal to 5"),
        ({"text": STORM, "segment_id": 1}, "either segment_id or text"),
        ({}, "either segment_id or text"),
    ],
)
def test_bad_text_emergencies_are_refused_in_words_and_nothing_plays(
    client: TestClient, session: Session, body: dict[str, Any], words: str
) -> None:
    ids = make_station(network="ip")
    sid = ids["station_id"]
    h = staff(client, sid)
    pc = device(client, h["admin"], sid, None)
    r = client.post("/api/v1/emergencies", json={"station_id": sid, **body}, headers=h["approver"])
    assert r.status_code == 422, r.text
    assert words in json.dumps(r.json()["detail"], ensure_ascii=False)
    assert client.get(EMERGENCIES, headers=pc["h"]).json() == []
    assert session.scalars(select(Segment)).all() == []


def test_editors_and_viewers_cannot_start_a_text_emergency(client: TestClient) -> None:
    ids = make_station(network="ip")
    sid = ids["station_id"]
    h = staff(client, sid)
    for who in ("editor", "viewer"):
        r = client.post(
            "/api/v1/emergencies", json={"station_id": sid, "text": STORM}, headers=h[who]
        )
        assert r.status_code == 403


@pytest.mark.slow
def test_real_agents_play_a_typed_emergency_twice_in_scope_and_not_outside(
    client: TestClient, server_url: str, tmp_path: Path
) -> None:
    from tests.streams.test_live import Running

    ids = make_station(network="ip")
    sid, (v1, v2, v3) = ids["station_id"], ids["village_ids"]
    h = staff(client, sid)

    def token(village: int) -> str:
        r = client.post(
            "/api/v1/devices",
            json={"name": f"Cụm loa {village}", "station_id": sid, "village_id": village},
            headers=h["admin"],
        )
        return str(r.json()["token"])

    agents = {v: Running(server_url, token(v), tmp_path / f"a{v}") for v in (v1, v2, v3)}
    try:
        r = client.post(
            "/api/v1/emergencies",
            json={"station_id": sid, "village_ids": [v1, v2], "text": "Bão về. Sơ tán ngay."},
            headers=h["approver"],
        )
        assert r.status_code == 201, r.text
        e = r.json()

        def played(v: int) -> bool:
            return any(p.stat().st_size > 0 for p in agents[v].heard.glob("file-*.raw")) and not (
                agents[v].playing
            )

        deadline = e["duration_ms"] / 1000 + 15
        for v in (v1, v2):
            wait_for_agent(lambda v=v: played(v), deadline)
    finally:
        for running in agents.values():
            running.stop()
    once = client.post(
        "/api/v1/emergencies",
        json={"station_id": sid, "village_ids": [v3], "text": "Bão về. Sơ tán ngay.", "repeat": 1},
        headers=h["approver"],
    ).json()
    for v in (v1, v2):
        [heard] = list(agents[v].heard.glob("file-*.raw"))
        seconds = heard.stat().st_size / 16_000
        # Said twice with a pause between: the whole emergency, twice the single saying.
        assert abs(seconds - e["duration_ms"] / 1000) < 0.5
        assert seconds > 2 * once["duration_ms"] / 1000
    assert not list(agents[v3].heard.glob("*.raw"))


def wait_for_agent(condition: Any, seconds: float) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds:.0f} s for the agents to play the emergency")
