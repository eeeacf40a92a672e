"""Benchmark the playout polls on PostgreSQL against a static file server (not a test).

Goal (issue 6): 20 000 distinct devices pulling their playlist within a minute, on this
2-core machine, with PostgreSQL:
  full playlists   >= 1 000 req/s, p99 < 100 ms
  revalidations    >= 2 000 req/s (304), p99 < 50 ms
  ratio to a plain static file server >= 0.25 (same client, same machine, same workers)

What it does, all bounded (about a minute and a half in all):
  1. creates a scratch database of its own on the server named by LOAXA_BENCH_DATABASE_URL
     (default postgresql://postgres@127.0.0.1:5432/test), migrates it, and bulk-inserts
     1 000 stations x (1 station PC + 19 villages with one PC each) = 20 000 devices (plus
     --warmup devices used only to warm up), three assembled broadcasts per station and
     per village on the benchmark day (80 000 broadcasts in all: 3 per scope on the day,
     one the day after), all sharing one small real MP3 put in a scratch audio store;
     every station is an `ip` network (issue 12), so each village cluster's playlist holds
     the commune's three broadcasts as well as its own three (village slots a quarter of an
     hour after the commune's, as planning allows);
  2. starts the real API with uvicorn (2 workers, loopback port, no access log) and, as the
     baseline, a static file server of the same make (uvicorn, 2 workers, Starlette's
     StaticFiles) serving one real playlist body as a file, with ETag/304 of its own;
  3. loads each from a separate process: a small asyncio (uvloop) HTTP/1.1 client with
     --connections keep-alive connections, each request with a distinct device token:
       A  full playlists: every device once, no validator (cold: writes last_seen too);
       B  revalidations: every device again with If-None-Match: its ETag from A (304);
       C  emergency polls with If-None-Match (the every-few-seconds channel, 304);
     and the same request counts against the static server (full file, then 304s);
  4. prints requests/s, p50/p99/max latency, status counts, the CPU time per request spent
     by the API workers, PostgreSQL, the load generator and anything else on the machine
     ("other": a shared machine skews figures; before each phase the script waits, up to
     a minute in all, for the machine to be quiet), and how many device rows each API
     phase wrote (health columns are written at most every 30 s per device); then the
     goals, met or not;
  5. stops both servers and drops the scratch database.

The client is deliberately minimal (no HTTP library in the way), so what is measured is
the server. It keeps connections alive as a reverse proxy in front of loaxa would; every
request still names a different device. The static baseline is Starlette under uvicorn,
so the ratio compares the same HTTP stack with and without loaxa's work; a C server such
as nginx would serve the file several times faster.

Usage: .venv/bin/python scripts/bench_playout.py [--stations 1000] [--connections 32]
       [--app module:factory]  (another app factory, to compare setups)
Exit status 0 when every goal was met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAY = date(2024, 3, 16)
TZ = "Asia/Ho_Chi_Minh"
SLOTS = (dtime(7, 0), dtime(11, 30), dtime(17, 0))
VILLAGE_OFFSET = timedelta(minutes=15)  # a village's slots, after the commune's
PHASE_DEADLINE_S = 60.0
GOALS = {"full": (1000, 100.0), "revalidate": (2000, 50.0)}
GOAL_RATIO = 0.25


# --- scratch database and data -------------------------------------------------------------


def _pg_admin_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_database(server_url: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"loaxa_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_pg_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, name


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_pg_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_master(data_dir: Path) -> tuple[str, int, int]:
    """One real 2-second MP3 in the scratch audio store: (sha256, duration_ms, size)."""
    from app.audio.storage import AudioStore

    src = data_dir / "master.mp3"
    noise = "anoisesrc=c=pink:a=0.05:r=44100:d=2:seed=1"
    encode = ["-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", str(src)]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", noise, *encode],
        check=True,
    )
    sha = AudioStore(data_dir / "audio").put(src)
    return sha, 2000, src.stat().st_size


@dataclass
class Seeded:
    tokens: list[str]  # the measured devices
    warmup_tokens: list[str]


def seed(url: str, data_dir: Path, *, stations: int, villages: int, warmup: int) -> Seeded:
    """Bulk-insert stations, programmes, villages, devices and assembled broadcasts."""
    from sqlalchemy import insert, text

    from app.accounts.security import hash_device_token, new_device_token
    from app.audio.models import AudioAsset
    from app.db import make_engine
    from app.devices.models import Device
    from app.schedule.models import Broadcast
    from app.stations.models import Network, Programme, Station, StationNetwork, Village
    from app.stations.service import DEFAULT_PROGRAMMES

    sha, duration_ms, size = make_master(data_dir)
    now = datetime.now(UTC)
    tz = ZoneInfo(TZ)
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    station_rows, programme_rows, village_rows, device_rows, broadcast_rows = [], [], [], [], []
    network_rows = []
    tokens: list[str] = []
    vid = pid = did = bid = 0
    for s in range(1, stations + 1):
        station_rows.append({"id": s, "name": f"Xã {s}", "timezone": TZ, "created_at": now})
        network_rows.append(
            {"station_id": s, "effective_from": date.min, "network": "ip", "created_at": now}
        )
        prog_ids = {}
        for spec in DEFAULT_PROGRAMMES:
            pid += 1
            prog_ids[spec["scope"]] = pid
            programme_rows.append({"id": pid, "station_id": s, **spec, "created_at": now})
        scopes: list[int | None] = [None]
        for n in range(1, villages + 1):
            vid += 1
            village_rows.append(
                {"id": vid, "station_id": s, "name": f"Thôn {n}", "created_at": now}
            )
            scopes.append(vid)
        for village in scopes:
            did += 1
            token = new_device_token()
            tokens.append(token)
            device_rows.append(
                {
                    "id": did,
                    "name": f"PC {did}",
                    "station_id": s,
                    "village_id": village,
                    "token_hash": hash_device_token(token),
                    "is_active": True,
                    "created_at": now,
                }
            )
            # Three on the day, one the next day (must not show).
            days = [(DAY, slot) for slot in SLOTS] + [(DAY + timedelta(days=1), SLOTS[0])]
            for day, slot in days:
                bid += 1
                starts = datetime.combine(day, slot, tzinfo=tz).astimezone(UTC)
                if village is not None:
                    starts += VILLAGE_OFFSET
                broadcast_rows.append(
                    {
                        "id": bid,
                        "station_id": s,
                        "programme_id": prog_ids["station" if village is None else "village"],
                        "village_id": village,
                        "starts_at": starts,
                        "period_key": f"bench:{village}:{bid}",
                        "local_month": day.strftime("%Y-%m"),
                        "status": "assembled",
                        "priority": "normal",
                        "network": Network.ip.value,
                        "master_sha256": sha,
                        "master_duration_ms": duration_ms,
                        "assembled_at": now,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
    # Warm-up devices: extra village PCs of station 1 (so the measured ones stay cold).
    warmup_tokens = []
    for _ in range(warmup):
        did += 1
        token = new_device_token()
        warmup_tokens.append(token)
        device_rows.append(
            {
                "id": did,
                "name": f"PC {did}",
                "station_id": 1,
                "village_id": 1 if villages else None,
                "token_hash": hash_device_token(token),
                "is_active": True,
                "created_at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Station), station_rows)
        conn.execute(insert(StationNetwork), network_rows)
        conn.execute(insert(Programme), programme_rows)
        if village_rows:
            conn.execute(insert(Village), village_rows)
        conn.execute(insert(Device), device_rows)
        conn.execute(
            insert(AudioAsset),
            [
                {
                    "sha256": sha,
                    "duration_ms": duration_ms,
                    "loudness_lufs": -16.0,
                    "true_peak_dbtp": -1.5,
                    "size_bytes": size,
                    "origin": "assembly",
                    "created_at": now,
                }
            ],
        )
        for i in range(0, len(broadcast_rows), 20_000):
            conn.execute(insert(Broadcast), broadcast_rows[i : i + 20_000])
        for table in ("stations", "programmes", "villages", "devices", "broadcasts"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return Seeded(tokens=tokens, warmup_tokens=warmup_tokens)


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STATIC_APP = """
import os
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

