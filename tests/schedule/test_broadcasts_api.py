"""Broadcasts, rundowns and assembly through the HTTP API, with real audio."""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import unit_of_work
from app.stations.models import Programme
from tests.helpers import make_station, staff


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


def pink(path: Path, seconds: float, seed: int = 1) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"anoisesrc=c=pink:a=0.05:r=44100:d={seconds}:seed={seed}",
            "-ac",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            str(path),
        ],
        check=True,
    )
    return path


def approved_segment(client: TestClient, w: dict, audio: Path, title: str = "Tin") -> dict:
    editor, approver = w["h"]["editor"], w["h"]["approver"]
    seg = client.post(
        "/api/v1/segments",
        json={"title": title, "programme": "cchc", "topic": "progress", "target_month": "2024-03"},
        headers=editor,
    ).json()
    with audio.open("rb") as fh:
        r = client.put(
            f"/api/v1/segments/{seg['id']}/audio", files={"file": ("a.mp3", fh)}, headers=editor
        )
    assert r.status_code == 200, r.text
    client.post(f"/api/v1/segments/{seg['id']}/submit", headers=editor)
    r = client.post(f"/api/v1/segments/{seg['id']}/approve", headers=approver)
    assert r.json()["status"] == "approved"
    return r.json()


def new_broadcast(client: TestClient, w: dict, starts_at: str = "2024-03-16T17:00:00+07:00"):
    return client.post(
        "/api/v1/broadcasts",
        json={"programme": "cchc", "station_id": w["station_id"], "starts_at": starts_at},
        headers=w["h"]["approver"],
    )


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated loudness, true peak) from ffmpeg's own ebur128=peak=true summary."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path)]
    log = subprocess.run(
        [*cmd, "-af", "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True
    ).stderr
    summary = log[log.rindex("Summary:") :]
    loudness = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert loudness and peak, summary
    return float(loudness.group(1)), float(peak.group(1))


def decoded_ms(path: Path) -> float:
    out = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "44100",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    return len(out.stdout) / 2 / 44.1


def test_one_cchc_broadcast_per_local_month(client: TestClient, world: dict) -> None:
    first = new_broadcast(client, world)
    assert first.status_code == 201, first.text
    assert first.json()["local_month"] == "2024-03"
    dup = new_broadcast(client, world, "2024-03-30T08:00:00+07:00")
    assert dup.status_code == 409
    assert "already has its cchc broadcast for 2024-03" in dup.json()["detail"]
    # 00:30 on 1 April in Vietnam is still 31 March in UTC: it belongs to April.
    april = new_broadcast(client, world, "2024-03-31T17:30:00Z")
    assert april.status_code == 201 and april.json()["local_month"] == "2024-04"
    listed = client.get(
        "/api/v1/broadcasts?programme=cchc&year=2024", headers=world["h"]["viewer"]
    ).json()
    assert [b["local_month"] for b in listed["items"]] == ["2024-03", "2024-04"]


def test_racing_creations_leave_one_broadcast(client: TestClient, world: dict) -> None:
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def create(day: int) -> None:
        barrier.wait()
        codes.append(new_broadcast(client, world, f"2024-05-{day:02d}T17:00:00+07:00").status_code)

    threads = [threading.Thread(target=create, args=(d,)) for d in range(10, 16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 409, 409, 409, 409, 409]


def test_move_within_the_month_only(client: TestClient, world: dict) -> None:
    b = new_broadcast(client, world).json()
    ok = client.patch(
        f"/api/v1/broadcasts/{b['id']}",
        json={"starts_at": "2024-03-23T17:00:00+07:00"},
        headers=world["h"]["approver"],
    )
    assert ok.status_code == 200 and ok.json()["starts_at"].startswith("2024-03-23T10:00")
    bad = client.patch(
        f"/api/v1/broadcasts/{b['id']}",
        json={"starts_at": "2024-04-01T00:30:00+07:00"},
        headers=world["h"]["approver"],
    )
    assert bad.status_code == 422 and "2024-04" in bad.json()["detail"]
    naive = client.post(
        "/api/v1/broadcasts",
        json={
            "programme": "cchc",
            "station_id": world["station_id"],
            "starts_at": "2024-06-15T17:00:00",
        },
        headers=world["h"]["approver"],
    )
    assert naive.status_code == 422 and "timezone" in naive.json()["detail"]


def test_rundown_takes_approved_segments_with_audio_only(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    b = new_broadcast(client, world).json()
    good = approved_segment(client, world, pink(tmp_path / "a.mp3", 3))
    draft = client.post(
        "/api/v1/segments",
        json={"title": "Nháp", "programme": "cchc", "topic": "other"},
        headers=world["h"]["editor"],
    ).json()
    r = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [good["id"], draft["id"], 999]},
        headers=world["h"]["approver"],
    )
    assert r.status_code == 422
    assert f"segment {draft['id']} is draft, not approved" in r.json()["detail"]
    assert "segment 999 does not exist" in r.json()["detail"]
    dup = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [good["id"], good["id"]]},
        headers=world["h"]["approver"],
    )
    assert dup.status_code == 422
    r = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [good["id"]]},
        headers=world["h"]["approver"],
    )
    assert r.status_code == 200
    view = r.json()
    assert [i["kind"] for i in view["items"]] == ["intro", "segment", "outro"]
    assert view["window_ms"] == [600_000, 900_000]
    assert view["total_ms"] == sum(i["duration_ms"] for i in view["items"]) + 2 * view["gap_ms"]
    assert view["compliant"] is False and "short of the 10 min minimum" in view["problem"]

    short = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=world["h"]["approver"])
    assert short.status_code == 422
    detail = short.json()["detail"]
    shortfall = (600_000 - view["total_ms"]) / 1000
    assert f"{shortfall:.1f} s short" in detail and "add at least" in detail


