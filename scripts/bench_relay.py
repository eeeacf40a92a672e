"""Benchmark: N simulated village clusters listening to one relay through the hub (not a test).

The real parts, all on this machine: an upstream Icecast fed by ffmpeg (a 64 kbit/s MP3,
as a national station's server would send), `loaxa serve` (the listener checks), and
`loaxa hub` (Icecast with the relay mount, on demand). The clusters are light clients in
one asyncio process: each authenticates with its own device token (HTTP basic) and reads
the stream for the measuring window. Measured: how long all took to be let in and served,
what each received against real time, the hub's CPU (Icecast and the hub process) and
memory over the window, and how many connections the upstream holds (one).

The baseline, in the same script, is the same hub with one cluster: the figures are given
for both and as the cost of the N-1 more clusters.

    .venv/bin/python scripts/bench_relay.py                 # 500 clusters, 20 s window
    .venv/bin/python scripts/bench_relay.py --clusters 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BITRATE = 64_000  # bit/s of the upstream
TICK = os.sysconf("SC_CLK_TCK")
RAMP_S = 5.0  # all clusters connect within the slot's first seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@dataclass
class Run:
    clusters: int
    admitted_s: float
    served: int
    min_rate: float
    hub_cpu_pct: float
    icecast_rss_mb: float
    hub_rss_mb: float
    upstream_connections: int


async def _listen(host: str, port: int, mount: str, token: str, until: float, delay: float) -> int:
    await asyncio.sleep(delay)  # clusters come in over the first seconds of the slot
    auth = base64.b64encode(f"device:{token}".encode()).decode()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {mount} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        return -1
    got = 0
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            chunk = await asyncio.wait_for(
                reader.read(65536), timeout=max(until - loop.time(), 0.01)
            )
        except TimeoutError:
            break
        if not chunk:
            break
        got += len(chunk)
    writer.close()
    return got


async def _listeners(port: int, mount: str, tokens: list[str], seconds: float) -> list[int]:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds + RAMP_S
    got = await asyncio.gather(
        *(
            _listen("127.0.0.1", port, mount, t, until, RAMP_S * n / len(tokens))
            for n, t in enumerate(tokens)
        ),
        return_exceptions=True,
    )
    return [g if isinstance(g, int) else -1 for g in got]


def measure(
    hub_pid: int, hub_port: int, up_status: str, mount: str, tokens: list[str], seconds: float
) -> Run:
    icecast = children(hub_pid)[0]
    began = time.monotonic()
    cpu0 = cpu_seconds(hub_pid) + cpu_seconds(icecast)
    results: list[int] = []
    peak = {"icecast": 0.0, "hub": 0.0, "upstream": 0}

    async def main() -> None:
        task = asyncio.create_task(_listeners(hub_port, mount, tokens, seconds))
        while not task.done():
            await asyncio.sleep(1)
            peak["icecast"] = max(peak["icecast"], rss_mb(icecast))
            peak["hub"] = max(peak["hub"], rss_mb(hub_pid))
            try:
                src = httpx.get(up_status, timeout=2).json()["icestats"].get("source") or []
                src = src if isinstance(src, list) else [src]
                peak["upstream"] = max(peak["upstream"], *(int(s.get("listeners", 0)) for s in src))
            except (httpx.HTTPError, ValueError):
                pass
        results.extend(task.result())

    asyncio.run(main())
    elapsed = time.monotonic() - began
    cpu = cpu_seconds(hub_pid) + cpu_seconds(icecast) - cpu0
    served = [r for r in results if r > 0]
    expected = BITRATE / 8 * seconds  # each listens at least `seconds`, after the ramp
    return Run(
        clusters=len(tokens),
        admitted_s=elapsed - seconds - RAMP_S,
        served=len(served),
        min_rate=min(served) / expected if served else 0.0,
        hub_cpu_pct=100 * cpu / elapsed,
        icecast_rss_mb=peak["icecast"],
        hub_rss_mb=peak["hub"],
        upstream_connections=int(peak["upstream"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if not shutil.which("icecast2"):
        raise SystemExit("icecast2 is missing (scripts/bootstrap.sh installs it)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    os.environ.update(
        {
            "LOAXA_DATA_DIR": str(scratch),
            "LOAXA_DATABASE_URL": f"sqlite:///{scratch / 'loaxa.db'}",
            "LOAXA_SECRET_KEY": "bench-" + "x" * 40,
            "LOAXA_LOG_LEVEL": "WARNING",
            "LOAXA_ACCESS_LOG": "false",
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        from app import migrations
        from app.config import get_settings
        from app.db import unit_of_work
        from app.devices.service import create_device
        from app.stations import service as stations
        from app.streams.config import Layout, Secrets, default_layout
        from app.streams.hub import Icecast

        migrations.upgrade(get_settings().database_url or os.environ["LOAXA_DATABASE_URL"])
        # The upstream: its own Icecast, fed by ffmpeg.
        up_port = free_port()
        base = default_layout(port=up_port)
        upstream = Icecast(
            Layout(
                up_port,
                "127.0.0.1",
                "http://127.0.0.1:9/",
                base.log_dir.with_name(base.log_dir.name + "-bench-upstream"),
                base.run_as,
                burst_bytes=4096,
            ),
            Secrets("bench-source", "bench-relay", "bench-admin"),
            scratch / "upstream" if base.run_as is None else Path(f"/run/loaxa-bench-up-{up_port}"),
        )
        upstream.configure([])
        upstream.start()
        assert upstream.wait_ready()
        procs.append(
            subprocess.Popen(
                ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi",
                 "-i", "sine=frequency=440:sample_rate=44100", "-ac", "1", "-c:a", "libmp3lame",
                 "-b:a", "64k", "-content_type", "audio/mpeg", "-f", "mp3",
                 f"icecast://source:bench-source@127.0.0.1:{up_port}/vov1"],
                stdin=subprocess.DEVNULL,
            )
        )  # fmt: skip
        tokens: list[str] = []
        with unit_of_work() as s:
            station = stations.create_station(s, name="Xuân Phúc")
            stations.create_programme(
                s, station=station, code="vov1", name="Tiếp sóng VOV1", scope="station",
                cadence={"kind": "daily", "time": "06:00"}, min_duration_ms=1_800_000,
                max_duration_ms=1_800_000,
                source={"kind": "relay", "url": f"http://127.0.0.1:{up_port}/vov1"},
            )  # fmt: skip
            sid = station.id
            for n in range(args.clusters):
                tokens.append(create_device(s, name=f"Cụm loa {n + 1}", station_id=sid)[1])
        web_port, hub_port = free_port(), free_port()
        loaxa = [sys.executable, "-m", "app.cli"]
        procs.append(subprocess.Popen([*loaxa, "serve", "--port", str(web_port), "--workers", "1"]))
        wait(f"http://127.0.0.1:{web_port}/healthz")
        hub = subprocess.Popen(
            [*loaxa, "hub", "--port", str(hub_port),
             "--auth-url", f"http://127.0.0.1:{web_port}/api/v1/streams/listener"]
        )  # fmt: skip
        procs.append(hub)
        wait(f"http://127.0.0.1:{hub_port}/status-json.xsl")
        time.sleep(3)  # the hub's first tick writes the relay mount and reloads Icecast
        mount = f"/relay-{sid}-vov1"
        up_status = f"http://127.0.0.1:{up_port}/status-json.xsl"
        one = measure(hub.pid, hub_port, up_status, mount, tokens[:1], args.seconds)
        time.sleep(3)  # the on-demand relay lets go of the upstream
        many = measure(hub.pid, hub_port, up_status, mount, tokens, args.seconds)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if "upstream" in locals():
            upstream.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"relay through the hub, {args.seconds:.0f} s window, upstream {BITRATE // 1000} kbit/s")
    print(f"{'clusters':>9} {'served':>7} {'admitted s':>11} {'min rate':>9} "
          f"{'hub CPU %':>10} {'icecast MB':>11} {'hub MB':>7} {'upstream conns':>15}")  # fmt: skip
    for r in (one, many):
        print(
            f"{r.clusters:>9} {r.served:>7} {r.admitted_s:>11.1f} {r.min_rate:>9.2f} "
            f"{r.hub_cpu_pct:>10.1f} {r.icecast_rss_mb:>11.1f} {r.hub_rss_mb:>7.1f} "
            f"{r.upstream_connections:>15}"
        )
    extra = max(many.clusters - one.clusters, 1)
    print(
        f"ratios {many.clusters} vs {one.clusters}: hub CPU "
        f"x{many.hub_cpu_pct / max(one.hub_cpu_pct, 0.1):.1f}, "
        f"Icecast memory x{many.icecast_rss_mb / max(one.icecast_rss_mb, 0.1):.2f}; "
        f"{(many.hub_cpu_pct - one.hub_cpu_pct) / extra * 1000:.1f} % CPU per 1000 more clusters"
    )


if __name__ == "__main__":
    main()