app = Starlette(routes=[Mount("/", StaticFiles(directory=os.environ["BENCH_STATIC_DIR"]))])
"""


def start_server(app: str, port: int, env: dict[str, str], *, factory: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "2", "--no-access-log", "--log-level", "warning"]
    cmd += ["--loop", "uvloop", "--http", "httptools"]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, env=env, cwd=env.get("BENCH_CWD", str(ROOT)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{app} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            # Both workers: give the second a moment after the first accepts.
            time.sleep(1.0)
            return proc
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{app} did not start listening on port {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry))
    return pids


def system_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each process that still exists."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings; a process born in between counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


# --- load generator (runs in its own process) ----------------------------------------------


def _client_main(port: int, requests: list[bytes], connections: int, deadline_s: float) -> dict:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    return asyncio.run(_load(port, requests, connections, deadline_s))


async def _load(port: int, requests: list[bytes], connections: int, deadline_s: float) -> dict:
    loop = asyncio.get_running_loop()
    work = iter(enumerate(requests))
    results: list[tuple[int, float, bytes | None] | None] = [None] * len(requests)
    stop_at = time.perf_counter() + deadline_s

    class Conn(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[None]) -> None:
            self.done = done
            self.buf = bytearray()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.send_next()

        def send_next(self) -> None:
            nxt = next(work, None)
            if nxt is None or time.perf_counter() > stop_at:
                self.transport.close()
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.idx, req = nxt
            self.buf.clear()
            self.need = -1
            self.t0 = time.perf_counter()
            self.transport.write(req)  # type: ignore[attr-defined]

        def data_received(self, data: bytes) -> None:
            self.buf += data
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]) + b"\r\n"
                lower = head.lower()
                self.status = int(head[9:12])
                length = _header(head, lower, b"content-length")
                self.etag = _header(head, lower, b"etag")
                self.need = end + 4 + int(length or 0)
            if len(self.buf) >= self.need:
                results[self.idx] = (self.status, time.perf_counter() - self.t0, self.etag)
                self.send_next()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    started, cpu_started = time.perf_counter(), time.process_time()
    futures = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(functools.partial(Conn, done), "127.0.0.1", port)
        futures.append(done)
    await asyncio.wait_for(asyncio.gather(*futures), deadline_s + 30)
    elapsed = time.perf_counter() - started
    got = [r for r in results if r is not None]
    return {
        "elapsed": elapsed,
        "latencies": sorted(r[1] for r in got),
        "statuses": dict(Counter(r[0] for r in got)),
        "etags": [r[2].decode() if r and r[2] else None for r in results],
        "sent": len(requests),
        "cpu": time.process_time() - cpu_started,
    }


def _header(head: bytes, lower: bytes, name: bytes) -> bytes | None:
    pos = lower.find(b"\r\n" + name + b":")
    if pos < 0:
        return None
    start = pos + len(name) + 3
    return head[start : head.find(b"\r\n", start)].strip()


def run_load(port: int, requests: list[bytes], connections: int) -> dict:
    """Run one phase from a separate process; returns its figures."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_client_main, (port, requests, connections, PHASE_DEADLINE_S))


