"""Console pages: render time (median and 95th percentile) and weight (HTML + CSS + JS).

    python scripts/bench_console.py [--runs 200] [--segments 300] [--sample-history]

Builds a throwaway data directory (SQLite), loads the demo commune with a planned year
and `--segments` segments, signs in as an approver, and requests each page `--runs` times
in process (the app, its database and templates; no network). The budget is 150 ms at the
95th percentile and 100 KB per page, audio aside. `--sample-history` adds the lived-in
demo (`seed-demo --sample-history`: as-run history, this month assembled) first.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-password-long-enough"


def seed(segments: int, sample_history: bool) -> int:
    """The demo station, users, this year's plan and `segments` segments; a segment id."""
    from sqlalchemy import select

    from app import clock, migrations
    from app.accounts import service as accounts
    from app.accounts.models import Role, User
    from app.config import get_settings
    from app.db import unit_of_work
    from app.demo import seed_demo
    from app.schedule.planning import plan_year
    from app.segments import service as segment_service

    migrations.upgrade(get_settings().sqlalchemy_url)
    with unit_of_work() as db:
        station_id = seed_demo(db).station_id
        accounts.create_user(
            db, username="editor1", password=PASSWORD, role=Role.editor, station_id=station_id
        )
        accounts.create_user(
            db, username="approver1", password=PASSWORD, role=Role.approver, station_id=station_id
        )
        plan_year(db, station_id=station_id, year=clock.now().year)
    last = 0
    if sample_history:
        from app.demo import seed_sample_history

        seed_sample_history(station_id)
    with unit_of_work() as db:
        editor = db.scalars(select(User).where(User.username == "editor1")).one()
        for n in range(segments):
            segment = segment_service.create_segment(
                db,
                user=editor,
                title=f"Tin bài số {n}: kết quả cải cách hành chính",
                programme="cchc",
                topic="progress",
                target_month=f"2024-{n % 12 + 1:02d}",
                script="Kính thưa bà con, Ủy ban nhân dân xã thông báo lịch tiếp công dân.",
            )
            if n % 3 == 0:
                segment_service.submit_segment(db, user=editor, segment=segment)
            last = segment.id
    return last


def cchc_column() -> tuple[str, int]:
    """This month ("2024-03") and its CCHC broadcast's id."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from app import clock
    from app.db import unit_of_work
    from app.schedule.models import Broadcast
    from app.stations.models import Programme, Station

    with unit_of_work(write=False) as db:
        station = db.scalars(select(Station)).one()
        month = clock.now().astimezone(ZoneInfo(station.timezone)).strftime("%Y-%m")
        column = db.scalars(
            select(Broadcast.id)
            .join(Programme, Programme.id == Broadcast.programme_id)
            .where(Programme.code == "cchc", Broadcast.local_month == month)
        ).one()
    return month, column


def seed_ops() -> int:
    """For Thiết bị, Phát khẩn cấp, Quản trị: an admin, 40 devices (half online), and an
    emergency on air that 30 of them picked up; the emergency's id."""
    from datetime import timedelta

    from sqlalchemy import select

    from app import clock
    from app.accounts import service as accounts
    from app.accounts.models import Role
    from app.db import unit_of_work
    from app.devices import service as devices
    from app.playout.models import Emergency, EmergencyDelivery
    from app.segments.models import Segment
    from app.stations.models import Station, Village

    now = clock.now()
    with unit_of_work() as db:
        station_id = db.scalars(select(Station.id).order_by(Station.id)).first()
        assert station_id is not None
        accounts.create_user(db, username="admin1", password=PASSWORD, role=Role.admin)
        villages = list(db.scalars(select(Village.id).where(Village.station_id == station_id)))
        made = []
        for n in range(40):
            device, _token = devices.create_device(
                db,
                name=f"Máy phát {n}",
                station_id=station_id,
                village_id=villages[n % len(villages)] if villages and n else None,
            )
            device.last_seen_at = now - timedelta(minutes=1 if n % 2 else 60)
            device.agent_version, device.free_disk_bytes = "1.4.2", 12 * 1024**3
            made.append(device)
        segment_id = db.scalars(select(Segment.id).limit(1)).one()
        # A made-up audio hash: the pages read it, nothing plays it.
        emergency = Emergency(
            station_id=station_id,
            segment_id=segment_id,
            audio_sha256="0" * 64,
            duration_ms=90_000,
            created_at=now,
            expires_at=now + timedelta(minutes=30),
        )
        db.add(emergency)
        db.flush()
        for device in made[:30]:
            db.add(
                EmergencyDelivery(emergency_id=emergency.id, device_id=device.id, picked_up_at=now)
            )
        return emergency.id


def sign_in(client: object, username: str) -> None:
    token = re.search(r'name="csrf_token" value="(\w+)"', client.get("/").text)  # type: ignore[attr-defined]
    assert token
    client.post(  # type: ignore[attr-defined]
        "/signin",
        data={
            "csrf_token": token.group(1),
            "username": username,
            "password": PASSWORD,
            "next": "/",
        },
    )


def measure(client: object, path: str, runs: int) -> None:
    client.get(path)  # type: ignore[attr-defined]  # warm the templates
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = client.get(path)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', r.text)
    weight = len(r.content) + sum(len(client.get(a).content) for a in assets)  # type: ignore[attr-defined]
    p95 = statistics.quantiles(times, n=20)[-1]
    print(f"{path:34} {statistics.median(times):9.1f} {p95:7.1f} {weight / 1024:6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--segments", type=int, default=300)
    parser.add_argument("--sample-history", action="store_true")
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="loaxa-bench-console-")
    for key in [k for k in os.environ if k.startswith("LOAXA_")]:
        del os.environ[key]
    os.environ.update(LOAXA_DATA_DIR=data, LOAXA_SECRET_KEY="bench-" + "x" * 40)
    segment_id = seed(args.segments, args.sample_history)
    emergency_id = seed_ops()

    from fastapi.testclient import TestClient

    from app.main import create_app

    this_month, column_id = cchc_column()
    client = TestClient(create_app())
    sign_in(client, "approver1")
    pages = [
        "/",
        "/segments",
        "/segments?status=submitted",
        "/segments/new",
        f"/segments/{segment_id}",
        "/schedule",
        f"/schedule?month={this_month}",
        f"/schedule/{column_id}",
        "/reports",
        f"/reports?month={int(this_month[5:])}",
        "/devices",
        "/emergency",
        f"/emergency/{emergency_id}",
    ]
    print(f"{'page':34} {'median ms':>9} {'p95 ms':>7} {'KB':>6}")
    for path in pages:
        measure(client, path, args.runs)
    admin = TestClient(create_app())
    sign_in(admin, "admin1")
    for path in ("/admin", "/admin/station"):
        measure(admin, path, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
