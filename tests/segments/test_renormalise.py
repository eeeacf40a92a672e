"""`loaxa audio renormalise`: stored audio brought to the current standard, once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.audio.models import AudioAsset
from app.audio.service import current_standard
from app.audit.models import AuditEvent
from app.db import unit_of_work
from app.schedule.models import Broadcast
from app.segments.models import Segment
from app.stations.models import Programme
from tests.helpers import make_station, staff
from tests.schedule.test_broadcasts_api import approved_segment, new_broadcast, pink


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


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


def renormalise() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "audio", "renormalise"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )


def _assembled(client: TestClient, world: dict, starts_at: str, segment_ids: list[int]) -> int:
    b = new_broadcast(client, world, starts_at).json()
    approver = world["h"]["approver"]
    client.put(
        f"/api/v1/broadcasts/{b['id']}/rundown", json={"segment_ids": segment_ids}, headers=approver
    )
    r = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=approver)
    assert r.status_code == 200, r.text
    return int(b["id"])


def test_renormalise_makes_old_audio_again_from_originals_once(
    client: TestClient, world: dict, tmp_path: Path, data_dir: Path
) -> None:
    with unit_of_work() as session:  # the rule is data: a short window keeps the audio short
        session.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(min_duration_ms=20_000, max_duration_ms=60_000)
        )
    upload = approved_segment(client, world, pink(tmp_path / "a.mp3", 8, seed=1), "Tin A")
    legacy = approved_segment(client, world, pink(tmp_path / "b.mp3", 8, seed=2), "Tin B")
    aired = _assembled(client, world, "2030-03-16T17:00:00+07:00", [upload["id"], legacy["id"]])
    future = _assembled(client, world, "2031-03-16T17:00:00+07:00", [upload["id"], legacy["id"]])
    # As migration 0005 leaves files stored before: no true peak, no standard. The second
    # one is like a TTS draft of that time: its synthesis was not kept.
    with unit_of_work() as session:
        session.execute(
            update(AudioAsset)
            .where(AudioAsset.sha256.in_([upload["audio_sha256"], legacy["audio_sha256"]]))
            .values(standard_key=None, true_peak_dbtp=None, loudness_range_lu=None)
        )
        session.execute(
            update(AudioAsset)
            .where(AudioAsset.sha256 == legacy["audio_sha256"])
            .values(source_sha256=None)
        )
        session.execute(update(Broadcast).where(Broadcast.id == aired).values(status="aired"))
    viewer = world["h"]["viewer"]
    before = {
        b: client.get(f"/api/v1/broadcasts/{b}", headers=viewer).json()["master_sha256"]
        for b in (aired, future)
    }
    stale = client.get(f"/api/v1/segments/{legacy['id']}", headers=viewer).json()
    assert stale["true_peak_dbtp"] is None
    assert any("never measured" in w for w in stale["audio_warnings"])

    first = renormalise()
    assert first.returncode == 0, first.stderr
    assert "2 with audio, 0 already at the standard, 2 made again (1 from the playout" in (
        first.stdout
    )
    assert "masters still to air: 1, 1 rendered again" in first.stdout

    for seg in (upload, legacy):
        got = client.get(f"/api/v1/segments/{seg['id']}", headers=viewer).json()
        assert got["status"] == "approved"
        if seg is upload:  # made again from its original: the same bytes, now measured
            assert got["audio_sha256"] == seg["audio_sha256"]
            assert got["version"] == seg["version"]
        else:  # made again from its playout file: a new file, the segment re-pointed
            assert got["audio_sha256"] != seg["audio_sha256"]
            assert got["version"] == seg["version"] + 1
        assert got["audio_warnings"] == []
        stored = data_dir / "audio" / got["audio_sha256"][:2] / f"{got['audio_sha256']}.mp3"
        loudness, peak = ebur128(stored)
        assert loudness == pytest.approx(-16.0, abs=0.5) and peak <= -1.0
        assert got["true_peak_dbtp"] == pytest.approx(peak, abs=0.3)
    with unit_of_work(write=False) as session:
        new_legacy = session.scalar(
            select(AudioAsset).join(Segment, Segment.audio_id == AudioAsset.id).where(
                Segment.id == legacy["id"]
            )
        )
        assert new_legacy is not None and new_legacy.standard_key == current_standard()
        assert new_legacy.sha256 != legacy["audio_sha256"]
        assert new_legacy.source_sha256 == legacy["audio_sha256"]  # the old file, kept
        audited = session.scalar(
            select(func.count()).where(AuditEvent.action == "segment.renormalise")
        )
        assert audited == 1
    after = {
        b: client.get(f"/api/v1/broadcasts/{b}", headers=viewer).json() for b in (aired, future)
    }
    assert after[aired]["master_sha256"] == before[aired]  # what was played stays
    assert after[future]["master_sha256"] != before[future]
    assert after[future]["master"]["warnings"] == []

    second = renormalise()
    assert second.returncode == 0, second.stderr
    assert "2 with audio, 2 already at the standard, 0 made again" in second.stdout
    assert "masters still to air: 1, 0 rendered again, 1 already current" in second.stdout
    assert "envelopes measured for 0" in second.stdout  # kept when the audio was made again

    # Audio stored before envelopes were kept (or kept for a standard since changed) gets
    # them from the next run, without being made again.
    for path in (data_dir / "audio").rglob("*.env"):  # the segments' and the templates'
        path.unlink()
    third = renormalise()
    assert third.returncode == 0, third.stderr
    assert "2 already at the standard, 0 made again" in third.stdout
    assert "envelopes measured for 2" in third.stdout
    assert len(list((data_dir / "audio").rglob("*.env"))) == 2
