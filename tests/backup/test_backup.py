"""`loaxa backup` and `loaxa restore`, as real processes, on the suite's database (SQLite or
PostgreSQL): a restored service answers exactly as the original did; a truncated or altered
archive, or a database that is not empty, is refused and nothing changes."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from app.db import make_engine
from tests.faults.procs import env_with, run_loaxa, serving
from tests.helpers import PASSWORD, make_station, staff
from tests.playout.helpers import approved_segment, broadcast, device, pink, short_windows

PUBLIC = "http://loaxa.test"  # the same absolute URLs from both servers


def _world(client: TestClient, tmp_path: Path) -> dict[str, Any]:
    """A station with segments, an assembled broadcast, a device and what it played."""
    ids = make_station(villages=2)
    h = staff(client, ids["station_id"])
    short_windows()
    segs = [
        approved_segment(client, h, pink(tmp_path / f"s{n}.mp3", 2 + n, seed=n), title=f"Tin {n}")
        for n in (1, 2)
    ]
    b = broadcast(
        client,
        h,
        station_id=ids["station_id"],
        starts_at="2024-03-16T17:00:00+07:00",
        segment_ids=[s["id"] for s in segs],
    )
    pc = device(client, h["admin"], ids["station_id"])
    playlist = client.get("/api/v1/playout/playlist?date=2024-03-16", headers=pc["h"]).json()
    [item] = playlist["items"]
    r = client.post(
        "/api/v1/playout/as-run",
        json=[
            {
                "event_id": "ev-1",
                "broadcast_id": b["id"],
                "sha256": item["sha256"],
                "started_at": item["starts_at"],
                "ended_at": item["ends_at"],
                "status": "played",
            }
        ],
        headers=pc["h"],
    )
    assert r.status_code == 200 and r.json()["accepted"] == ["ev-1"], r.text
    return {
        "station_id": ids["station_id"],
        "village_ids": ids["village_ids"],
        "segments": [s["id"] for s in segs],
        "audio": [s["audio_sha256"] for s in segs] + [b["master_sha256"]],
        "broadcast_id": b["id"],
        "device": pc["h"],
    }


def _answers(base: str, world: dict[str, Any]) -> dict[str, Any]:
    """What the API answers, as the people and devices who use it would ask."""

    def token(username: str) -> dict[str, str]:
        r = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    admin, approver, viewer = token("admin1"), token("approver1"), token("viewer1")
    sid, bid = world["station_id"], world["broadcast_id"]
    asks: list[tuple[str, dict[str, str]]] = [
        ("/api/v1/stations", admin),
        (f"/api/v1/stations/{sid}", admin),
        (f"/api/v1/stations/{sid}/villages", admin),
        (f"/api/v1/stations/{sid}/programmes", admin),
        ("/api/v1/devices", admin),
        ("/api/v1/users/me", approver),
        ("/api/v1/segments", approver),
        *((f"/api/v1/segments/{s}", approver) for s in world["segments"]),
        ("/api/v1/broadcasts?programme=cchc&year=2024", approver),
        (f"/api/v1/broadcasts/{bid}", approver),
        (f"/api/v1/broadcasts/{bid}/rundown", approver),
        ("/api/v1/warnings", approver),
        ("/api/v1/audit?entity=segment", admin),
        (f"/api/v1/reports/compliance?station_id={sid}&year=2024&format=json", viewer),
        ("/api/v1/playout/playlist?date=2024-03-16", world["device"]),
        *((f"/api/v1/audio/{sha}", approver) for sha in world["audio"]),
        (f"/api/v1/audio/{world['audio'][-1]}", world["device"]),
    ]
    answers = {}
    for path, headers in asks:
        r = httpx.get(f"{base}{path}", headers=headers, timeout=30)
        body: Any = r.json() if "json" in r.headers.get("content-type", "") else r.content
        if isinstance(body, dict):
            body.pop("generated_at", None)  # when the report was made: now, not then
        if path == "/api/v1/warnings":
            # The "scheduler not running" warning is computed at each request (id 0, dated
            # now): no scheduler runs in this test, before or after; the stored ones compare.
            body["items"] = [w for w in body["items"] if w["id"] != 0]
        if path == "/api/v1/devices":
            for pc in body:  # telemetry: the device's polls in this very test move it on
                for key in ("last_seen_at", "last_playlist_at", "online"):
                    pc.pop(key)
        answers[path] = (r.status_code, r.headers.get("etag"), body)
        assert r.status_code == 200, (path, r.text)
    return answers


def _empty(url: str, data_dir: Path) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                if table != "alembic_version" and conn.execute(
                    text(f'SELECT 1 FROM "{table}" LIMIT 1')
                ).first():
                    return False
    finally:
        engine.dispose()
    return not [p for p in (data_dir / "audio").rglob("*") if p.is_file()]


def _altered(archive: Path, out: Path) -> Path:
    """The same archive with one byte of one audio member changed (gzip and tar intact)."""
    buf = io.BytesIO()
    with tarfile.open(archive, "r:gz") as src, tarfile.open(fileobj=buf, mode="w:gz") as dst:
        changed = False
        for info in src:
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name.startswith("audio/") and not changed:
                data = data[:-1] + bytes([data[-1] ^ 1])
                changed = True
            dst.addfile(info, io.BytesIO(data))
    out.write_bytes(buf.getvalue())
    return out


@pytest.mark.slow
def test_backup_restores_a_service_that_answers_the_same(
    client: TestClient, database_url: str, scratch_url: str, data_dir: Path, tmp_path: Path
) -> None:
    world = _world(client, tmp_path)
    env = env_with(LOAXA_PUBLIC_BASE_URL=PUBLIC)
    with serving(tmp_path / "before.log", env=env) as srv:
        before = _answers(srv.url, world)

    archive = tmp_path / "loaxa-backup.tar.gz"
    made = run_loaxa("backup", "-o", str(archive), env=env)
    assert made.returncode == 0, made.stderr
    assert "audio files" in made.stdout
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
    assert names[-1] == "manifest.json"
    assert {f"{sha[:2]}/{sha}" for sha in world["audio"]} <= {
        n.removeprefix("audio/").rsplit(".", 1)[0] for n in names
    }

    new_dir = tmp_path / "restored"
    target = env_with(
        LOAXA_PUBLIC_BASE_URL=PUBLIC, LOAXA_DATABASE_URL=scratch_url, LOAXA_DATA_DIR=str(new_dir)
    )
    # Refused, and nothing changed: a truncated archive, an altered one.
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    altered = _altered(archive, tmp_path / "altered.tar.gz")
    not_gzip = tmp_path / "not.tar.gz"
    not_gzip.write_bytes(gzip.decompress(archive.read_bytes())[:4096])
    for bad, message in (
        (truncated, "truncated or damaged"),
        (altered, "does not match its manifest"),
        (not_gzip, "truncated or damaged"),
    ):
        r = run_loaxa("restore", str(bad), env=target)
        assert r.returncode == 1, (bad, r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert _empty(scratch_url, new_dir)

    restored = run_loaxa("restore", str(archive), env=target)
    assert restored.returncode == 0, restored.stderr
    with serving(tmp_path / "after.log", env=target) as srv:
        after = _answers(srv.url, world)
    assert after.keys() == before.keys()
    for path in before:
        assert after[path] == before[path], path

    # A database that is not empty is only replaced when asked to.
    again = run_loaxa("restore", str(archive), env=target)
    assert again.returncode == 1 and "not empty" in again.stderr and "--force" in again.stderr
    forced = run_loaxa("restore", "--force", str(archive), env=target)
    assert forced.returncode == 0, forced.stderr


@pytest.mark.skipif(
    not os.environ.get("LOAXA_TEST_DATABASE_URL"), reason="a PostgreSQL archive to misplace"
)
def test_restore_refuses_an_archive_of_the_other_database(
    database_url: str, tmp_path: Path
) -> None:
    archive = tmp_path / "b.tar.gz"
    assert run_loaxa("backup", "-o", str(archive)).returncode == 0
    sqlite = env_with(
        LOAXA_DATABASE_URL=f"sqlite:///{tmp_path / 'other.db'}", LOAXA_DATA_DIR=str(tmp_path)
    )
    r = run_loaxa("restore", str(archive), env=sqlite)
    assert r.returncode == 1 and "restore it into a postgresql database" in r.stderr