def request_bytes(path: str, port: int, token: str, etag: str | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "X-Loaxa-Agent-Version: bench-1",
        "X-Loaxa-Free-Disk-Bytes: 52428800000",
        "Accept: application/json",
    ]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- reporting -----------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    cpu_api: float
    cpu_db: float
    cpu_client: float
    cpu_other: float
    count: int

    def line(self) -> str:
        per = 1000 / max(self.count, 1)
        return (
            f"{self.name:<34} {self.rps:>8.0f} req/s  p50 {self.p50_ms:>6.1f} ms  "
            f"p99 {self.p99_ms:>6.1f} ms  max {self.max_ms:>6.1f} ms  "
            f"cpu/req: server {self.cpu_api * per:.2f} ms, postgres {self.cpu_db * per:.2f} ms, "
            f"client {self.cpu_client * per:.2f} ms, other {self.cpu_other * per:.2f} ms  "
            f"{self.statuses}"
        )


class Quiet:
    """Waits, within a total budget, until the rest of the machine is (nearly) idle.

    The machine may be shared (test suites, other benchmarks); a phase measured while
    something else runs says little. What else ran during each phase is reported anyway.
    """

    def __init__(self, budget_s: float, max_busy_cores: float = 0.3) -> None:
        self.left = budget_s
        self.max_busy = max_busy_cores

    def wait(self) -> None:
        while self.left > 0:
            t0, busy0 = time.monotonic(), system_busy_seconds()
            time.sleep(0.5)
            elapsed = time.monotonic() - t0
            self.left -= elapsed
            if (system_busy_seconds() - busy0) / elapsed <= self.max_busy:
                return
        print("  (the machine did not get quiet: figures include other load)", flush=True)


