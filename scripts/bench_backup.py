"""Benchmark: the backup round trip for the demo commune (not a test).

Loads Xuân Phúc (`loaxa seed-demo`), plans 2024, and gives it a year of history: every
month's CCHC column filled with --segments approved segments of --seconds of audio each
(pink noise, each its own recording, through the real upload pipeline) and assembled.
Then times `loaxa backup -o FILE` and `loaxa restore FILE` (into an empty database and
data directory) as the cold processes an operator runs, and checks that the restored
database holds the same rows and the store the same files.

    .venv/bin/python scripts/bench_backup.py                       # SQLite
    LOAXA_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python scripts/bench_backup.py                   # PostgreSQL

On PostgreSQL two scratch databases are created on that server; they, and the scratch
directory, are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def scratch_database(server: str | None, where: Path) -> tuple[str, str | None]:
    """A new empty database: a SQLite file, or a database on the PostgreSQL server."""
    if not server:
        return f"sqlite:///{where / 'loaxa.db'}", None
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server)
    name = f"loaxa_bench_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def drop_database(server: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pink(path: Path, seconds: float, seed: int) -> Path:
    spec = f"anoisesrc=c=pink:a=0.05:r=44100:d={seconds}:seed={seed}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", spec,
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_history(segments: int, seconds: float, scratch: Path) -> None:
    """The demo commune with a year of assembled CCHC columns."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from app import migrations
    from app.accounts import service as accounts
    from app.accounts.models import Role
    from app.db import unit_of_work
    from app.demo import seed_demo
    from app.main import create_app
    from app.schedule.models import Broadcast
    from app.schedule.planning import plan_year
    from app.stations.models import Programme

    migrations.upgrade()
    with unit_of_work() as session:
        station_id = seed_demo(session).station_id
        for name, role in (("bientap", Role.editor), ("vanphong", Role.approver)):
            accounts.create_user(
                session, username=name, password="bench-password", role=role, station_id=station_id
            )
        plan_year(session, station_id=station_id, year=2024)
    with unit_of_work(write=False) as session:
        columns = session.execute(
            select(Broadcast.id, Broadcast.starts_at)
            .join(Programme, Programme.id == Broadcast.programme_id)
            .where(Broadcast.station_id == station_id, Programme.code == "cchc")
            .order_by(Broadcast.starts_at)
        ).all()
    with TestClient(create_app()) as client:

        def token(name: str) -> dict[str, str]:
            r = client.post(
                "/api/v1/auth/token", data={"username": name, "password": "bench-password"}
            )
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        editor, approver = token("bientap"), token("vanphong")
        for month, (broadcast_id, _) in enumerate(columns, start=1):
            ids = []
            for n in range(segments):
                seg = client.post(
                    "/api/v1/segments",
                    json={
                        "title": f"CCHC tháng {month}, tin {n + 1}",
                        "programme": "cchc",
                        "topic": "progress",
                        "target_month": f"2024-{month:02d}",
                    },
                    headers=editor,
                ).json()
                audio = pink(scratch / "seg.mp3", seconds, seed=month * 100 + n)
                with audio.open("rb") as fh:
                    r = client.put(
                        f"/api/v1/segments/{seg['id']}/audio",
                        files={"file": ("seg.mp3", fh)},
                        headers=editor,
                    )
                assert r.status_code == 200, r.text
                client.post(f"/api/v1/segments/{seg['id']}/submit", headers=editor)
                client.post(f"/api/v1/segments/{seg['id']}/approve", headers=approver)
                ids.append(seg["id"])
            r = client.put(
                f"/api/v1/broadcasts/{broadcast_id}/rundown",
                json={"segment_ids": ids},
                headers=approver,
            )
            assert r.status_code == 200, r.text
            r = client.post(f"/api/v1/broadcasts/{broadcast_id}/assemble", headers=approver)
            assert r.status_code == 200, r.text
            print(f"  month {month:2d}: broadcast {broadcast_id} assembled", flush=True)


def counts(url: str) -> dict[str, int]:
    from sqlalchemy import inspect, text

    from app.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                for t in sorted(inspect(conn).get_table_names())
                if t != "alembic_version"
            }
    finally:
        engine.dispose()


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[3:]} failed:\n{done.stderr}")
    print("  " + done.stdout.strip().replace("\n", "\n  "))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=2, help="segments per monthly column")
    parser.add_argument("--seconds", type=float, default=330, help="audio per segment")
    args = parser.parse_args()
    server = os.environ.get("LOAXA_BENCH_DATABASE_URL")
    work = Path(tempfile.mkdtemp(prefix="loaxa-bench-backup-"))
    source_dir, target_dir = work / "source", work / "target"
    source_dir.mkdir()
    target_dir.mkdir()
    source_url, source_name = scratch_database(server, source_dir)
    target_url, target_name = scratch_database(server, target_dir)
    os.environ.update(
        LOAXA_DATABASE_URL=source_url, LOAXA_DATA_DIR=str(source_dir), LOAXA_ADMIN_PASSWORD="x" * 16
    )
    os.environ.pop("LOAXA_SECRET_KEY", None)  # the generated key goes into the archive
    try:
        print(f"database: {'PostgreSQL' if server else 'SQLite'}; making a year of history")
        t0 = time.perf_counter()
        make_history(args.segments, args.seconds, work)
        print(f"history made in {time.perf_counter() - t0:.0f} s")
        from app.config import get_settings

        get_settings().signing_key()  # as the first sign-in would
        from app.db import get_engine

        get_engine().dispose()

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        loaxa = [sys.executable, "-m", "app.cli"]
        archive = work / "loaxa-backup.tar.gz"
        backup_s = timed([*loaxa, "backup", "-o", str(archive)], env)
        target_env = {**env, "LOAXA_DATABASE_URL": target_url, "LOAXA_DATA_DIR": str(target_dir)}
        restore_s = timed([*loaxa, "restore", str(archive)], target_env)

        before, after = counts(source_url), counts(target_url)
        assert before == after, (before, after)
        stored = sorted(p.name for p in (source_dir / "audio").rglob("*.*"))
        restored = sorted(p.name for p in (target_dir / "audio").rglob("*.*"))
        assert stored == restored
        audio_mb = sum(p.stat().st_size for p in (source_dir / "audio").rglob("*.*")) / 1e6
        print(
            f"\nrows {sum(before.values())} in {len(before)} tables "
            f"({before['broadcasts']} broadcasts, {before['segments']} segments, "
            f"{before['audit_events']} audit events); {len(stored)} audio files, {audio_mb:.1f} MB"
        )
        print(f"archive {archive.stat().st_size / 1e6:.1f} MB")
        print(f"backup  {backup_s:.1f} s (whole process)")
        print(f"restore {restore_s:.1f} s (whole process, checks and migration included)")
        print("restored: the same rows in every table, the same audio files")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if server:
            from app.db import get_engine

            get_engine().dispose()
            for name in (source_name, target_name):
                if name:
                    drop_database(server, name)


if __name__ == "__main__":
    main()
