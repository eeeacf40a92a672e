"""Benchmark: plan a year, keep a rolling plan and publish one day's playlists for every
commune in Vietnam.

3 321 stations (communes after the 2025 reorganisation) with 20 villages each, on
PostgreSQL. Phase 1 plans 2024 (12 CCHC broadcasts per station + 52 weekly slots per
village: about 3.5 million broadcasts). Phase 2 is the scheduler's rolling plan with a
12-month horizon (2025): its first run, its daily run with nothing to do, the daily run
after one station's cadence changed, and a forced re-check of every station (what a run
costs when no plan state is kept). Phase 3 publishes one day's playlists for every device's
scope. Prints each phase's time and rows per second. Not a test.

    LOAXA_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python scripts/bench_schedule.py [--stations 3321] [--villages 20]

A scratch database is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=3321)
    parser.add_argument("--villages", type=int, default=20)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=2, help="connections that plan at once")
    args = parser.parse_args()

    import psycopg

    server = make_url(
        os.environ.get("LOAXA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    name = f"loaxa_bench_{uuid.uuid4().hex[:8]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(drivername="postgresql+psycopg", database=name)
    os.environ["LOAXA_DATABASE_URL"] = url.render_as_string(hide_password=False)
    os.environ["LOAXA_DATA_DIR"] = tempfile.mkdtemp(prefix="loaxa-bench-")
    os.environ.setdefault("LOAXA_SECRET_KEY", "bench-" + "x" * 40)
    try:
        run(args.stations, args.villages, args.year, args.workers)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(n_stations: int, n_villages: int, year: int, workers: int) -> None:
    from app import migrations
    from app.db import get_engine, unit_of_work
    from app.devices.models import Device
    from app.schedule.models import Broadcast
    from app.schedule.planning import plan_stations_parallel
    from app.stations.models import Network, Programme, Station, StationNetwork, Village
    from app.stations.service import DEFAULT_PROGRAMMES

    migrations.upgrade()
    engine = get_engine()
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = (
            conn.execute(
                insert(Station).returning(Station.id),
                [
                    {"name": f"Xã {i:04d}", "timezone": "Asia/Ho_Chi_Minh", "created_at": now}
                    for i in range(n_stations)
                ],
            )
            .scalars()
            .all()
        )
        # ip, as new stations are: every village cluster carries the commune's programmes.
        conn.execute(
            insert(StationNetwork),
            [
                {
                    "station_id": sid,
                    "effective_from": date.min,
                    "network": Network.ip.value,
                    "created_at": now,
                }
                for sid in ids
            ],
        )
        conn.execute(
            insert(Programme),
            [
                {**spec, "station_id": sid, "created_at": now}
                for sid in ids
                for spec in DEFAULT_PROGRAMMES
            ],
        )
        conn.execute(
            insert(Village),
            [
                {"station_id": sid, "name": f"Thôn {v + 1}", "created_at": now}
                for sid in ids
                for v in range(n_villages)
            ],
        )
        villages = conn.execute(select(Village.id, Village.station_id)).all()
        conn.execute(
            insert(Device),
            [
                {
                    "name": "PC",
                    "station_id": sid,
                    "village_id": None,
                    "token_hash": uuid.uuid4().hex + uuid.uuid4().hex,
                    "created_at": now,
                    "is_active": True,
                }
                for sid in ids
            ]
            + [
                {
                    "name": "PC",
                    "station_id": sid,
                    "village_id": vid,
                    "token_hash": uuid.uuid4().hex + uuid.uuid4().hex,
                    "created_at": now,
                    "is_active": True,
                }
                for vid, sid in villages
            ],
        )
    seed_s = time.perf_counter() - t0
    print(
        f"seed: {n_stations} stations, {len(villages)} villages, "
        f"{n_stations + len(villages)} devices in {seed_s:.1f} s"
    )

    t1 = time.perf_counter()
    result = plan_stations_parallel(list(ids), year=year, workers=workers)
    plan_s = time.perf_counter() - t1
    with unit_of_work(write=False) as session:
        total = session.scalar(select(func.count()).select_from(Broadcast)) or 0
    print(
        f"phase 1, plan {year}: {result.created} broadcasts in {plan_s:.1f} s "
        f"({result.created / plan_s:,.0f} rows/s); table holds {total}"
    )

    t2 = time.perf_counter()
    again = plan_stations_parallel(list(ids), year=year, workers=workers)
    replan_s = time.perf_counter() - t2
    print(
        f"re-plan (idempotent): {again.created} created, {again.existing} existing "
        f"in {replan_s:.1f} s"
    )

    rolling_s = rolling_phase(list(ids), workers)

    from sqlalchemy import update

    from app.playout.playlists import count_playlists, device_playlist
    from app.schedule.cadence import day_bounds_utc

    day = date(year, 3, 17)  # a Sunday: every village has its weekly slot
    lo, hi = day_bounds_utc(day, ZoneInfo("Asia/Ho_Chi_Minh"))
    with unit_of_work() as session:
        # What the fill job would have done by then: that day's broadcasts are assembled.
        ready = session.execute(
            update(Broadcast)
            .where(Broadcast.starts_at >= lo, Broadcast.starts_at < hi)
            .values(status="assembled", master_sha256="a" * 64, master_duration_ms=600_000)
        ).rowcount
        hashes = list(session.scalars(select(Device.token_hash)))
    t3 = time.perf_counter()
    with unit_of_work(write=False) as session:
        scopes = count_playlists(session, day=day, station_ids=list(ids))
    items = 0
    for token_hash in hashes:
        items += len(device_playlist(token_hash=token_hash, day=day).items)
    publish_s = time.perf_counter() - t3
    print(
        f"phase 3, publish {day}: {scopes} device playlists with items ({ready} broadcasts); "
        f"{len(hashes)} device playlists with {items} items built in {publish_s:.1f} s "
        f"({len(hashes) / publish_s:,.0f} playlists/s, {items / publish_s:,.0f} rows/s)"
    )
    goal = "met" if plan_s < 60 and publish_s < 60 else "NOT met"
    print(
        f"goal (plan and publish under 60 s on 2 cores): {goal} "
        f"(plan {plan_s:.1f} s, publish {publish_s:.1f} s)"
    )
    first_s, daily_s = rolling_s
    goal = "met" if first_s < 60 and daily_s < 10 else "NOT met"
    print(
        f"goal (rolling plan: first run under 60 s, daily run under 10 s): {goal} "
        f"(first {first_s:.1f} s, daily {daily_s:.2f} s)"
    )


def rolling_phase(ids: list[int], workers: int) -> tuple[float, float]:
    """The rolling plan of 2025 (12 months from 1 January), as the scheduler runs it."""
    from sqlalchemy import delete, update

    from app.db import unit_of_work
    from app.schedule.models import PlanState
    from app.schedule.rolling import roll
    from app.stations.models import Programme

    vn = ZoneInfo("Asia/Ho_Chi_Minh")
    now = datetime(2025, 1, 1, 0, 0, tzinfo=vn).astimezone(UTC)
    t = time.perf_counter()
    first = roll(now=now, months=12, workers=workers)
    first_s = time.perf_counter() - t
    print(
        f"phase 2, rolling plan, first run (2025-01..2025-12): {first.created} broadcasts "
        f"in {first_s:.1f} s ({first.created / first_s:,.0f} rows/s)"
    )
    t = time.perf_counter()
    daily = roll(now=now.replace(hour=18), months=12, workers=workers)
    daily_s = time.perf_counter() - t
    print(
        f"  daily run, nothing to do: {daily.created} created, {daily.cancelled} cancelled "
        f"in {daily_s:.2f} s"
    )
    with unit_of_work() as session:
        session.execute(
            update(Programme)
            .where(Programme.station_id == ids[0], Programme.code == "village-weekly")
            .values(cadence={"kind": "weekly", "weekdays": [2], "time": "06:30"})
        )
    t = time.perf_counter()
    changed = roll(now=now.replace(hour=19), months=12, workers=workers)
    print(
        f"  daily run after one station's cadence changed: {changed.created} created, "
        f"{changed.cancelled} cancelled in {time.perf_counter() - t:.2f} s"
    )
    with unit_of_work() as session:
        session.execute(delete(PlanState))
    t = time.perf_counter()
    forced = roll(now=now.replace(hour=20), months=12, workers=workers)
    print(
        f"  forced re-check of every station (no plan state): {forced.created} created, "
        f"{forced.existing} existing, {forced.cancelled} cancelled, {forced.moved} moved "
        f"in {time.perf_counter() - t:.1f} s"
    )
    return first_s, daily_s


if __name__ == "__main__":
    main()
