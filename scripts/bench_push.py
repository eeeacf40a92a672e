"""Benchmark push (issue 25): an emergency for every station, through loaxa's broker, to every
device at once; and the poll load with push connected against today's polling (not a test).

Goal: 18 000 devices (900 stations x 20: the station PC and 19 villages) connected to the
broker on this machine; a station-wide emergency POSTed for each of the 900 stations; from
each POST to the receipt of its message by each of the station's devices: p99 under 1 s for
all 18 000; and the poll load with push connected at least 10 times lower than today's.

What it does (a few minutes in all):
  1. a scratch PostgreSQL database (LOAXA_BENCH_DATABASE_URL, default
     postgresql://postgres@127.0.0.1:5432/test), migrated and seeded like bench_playout.py
     (stations, villages, one device per scope), plus an approved segment with audio per
     station and an approver;
  2. loaxa's broker configuration (app.push.broker: dynamic security, no anonymous clients)
     with one login and role per device, written into the plugin's file before the broker
     starts (making 18 000 logins through the plugin's control topic costs far more: the
     plugin rewrites its whole file after every command; the figure is printed for a
     sample), and Mosquitto started on a free port;
  3. the real API (uvicorn, 2 workers, each with its publisher) on a free port, pointed at
     that broker with LOAXA_MQTT_URL;
  4. the devices: --processes processes (at least two; a process may hold at most 20 000
     open files here), each an asyncio loop of minimal MQTT 3.1.1 clients on raw sockets
     (CONNECT as device-<id> with its token, SUBSCRIBE to its topics, PUBACK what arrives):
     what is measured is the broker and loaxa, not a client library;
  5. once all are subscribed, one approver POSTs /api/v1/emergencies for every station
     (--concurrency requests in flight); each POST's start time is kept, and each device
     its message's arrival; the machine's one clock serves both;
  6. the poll load: the real agent's ServerSync (app.playout.agent.sync) runs against a
     counting client on a simulated clock for a day, connected to push and not, and
     its requests per second times the number of devices are compared;
  7. prints the figures and the goals, met or not; stops everything, drops the database.

Usage: .venv/bin/python scripts/bench_push.py [--stations 900] [--villages 19]
       [--processes 4] [--concurrency 8]
Exit status 0 when every goal was met.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_playout import (  # noqa: E402
    DEFAULT_URL,
    create_database,
    drop_database,
    free_port,
    seed,
    start_server,
    stop,
)

GOAL_P99_S = 1.0
GOAL_RATIO = 10.0
RECEIPT_WAIT_S = 30.0
FOLLOW_WAIT_S = 180.0


# --- the devices: minimal MQTT 3.1.1 clients -----------------------------------------------


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, body: bytes) -> bytes:
    length, out = len(body), bytearray([kind])
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out) + body


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return head, await reader.readexactly(length)


async def _device(
    port: int,
    index: int,
    username: str,
    password: str,
    topics: list[str],
    received: dict[int, float],
    subscribed: asyncio.Event,
    counts: dict[str, int],
    gate: asyncio.Semaphore,
    alert: str,
    follow: tuple[int, asyncio.Semaphore, dict[int, float]] | None,
    polls: set[asyncio.Task[None]],
) -> None:
    async with gate:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["refused"] += 1
            return
        connect = b"\x00\x04MQTT\x04\xc2" + struct.pack("!H", 600)
        connect += _string(f"{username}-b") + _string(username) + _string(password)
        writer.write(_packet(0x10, connect))
        head, body = await _read_packet(reader)
        if head != 0x20 or body[1] != 0:
            counts["refused"] += 1
            writer.close()
            return
        payload = b"".join(_string(t) + b"\x01" for t in topics)
        writer.write(_packet(0x82, struct.pack("!H", 1) + payload))
        head, body = await _read_packet(reader)
        if head != 0x90 or any(code == 0x80 for code in body[2:]):
            counts["suback-refused"] += 1
        counts["subscribed"] += 1
        if counts["subscribed"] == counts["wanted"]:
            subscribed.set()
    try:
        while True:
            head, body = await _read_packet(reader)
            if head >> 4 != 3:
                continue
            arrived = time.time()
            qos = (head >> 1) & 3
            tlen = struct.unpack("!H", body[:2])[0]
            topic = body[2 : 2 + tlen].decode()
            if qos:
                pid = body[2 + tlen : 4 + tlen]
                writer.write(_packet(0x40, pid))
            if topic == alert and index not in received:
                received[index] = arrived
                if follow is not None:
                    polls.add(
                        asyncio.get_running_loop().create_task(_poll(follow, index, password))
                    )
    except (asyncio.IncompleteReadError, ConnectionError):
        counts["dropped"] += 1


async def _poll(
    follow: tuple[int, asyncio.Semaphore, dict[int, float]], index: int, token: str
) -> None:
    """What the agent does on the message: GET its emergencies (a new connection, as from
    another PC); when the answer is in."""
    api_port, gate, fetched = follow
    async with gate:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", api_port)
            writer.write(
                f"GET /api/v1/playout/emergencies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
            )
            answer = await reader.read()
            writer.close()
        except OSError:
            return
    if answer.startswith(b"HTTP/1.1 200"):
        fetched[index] = time.time()


async def _devices_main(
    port: int,
    devices: list[dict[str, Any]],
    conn: Any,
    connect_concurrency: int,
    api_port: int | None,
) -> None:
    received: dict[int, float] = {}
    fetched: dict[int, float] = {}
    follow = None if api_port is None else (api_port, asyncio.Semaphore(64), fetched)
    polls: set[asyncio.Task[None]] = set()
    subscribed = asyncio.Event()
    counts = {"wanted": len(devices), "subscribed": 0, "refused": 0, "suback-refused": 0}
    counts["dropped"] = 0
    gate = asyncio.Semaphore(connect_concurrency)
    started = time.monotonic()
    tasks = [
        asyncio.create_task(
            _device(
                port,
                d["index"],
                d["username"],
                d["token"],
                d["topics"],
                received,
                subscribed,
                counts,
                gate,
                d["topics"][0],
                follow,
                polls,
            )
        )
        for d in devices
    ]
    loop = asyncio.get_running_loop()
    while not subscribed.is_set() and time.monotonic() - started < 300:
        if counts["subscribed"] + counts["refused"] >= len(devices):
            break
        await asyncio.sleep(0.2)
    conn.send({"ready": dict(counts), "connect_s": time.monotonic() - started})
    # Wait for the parent's word that the emergencies were posted, then for the messages.
    await loop.run_in_executor(None, conn.recv)
    deadline = time.monotonic() + (RECEIPT_WAIT_S if follow is None else FOLLOW_WAIT_S)
    while time.monotonic() < deadline and (
        len(received) < counts["subscribed"]
        or (follow is not None and len(fetched) < len(received))
    ):
        await asyncio.sleep(0.1)
    conn.send({"received": received, "fetched": fetched, "counts": dict(counts)})
    for task in [*tasks, *polls]:
        task.cancel()
    await asyncio.gather(*tasks, *polls, return_exceptions=True)


def devices_process(
    port: int,
    devices: list[dict[str, Any]],
    conn: Any,
    connect_concurrency: int,
    api_port: int | None,
) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_devices_main(port, devices, conn, connect_concurrency, api_port))


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# --- setup ---------------------------------------------------------------------------------


def seed_push(url: str, stations: int) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Segments (approved, with audio) per station, an approver; each device's row."""
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from app.accounts.models import Role
    from app.accounts.service import create_user
    from app.audio.models import AudioAsset
    from app.db import make_engine
    from app.devices.models import Device
    from app.segments.models import Segment, SegmentStatus
    from app.stations.models import Programme

    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    now = datetime.now(UTC)
    with Session(engine) as session:
        asset_id = session.scalar(select(AudioAsset.id))
        programmes = dict(
            session.execute(
                select(Programme.station_id, Programme.id).where(Programme.code == "cchc")
            ).all()
        )
        session.execute(
            insert(Segment),
            [
                {
                    "station_id": s,
                    "programme_id": programmes[s],
                    "title": f"Khẩn cấp {s}",
                    "topic": "other",
                    "search_text": "",
                    "status": SegmentStatus.approved.value,
                    "audio_id": asset_id,
                    "created_at": now,
                    "updated_at": now,
                    "approved_at": now,
                    "version": 1,
                }
                for s in range(1, stations + 1)
            ],
        )
        create_user(session, username="bench-admin", password="bench-password-1", role=Role.admin)
        session.commit()
        segments = dict(session.execute(select(Segment.station_id, Segment.id)).all())
        rows = [
            {"id": i, "station_id": s, "village_id": v}
            for i, s, v in session.execute(
                select(Device.id, Device.station_id, Device.village_id).order_by(Device.id)
            )
        ]
    engine.dispose()
    return rows, segments