QUIET = Quiet(budget_s=60.0)


def measure(
    name: str, port: int, requests: list[bytes], connections: int, server_pid: int
) -> tuple[Figures, dict]:
    QUIET.wait()
    api_before = cpu_by_pid(process_tree(server_pid))
    db_before, all0 = cpu_by_pid(postgres_pids()), system_busy_seconds()
    out = run_load(port, requests, connections)
    all1 = system_busy_seconds()
    api = cpu_spent(api_before, cpu_by_pid(process_tree(server_pid)))
    db = cpu_spent(db_before, cpu_by_pid(postgres_pids()))
    lat = out["latencies"]
    n = len(lat)

    def pct(q: float) -> float:
        return lat[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    figures = Figures(
        name=name,
        rps=n / out["elapsed"] if out["elapsed"] else 0.0,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        max_ms=lat[-1] * 1000 if n else float("nan"),
        statuses=out["statuses"],
        cpu_api=api,
        cpu_db=db,
        cpu_client=out["cpu"],
        cpu_other=max(0.0, (all1 - all0) - api - db - out["cpu"]),
        count=n,
    )
    print(figures.line(), flush=True)
    return figures, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--villages", type=int, default=19, help="villages per station")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1000, help="extra warm-up devices")
    parser.add_argument(
        "--app", default="app.main:create_app", help="the API's app factory (to compare setups)"
    )
    args = parser.parse_args()

    server_url = os.environ.get("LOAXA_BENCH_DATABASE_URL", DEFAULT_URL)
    t_start = time.monotonic()
    url, db_name = create_database(server_url)
    data_dir = Path(tempfile.mkdtemp(prefix="loaxa-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        from app.migrations import upgrade

        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1))
        seeded = seed(
            url, data_dir, stations=args.stations, villages=args.villages, warmup=args.warmup
        )
        n = len(seeded.tokens)
        print(
            f"seeded {n} devices in {args.stations} stations in {time.monotonic() - t_start:.0f} s"
        )

        env = {
            **os.environ,
            "LOAXA_DATABASE_URL": url,
            "LOAXA_DATA_DIR": str(data_dir),
            "LOAXA_SECRET_KEY": secrets.token_urlsafe(48),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        env.pop("LOAXA_PUBLIC_BASE_URL", None)
        api_port = free_port()
        api = start_server(args.app, api_port, env, factory=True)
        procs.append(api)

        path = f"/api/v1/playout/playlist?date={DAY.isoformat()}"
        warm = [request_bytes(path, api_port, t) for t in seeded.warmup_tokens]
        warm += [
            request_bytes("/api/v1/playout/emergencies", api_port, t) for t in seeded.warmup_tokens
        ]
        run_load(api_port, warm, args.connections)

        # The baseline serves one real playlist body (a village cluster's, six items: the
        # commune's three and its own).
        import httpx

        sample = httpx.get(
            f"http://127.0.0.1:{api_port}{path}",
            headers={"Authorization": f"Bearer {seeded.warmup_tokens[0]}"},
        )
        assert sample.status_code == 200 and len(sample.json()["items"]) == 6, sample.text
        static_dir = data_dir / "static"
        static_dir.mkdir()
        (static_dir / "playlist.json").write_bytes(sample.content)
        (data_dir / "static_app.py").write_text(STATIC_APP)
        static_port = free_port()
        static = start_server(
            "static_app:app",
            static_port,
            {
                **env,
                "BENCH_STATIC_DIR": str(static_dir),
                "BENCH_CWD": str(data_dir),
                "PYTHONPATH": str(data_dir),
            },
            factory=False,
        )
        procs.append(static)
        print(f"playlist body: {len(sample.content)} bytes; {args.connections} connections\n")

        def writes_since(since: datetime) -> int:
            import psycopg

            with psycopg.connect(_pg_admin_url(url), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM devices WHERE last_seen_at >= %s", (since,)
                ).fetchone()
            return int(row[0]) if row else 0

        def api_phase(name: str, requests: list[bytes]) -> tuple[Figures, dict]:
            since = datetime.now(UTC)
            figures, out = measure(name, api_port, requests, args.connections, api.pid)
            print(f"   device rows written (last_seen_at): {writes_since(since)}", flush=True)
            return figures, out

        results: dict[str, Figures] = {}
        full = [request_bytes(path, api_port, t) for t in seeded.tokens]
        results["full"], out = api_phase("A  playlist, full (200)", full)
        etags = out["etags"]
        missing = sum(1 for e in etags if not e)
        if missing:
            print(f"  ({missing} responses without an ETag)")
        again = [
            request_bytes(path, api_port, t, e) for t, e in zip(seeded.tokens, etags, strict=True)
        ]
        results["revalidate"], _ = api_phase("B  playlist, revalidate (304)", again)
        em_path = "/api/v1/playout/emergencies"
        em_first = httpx.get(
            f"http://127.0.0.1:{api_port}{em_path}",
            headers={"Authorization": f"Bearer {seeded.tokens[0]}"},
        ).headers["etag"]
        polls = [request_bytes(em_path, api_port, t, em_first) for t in seeded.tokens]
        results["emergencies"], _ = api_phase("C  emergencies poll (304)", polls)
        static_path = "/playlist.json"
        s_full = [request_bytes(static_path, static_port, t) for t in seeded.tokens]
        results["static_full"], s_out = measure(
            "S1 static file, full (200)", static_port, s_full, args.connections, static.pid
        )
        s_etag = next(e for e in s_out["etags"] if e)
        s_again = [request_bytes(static_path, static_port, t, s_etag) for t in seeded.tokens]
        results["static_revalidate"], _ = measure(
            "S2 static file, revalidate (304)", static_port, s_again, args.connections, static.pid
        )

        print()
        ok = True
        for key, label in (("full", "full playlists"), ("revalidate", "revalidations")):
            goal_rps, goal_p99 = GOALS[key]
            f = results[key]
            ratio = f.rps / results[f"static_{key}"].rps
            good_status = 200 if key == "full" else 304
            met = (
                f.rps >= goal_rps
                and f.p99_ms < goal_p99
                and ratio >= GOAL_RATIO
                and f.statuses.get(good_status, 0) == n
            )
            ok &= met
            print(
                f"{label:<15} {f.rps:>7.0f} req/s (goal {goal_rps}), p99 {f.p99_ms:.1f} ms "
                f"(goal < {goal_p99:.0f}), ratio to static {ratio:.2f} (goal {GOAL_RATIO}) "
                f"-> {'MET' if met else 'NOT MET'}"
            )
        em = results["emergencies"]
        print(
            f"emergency poll  {em.rps:>7.0f} req/s, p99 {em.p99_ms:.1f} ms "
            f"(20 000 devices every 10 s need 2 000 req/s)"
        )
        print(f"\ntotal {time.monotonic() - t_start:.0f} s")
        return 0 if ok else 1
    finally:
        for proc in reversed(procs):
            stop(proc)
        drop_database(server_url, db_name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
