"""Two communes with everything in them, for tests that call every endpoint (the fuzzer and
the authorization matrix): staff of every role, devices, real audio, an assembled broadcast
that aired, an active emergency. Station A is the one under test; station B is the
neighbour whose staff and device must see nothing of A.

Built through the API (and the same helpers as the playout tests), so it is what a real
commune looks like after a month of use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.accounts.models import Role
from tests.helpers import PASSWORD, login, make_station, make_user
from tests.playout.helpers import approved_segment, device, pink, short_windows

# Strings only station A's data carries: a body shown to B's staff or device must not
# contain any of them.
A_MARK = "BÍ-MẬT-XÃ-A"


@dataclass
class World:
    station_a: int
    villages_a: list[int]
    station_b: int
    villages_b: list[int]
    headers: dict[str, dict[str, str]]  # principal name -> Authorization header ({} = anon)
    tokens: dict[str, str]  # principal name -> raw token (the secrets the logs must not hold)
    passwords: dict[str, str]
    segment: dict[str, Any]  # approved, with audio, station A
    broadcast: dict[str, Any]  # assembled and aired, station A
    emergency: dict[str, Any]  # active, station A
    audio: Path
    marks: list[str] = field(default_factory=list)  # A's secrets: ids, titles, sha256s


def build_world(client: TestClient, tmp: Path) -> World:
    """Station A (2 villages, every role, a station PC) and B (an approver, a PC)."""
    a = make_station(f"Đài {A_MARK}", villages=2)
    b = make_station("Xuân Thái", villages=1)
    sid = a["station_id"]
    short_windows()
    headers: dict[str, dict[str, str]] = {"anon": {}}
    tokens: dict[str, str] = {}
    passwords: dict[str, str] = {}
    for role in Role:
        name = f"{role.value}1"
        make_user(name, role, sid if role != Role.admin else None)
        headers[role.value] = login(client, name)
        passwords[name] = PASSWORD
    make_user("approver_b", Role.approver, b["station_id"])
    headers["other_staff"] = login(client, "approver_b")
    passwords["approver_b"] = PASSWORD
    dev_a = device(client, headers["admin"], sid)
    dev_b = device(client, headers["admin"], b["station_id"])
    headers["device"], headers["other_device"] = dev_a["h"], dev_b["h"]
    for name, h in headers.items():
        if h:
            tokens[name] = h["Authorization"].removeprefix("Bearer ")

    audio = pink(tmp / "tin.mp3", 2.0)
    segment = approved_segment(client, headers, audio, title=f"Tin {A_MARK}")
    starts = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    r = client.post(
        "/api/v1/broadcasts",
        json={"programme": "cchc", "station_id": sid, "starts_at": starts.isoformat()},
        headers=headers["approver"],
    )
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    r = client.put(
        f"/api/v1/broadcasts/{bid}/rundown",
        json={"segment_ids": [segment["id"]]},
        headers=headers["approver"],
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/broadcasts/{bid}/assemble", headers=headers["approver"])
    assert r.status_code == 200, r.text
    assembled = r.json()
    ended = starts + timedelta(milliseconds=assembled["master_duration_ms"])
    r = client.post(
        "/api/v1/playout/as-run",
        json=[
            {
                "event_id": str(uuid.uuid4()),
                "broadcast_id": bid,
                "sha256": assembled["master_sha256"],
                "started_at": starts.isoformat(),
                "ended_at": ended.isoformat(),
                "status": "played",
            }
        ],
        headers=headers["device"],
    )
    assert r.status_code == 200 and r.json()["accepted"], r.text
    broadcast = client.get(f"/api/v1/broadcasts/{bid}", headers=headers["viewer"]).json()
    assert broadcast["status"] == "aired", broadcast
    r = client.post(
        "/api/v1/emergencies",
        json={"station_id": sid, "segment_id": segment["id"]},
        headers=headers["approver"],
    )
    assert r.status_code == 201, r.text
    return World(
        station_a=sid,
        villages_a=a["village_ids"],
        station_b=b["station_id"],
        villages_b=b["village_ids"],
        headers=headers,
        tokens=tokens,
        passwords=passwords,
        segment=segment,
        broadcast=broadcast,
        emergency=r.json(),
        audio=audio,
        marks=[A_MARK, segment["audio_sha256"], broadcast["master_sha256"]],
    )
