"""Builders for playout tests: short real audio, assembled broadcasts, devices."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import unit_of_work
from app.stations.models import Programme


def pink(path: Path, seconds: float, seed: int = 1) -> Path:
    """An MP3 of pink noise (real audio for the ingest and assembly pipeline)."""
    spec = f"anoisesrc=c=pink:a=0.05:r=44100:d={seconds}:seed={seed}"
    encode = ["-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", str(path)]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", spec, *encode],
        check=True,
    )
    return path


def short_windows() -> None:
    """The rule is data: let every programme run 1 s to 2 min so test audio stays short."""
    with unit_of_work() as session:
        session.execute(update(Programme).values(min_duration_ms=1_000, max_duration_ms=120_000))


def device(
    client: TestClient, admin: dict[str, str], station_id: int, village_id: int | None = None
) -> dict[str, Any]:
    """A playout device through the API: its id and Authorization headers."""
    r = client.post(
        "/api/v1/devices",
        json={
            "name": f"PC {village_id or 'đài'}",
            "station_id": station_id,
            "village_id": village_id,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return {"id": r.json()["id"], "h": {"Authorization": f"Bearer {r.json()['token']}"}}


def approved_segment(
    client: TestClient,
    h: dict[str, dict[str, str]],
    audio: Path,
    *,
    title: str = "Tin",
    programme: str = "cchc",
    station_id: int | None = None,
    village_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A segment with real audio, submitted and approved."""
    body: dict[str, Any] = {"title": title, "programme": programme, "topic": "progress"}
    if station_id is not None:
        body["station_id"] = station_id
    if village_ids:
        body["village_ids"] = village_ids
    seg = client.post("/api/v1/segments", json=body, headers=h["editor"])
    assert seg.status_code == 201, seg.text
    sid = seg.json()["id"]
    with audio.open("rb") as fh:
        r = client.put(
            f"/api/v1/segments/{sid}/audio", files={"file": ("a.mp3", fh)}, headers=h["editor"]
        )
    assert r.status_code == 200, r.text
    assert client.post(f"/api/v1/segments/{sid}/submit", headers=h["editor"]).status_code == 200
    r = client.post(f"/api/v1/segments/{sid}/approve", headers=h["approver"])
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    return r.json()


def broadcast(
    client: TestClient,
    h: dict[str, dict[str, str]],
    *,
    station_id: int,
    starts_at: str,
    segment_ids: list[int],
    programme: str = "cchc",
    village_id: int | None = None,
    assemble: bool = True,
) -> dict[str, Any]:
    """A broadcast with its rundown set and, unless told otherwise, assembled."""
    body: dict[str, Any] = {
        "programme": programme,
        "station_id": station_id,
        "starts_at": starts_at,
    }
    if village_id is not None:
        body["village_id"] = village_id
    r = client.post("/api/v1/broadcasts", json=body, headers=h["approver"])
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    r = client.put(
        f"/api/v1/broadcasts/{bid}/rundown",
        json={"segment_ids": segment_ids},
        headers=h["approver"],
    )
    assert r.status_code == 200, r.text
    if assemble:
        r = client.post(f"/api/v1/broadcasts/{bid}/assemble", headers=h["approver"])
        assert r.status_code == 200, r.text
    return client.get(f"/api/v1/broadcasts/{bid}", headers=h["viewer"]).json()