def write_logins(folder: Path, password: str, devices: list[dict[str, Any]]) -> None:
    """The plugin's file with loaxa's admin and one login and role per device."""
    from app.push import broker as broker_module
    from app.push import topics

    doc = broker_module.dynsec_document(password)
    for d in devices:
        name = d["username"]
        doc["clients"].append(
            {
                "username": name,
                "roles": [{"rolename": name}],
                **broker_module.password_fields(d["token"]),
            }
        )
        doc["roles"].append(
            {
                "rolename": name,
                "acls": [
                    {"acltype": "subscribeLiteral", "topic": t, "priority": 0, "allow": True}
                    for t in topics.device_topics(d["station_id"], d["village_id"], d["id"])
                ],
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dynamic-security.json").write_text(json.dumps(doc))


def record_logins(url: str, devices: list[dict[str, Any]]) -> None:
    """loaxa's record of the logins (so the API does not make them again)."""
    from sqlalchemy import insert

    from app.accounts.security import hash_device_token
    from app.db import make_engine
    from app.push.models import PushLogin

    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(
            insert(PushLogin),
            [
                {
                    "device_id": d["id"],
                    "token_hash": hash_device_token(d["token"]),
                    "station_id": d["station_id"],
                    "village_id": d["village_id"],
                    "made_at": datetime.now(UTC),
                }
                for d in devices
            ],
        )
    engine.dispose()


def control_sample(port: int, password: str, count: int) -> float:
    """Seconds per login made through the plugin's control topic, over `count` logins."""
    from app.push import broker as broker_module
    from app.push.publisher import Publisher, login_commands, logout_commands

    publisher = Publisher(
        broker_module.Target("127.0.0.1", port, broker_module.ADMIN_USERNAME, password, True)
    )
    assert publisher._connect()
    started = time.monotonic()
    sample = ["loaxa/v1/stations/1/alert"]
    for i in range(count):
        token = secrets.token_urlsafe(16)
        publisher._control(functools.partial(login_commands, 10_000_000 + i, token, sample))
    spent = (time.monotonic() - started) / count
    for i in range(count):
        publisher._control(functools.partial(logout_commands, 10_000_000 + i))
    publisher._disconnect()
    return spent


# --- the poll load -------------------------------------------------------------------------


def poll_rates(hours: float = 24.0) -> tuple[float, float]:
    """Requests per second of one agent (emergencies and playlists), polling as today and
    with push connected: the agent's own ServerSync on a simulated clock."""
    from app.playout.agent.cache import AudioCache
    from app.playout.agent.client import Fetched
    from app.playout.agent.config import AgentConfig
    from app.playout.agent.journal import Journal
    from app.playout.agent.sync import ServerSync

    class Counting:
        calls = 0

        def emergencies(self, *, etag: str | None) -> Fetched:
            self.calls += 1
            return Fetched(changed=False, etag=etag or '"e"')

        def playlist(self, day: date, *, etag: str | None) -> Fetched:
            self.calls += 1
            return Fetched(changed=False, etag=etag or '"p"')

    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for connected in (False, True):
            config = AgentConfig(server_url="http://x", device_token="dev_x", cache_dir=Path(tmp))
            client = Counting()
            journal = Journal(":memory:")
            start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
            sync = ServerSync(
                config,
                client=client,  # type: ignore[arg-type]
                journal=journal,
                cache=AudioCache(Path(tmp), client),  # type: ignore[arg-type]
                now=start,
            )
            today = date(2026, 12, 7)
            days = tuple(today + timedelta(days=i) for i in range(config.prefetch_days + 1))
            now, end = start, start + timedelta(hours=hours)
            warm = start + timedelta(minutes=20)  # past the first pulls of a fresh start
            counted = 0
            while now < end:
                sync.use_push(connected, now)
                before = client.calls
                sync.poll_emergencies(now)
                sync.pull_playlists(now, days)
                if now >= warm:
                    counted += client.calls - before
                now += timedelta(seconds=1)
            journal.close()
            rates.append(counted / (end - warm).total_seconds())
    return rates[0], rates[1]


# --- the run -------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def post_all(
    api_port: int, segments: dict[int, int], concurrency: int
) -> tuple[dict[int, float], list[float], int]:
    import httpx

    base = f"http://127.0.0.1:{api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        r = await client.post(
            "/api/v1/auth/token", data={"username": "bench-admin", "password": "bench-password-1"}
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        posted: dict[int, float] = {}
        took: list[float] = []
        failed = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for station in sorted(segments):
            queue.put_nowait(station)

        async def worker() -> None:
            nonlocal failed
            while not queue.empty():
                station = queue.get_nowait()
                body = {"station_id": station, "segment_id": segments[station]}
                posted[station] = time.time()
                r = await client.post("/api/v1/emergencies", json=body, headers=headers)
                took.append(time.time() - posted[station])
                if r.status_code != 201:
                    failed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return posted, took, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=900)
    parser.add_argument("--villages", type=int, default=19, help="villages per station")
    parser.add_argument("--processes", type=int, default=4, help="device processes (>= 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="POSTs in flight")
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument(
        "--follow-poll",
        action="store_true",
        help="each device then GETs its emergencies, as the agent does (64 in flight a process)",
    )
    args = parser.parse_args()
    args.processes = max(args.processes, 2)

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # Mosquitto inherits it
    server_url = os.environ.get("LOAXA_BENCH_DATABASE_URL", DEFAULT_URL)
    t0 = time.monotonic()
    url, db_name = create_database(server_url)
    data_dir = Path(tempfile.mkdtemp(prefix="loaxa-bench-push-"))
    procs: list[subprocess.Popen] = []
    mosquitto = None
    try:
        from app.migrations import upgrade
        from app.push import broker as broker_module
        from app.push import topics

        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1))
        seeded = seed(url, data_dir, stations=args.stations, villages=args.villages, warmup=0)
        rows, segments = seed_push(url, args.stations)
        devices = [
            {
                **row,
                "index": i,
                "token": token,
                "username": f"device-{row['id']}",
                # The alert topic first: it is the one measured.
                "topics": topics.device_topics(row["station_id"], row["village_id"], row["id"]),
            }
            for i, (row, token) in enumerate(zip(rows, seeded.tokens, strict=True))
        ]
        record_logins(url, devices)
        n = len(devices)
        print(f"seeded {n} devices in {args.stations} stations ({time.monotonic() - t0:.0f} s)")

        password = secrets.token_urlsafe(16)
        folder = data_dir / "mosquitto"
        write_logins(folder, password, devices)
        mqtt_port = free_port()
        layout = broker_module.Layout(port=mqtt_port, bind="127.0.0.1", folder=folder, run_as=None)
        mosquitto = broker_module.Mosquitto(layout, password)
        mosquitto.start()
        if not mosquitto.wait_ready(timeout=60):
            raise RuntimeError("mosquitto did not come up")
        sample = control_sample(mqtt_port, password, 20)
        print(
            f"broker up on port {mqtt_port} with {n} logins; making a login through the "
            f"plugin's control topic with {n} in its file: {sample * 1000:.0f} ms each"
        )

        env = {
            **os.environ,
            "LOAXA_DATABASE_URL": url,
            "LOAXA_DATA_DIR": str(data_dir),
            "LOAXA_SECRET_KEY": secrets.token_urlsafe(48),
            "LOAXA_MQTT_ENABLED": "1",
            "LOAXA_MQTT_URL": f"mqtt://loaxa:{password}@127.0.0.1:{mqtt_port}",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        api_port = free_port()
        procs.append(start_server("app.main:create_app", api_port, env, factory=True))
        time.sleep(2)  # the workers' publishers connect

        ctx = mp.get_context("spawn")
        pipes, workers = [], []
        for k in range(args.processes):
            share = devices[k :: args.processes]
            parent, child = ctx.Pipe()
            worker = ctx.Process(
                target=devices_process,
                args=(
                    mqtt_port,
                    share,
                    child,
                    args.connect_concurrency,
                    api_port if args.follow_poll else None,
                ),
            )
            worker.start()
            pipes.append(parent)
            workers.append(worker)
        t_connect = time.monotonic()
        ready = [p.recv() for p in pipes]
        subscribed = sum(r["ready"]["subscribed"] for r in ready)
        rss = _rss_mb(mosquitto.process.pid if mosquitto.process else 0)
        refused = sum(r["ready"]["refused"] + r["ready"]["suback-refused"] for r in ready)
        print(
            f"{subscribed} of {n} devices connected and subscribed over {args.processes} "
            f"processes in {time.monotonic() - t_connect:.1f} s ({refused} refused); "
            f"mosquitto RSS {rss:.0f} MB; load average {os.getloadavg()[0]:.1f}"
        )

        time.sleep(1)
        posted, took, failed = asyncio.run(post_all(api_port, segments, args.concurrency))
        post_span = max(posted.values()) - min(posted.values())
        for p in pipes:
            p.send("posted")
        results = [p.recv() for p in pipes]
        for w in workers:
            w.join(30)

        station_of = {d["index"]: d["station_id"] for d in devices}
        delays = []
        for result in results:
            for index, arrived in result["received"].items():
                delays.append(arrived - posted[station_of[int(index)]])
        missing = subscribed - len(delays)
        print(
            f"POSTed {len(posted)} emergencies in {post_span:.1f} s ({failed} failed); "
            f"POST answered p50 {statistics.median(took) * 1000:.0f} ms, "
            f"p99 {percentile(took, 99) * 1000:.0f} ms"
        )
        p50 = percentile(delays, 50) if delays else float("nan")
        p99 = percentile(delays, 99) if delays else float("nan")
        worst = max(delays) if delays else float("nan")
        print(
            f"POST to receipt, {len(delays)} devices: p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms; {missing} never received"
        )

        if args.follow_poll:
            polled = [
                arrived - posted[station_of[int(index)]]
                for result in results
                for index, arrived in result["fetched"].items()
            ]
            print(
                f"POST to the emergency list in hand (the poll the message starts), "
                f"{len(polled)} of {subscribed} devices within {FOLLOW_WAIT_S:.0f} s: "
                f"p50 {percentile(polled, 50) * 1000:.0f} ms, "
                f"p99 {percentile(polled, 99) * 1000:.0f} ms, max {max(polled) * 1000:.0f} ms"
            )
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        polling, pushed = poll_rates()
        print(
            f"poll load of {n} devices: polling as today {polling * n:,.0f} req/s "
            f"({polling:.3f} per device), push connected {pushed * n:,.0f} req/s "
            f"({pushed:.4f} per device): {polling / pushed:.1f} times lower"
        )
        met_p99 = subscribed == n and missing == 0 and p99 < GOAL_P99_S
        met_ratio = polling / pushed >= GOAL_RATIO
        print(
            f"goal p99 < {GOAL_P99_S:.0f} s for all {n}: {'met' if met_p99 else 'NOT met'}; "
            f"goal poll load {GOAL_RATIO:.0f}x lower: {'met' if met_ratio else 'NOT met'}"
        )
        return 0 if met_p99 and met_ratio else 1
    finally:
        for proc in procs:
            stop(proc)
        if mosquitto is not None:
            mosquitto.stop()
        drop_database(server_url, db_name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