def test_a_ten_to_fifteen_minute_column_is_assembled_exactly(
    client: TestClient, world: dict, tmp_path: Path, data_dir: Path
) -> None:
    segs = [
        approved_segment(client, world, pink(tmp_path / f"s{n}.mp3", 330, seed=n), f"Tin {n}")
        for n in (1, 2)
    ]
    b = new_broadcast(client, world).json()
    view = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [s["id"] for s in segs]},
        headers=world["h"]["approver"],
    ).json()
    assert view["compliant"] is True and view["problem"] is None
    r = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=world["h"]["approver"])
    assert r.status_code == 200, r.text
    done = r.json()
    master = data_dir / "audio" / done["master_sha256"][:2] / f"{done['master_sha256']}.mp3"
    assert abs(decoded_ms(master) - done["total_ms"]) <= 50
    assert abs(done["master_duration_ms"] - done["total_ms"]) <= 50
    cues = done["cue_sheet"]
    assert [c["label"] for c in cues] == ["intro", "Tin 1", "Tin 2", "outro"]
    gap = done["gap_ms"]
    for prev, nxt in itertools.pairwise(cues):
        assert abs(nxt["offset_ms"] - (prev["offset_ms"] + prev["duration_ms"] + gap)) <= 1
    # The same rundown again reuses the stored master.
    files = sorted((data_dir / "audio").rglob("*.mp3"))
    again = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=world["h"]["approver"])
    assert again.json()["master_sha256"] == done["master_sha256"]
    assert sorted((data_dir / "audio").rglob("*.mp3")) == files
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=world["h"]["viewer"]).json()
    assert got["status"] == "assembled"
    # The master's figures, in both answers, are what ffmpeg's ebur128 measures on it.
    loudness, peak = ebur128(master)
    assert loudness == pytest.approx(-16.0, abs=0.5) and peak <= -1.0
    figures = done["master"]
    assert figures["sha256"] == done["master_sha256"]
    assert figures["loudness_lufs"] == pytest.approx(loudness, abs=0.2)
    assert figures["true_peak_dbtp"] == pytest.approx(peak, abs=0.3)
    assert figures["loudness_range_lu"] >= 0 and figures["warnings"] == []
    # The listening copy is made after the answer that stored the master (null in it).
    assert figures["listen_url"] is None
    assert got["master"]["listen_url"].startswith("/api/v1/audio/")
    assert got["master"] == {**figures, "listen_url": got["master"]["listen_url"]}


def test_over_the_window_names_what_could_be_dropped(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    # The rule is data: shrink this station's window so the test audio can stay short.
    with unit_of_work() as session:
        session.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(min_duration_ms=20_000, max_duration_ms=30_000)
        )
    segs = [
        approved_segment(client, world, pink(tmp_path / f"s{n}.mp3", secs, seed=n), f"Tin {n}")
        for n, secs in ((1, 8), (2, 3), (3, 6))
    ]
    b = new_broadcast(client, world).json()
    view = client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [s["id"] for s in segs]},
        headers=world["h"]["approver"],
    ).json()
    assert view["total_ms"] > 30_000
    r = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=world["h"]["approver"])
    assert r.status_code == 422
    detail = r.json()["detail"]
    over = (view["total_ms"] - 30_000) / 1000
    assert f"{over:.1f} s over the 0 min 30.0 s maximum" in detail or f"{over:.1f} s over" in detail
    assert f"segment {segs[0]['id']}" in detail  # dropping the 8 s one fits


def test_cli_assemble_reports_the_shortfall_and_renders_when_it_fits(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    import os
    import sys

    with unit_of_work() as session:
        session.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(min_duration_ms=20_000, max_duration_ms=40_000)
        )
    seg = approved_segment(client, world, pink(tmp_path / "a.mp3", 2))
    b = new_broadcast(client, world).json()
    client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [seg["id"]]},
        headers=world["h"]["approver"],
    )

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "assemble", str(b["id"])],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )

    short = run()
    assert short.returncode == 1 and "short of the" in short.stderr
    longer = approved_segment(client, world, pink(tmp_path / "b.mp3", 8, seed=2), "Tin dài")
    client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown",
        json={"segment_ids": [seg["id"], longer["id"]]},
        headers=world["h"]["approver"],
    )
    done = run()
    assert done.returncode == 0, done.stderr
    assert "Tin dài" in done.stdout
    got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=world["h"]["viewer"]).json()
    assert got["status"] == "assembled" and got["master_sha256"] in done.stdout
