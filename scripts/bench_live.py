"""Benchmark: a live session's latency from the source to a player, and the hub's CPU with
N listening clusters (not a test).

The real parts, all on this machine: `loaxa serve` (the source and listener checks),
`loaxa hub` (Icecast 2.4.4 with the live mounts), a live session opened through the
service, a source client (ffmpeg, MP3 64 kbit/s, the session's own credentials).

Latency: this script writes a click track (CLICKS clicks, one every CLICK_EVERY_S) in real
time into the encoder and notes when each click went in; a player (ffmpeg, as the agent
plays a stream: little probing, no input buffer) decodes the mount and this script notes
when each click comes out. Baseline in the same run: the same encoder piped straight into
the same player, no hub; the hub's share is the difference.

CPU: the listening clusters are light clients in this process (each its own device token,
as bench_relay.py does); measured are `loaxa serve`, `loaxa hub` and its Icecast, over the
window, with one cluster (the baseline) and with N.

    .venv/bin/python scripts/bench_live.py                  # 200 clusters, 20 s window
    .venv/bin/python scripts/bench_live.py --clusters 50 --seconds 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_relay import Run, children, cpu_seconds, free_port, measure, wait  # noqa: E402

RATE = 8000  # the click track and the player's output: mono s16le
CLICKS = 20
CLICK_EVERY_S = 1.5
THRESHOLD = 8000


def encoder(target: str) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-f", "s16le", "-ar", str(RATE), "-ac", "1",
        "-i", "pipe:0", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "64k",
        "-write_xing", "0", "-id3v2_version", "0", "-flush_packets", "1",
        "-content_type", "audio/mpeg", "-f", "mp3", target,
    ]  # fmt: skip


def player(source: str) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-f", "mp3", "-fflags", "nobuffer",
        "-probesize", "2048", "-analyzeduration", "0", "-i", source,
        "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-flush_packets", "1", "pipe:1",
    ]  # fmt: skip


def feed_clicks(stdin: object, sent: list[float], lead_s: float = 2.0) -> None:
    """Write silence and CLICKS clicks in real time; note when each click went in."""
    block = RATE // 50  # 20 ms
    silence = np.zeros(block, dtype="<i2")
    click = silence.copy()
    click[:40] = 30000
    start = time.monotonic()
    total = int((lead_s + CLICKS * CLICK_EVERY_S + 1.0) * 50)
    next_click = lead_s
    for n in range(total):
        at = start + n / 50
        time.sleep(max(at - time.monotonic(), 0))
        t = n / 50
        data = silence
        if t >= next_click and len(sent) < CLICKS:
            data = click
            sent.append(time.monotonic())
            next_click += CLICK_EVERY_S
        try:
            stdin.write(data.tobytes())  # type: ignore[attr-defined]
            stdin.flush()  # type: ignore[attr-defined]
        except (BrokenPipeError, ValueError):
            return
    stdin.close()  # type: ignore[attr-defined]


def hear_clicks(stdout: object, heard: list[float], until: float) -> None:
    """Read the player's output as it comes; note when each click comes out."""
    quiet_since = 0
    while time.monotonic() < until:
        chunk = stdout.read1(4096)  # type: ignore[attr-defined]
        if not chunk:
            return
        now = time.monotonic()
        samples = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2")
        loud = np.abs(samples.astype(np.int32)) > THRESHOLD
        if loud.any():
            if quiet_since >= RATE // 4:  # a new click after a quarter second of quiet
                heard.append(now)
            quiet_since = 0
        else:
            quiet_since += len(samples)


def latencies(sent: list[float], heard: list[float]) -> list[float]:
    """Each click's delay: the first output click after it was sent (within 5 s)."""
    out = []
    for s in sent:
        after = [h - s for h in heard if 0 <= h - s < 5]
        if after:
            out.append(min(after))
    return out


def on_air(status: str, mount: str) -> bool:
    import httpx

    try:
        found = httpx.get(status, timeout=2).json()["icestats"].get("source") or []
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    found = found if isinstance(found, list) else [found]
    return any(
        str(e.get("listenurl", "")).endswith(mount) and e.get("stream_start_iso8601") for e in found
    )


def through_hub(target: str, listen: str, status: str, mount: str) -> list[float]:
    enc = subprocess.Popen(encoder(target), stdin=subprocess.PIPE)
    sent: list[float] = []
    heard: list[float] = []
    feeding = threading.Thread(target=feed_clicks, args=(enc.stdin, sent, 5.0), daemon=True)
    feeding.start()
    deadline = time.monotonic() + 5
    while not on_air(status, mount) and time.monotonic() < deadline:
        time.sleep(0.1)  # the hub asks loaxa about the source; the mount comes on air
    play = subprocess.Popen(player(listen), stdout=subprocess.PIPE)
    until = time.monotonic() + CLICKS * CLICK_EVERY_S + 8
    reader = threading.Thread(target=hear_clicks, args=(play.stdout, heard, until), daemon=True)
    reader.start()
    feeding.join()
    reader.join(timeout=10)
    for p in (play, enc):
        p.terminate()
        p.wait(timeout=10)
    return latencies(sent, heard)


def without_hub() -> list[float]:
    enc = subprocess.Popen(encoder("pipe:1"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    play = subprocess.Popen(player("pipe:0"), stdin=enc.stdout, stdout=subprocess.PIPE)
    sent: list[float] = []
    heard: list[float] = []
    until = time.monotonic() + CLICKS * CLICK_EVERY_S + 8
    reader = threading.Thread(target=hear_clicks, args=(play.stdout, heard, until), daemon=True)
    reader.start()
    feed_clicks(enc.stdin, sent)
    reader.join(timeout=10)
    for p in (play, enc):
        p.terminate()
        p.wait(timeout=10)
    return latencies(sent, heard)


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:>12}: no click came through"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{name:>12}: {len(values)}/{CLICKS} clicks, median {statistics.median(values):.2f} s, "
        f"p95 {p95:.2f} s, max {max(values):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if not shutil.which("icecast2"):
        raise SystemExit("icecast2 is missing (scripts/bootstrap.sh installs it)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-live-"))
    web_port, hub_port = free_port(), free_port()
    os.environ.update(
        {
            "LOAXA_DATA_DIR": str(scratch),
            "LOAXA_DATABASE_URL": f"sqlite:///{scratch / 'loaxa.db'}",
            "LOAXA_SECRET_KEY": "bench-" + "x" * 40,
            "LOAXA_LOG_LEVEL": "WARNING",
            "LOAXA_ACCESS_LOG": "false",
            "LOAXA_ICECAST_PORT": str(hub_port),
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    feeder: subprocess.Popen[bytes] | None = None
    try:
        from app import migrations
        from app.config import get_settings
        from app.db import unit_of_work
        from app.devices.service import create_device
        from app.playout import live
        from app.stations import service as stations

        migrations.upgrade(get_settings().database_url or os.environ["LOAXA_DATABASE_URL"])
        tokens: list[str] = []
        with unit_of_work() as s:
            station = stations.create_station(s, name="Xuân Phúc")
            sid = station.id
            for n in range(args.clusters):
                tokens.append(create_device(s, name=f"Cụm loa {n + 1}", station_id=sid)[1])
            session, password = live.create_session(
                s, station_id=sid, title="Đo độ trễ", priority="emergency"
            )
            mount, user = session.mount, session.source_username
        loaxa = [sys.executable, "-m", "app.cli"]
        procs.append(subprocess.Popen([*loaxa, "serve", "--port", str(web_port), "--workers", "1"]))
        wait(f"http://127.0.0.1:{web_port}/healthz")
        hub = subprocess.Popen(
            [*loaxa, "hub", "--port", str(hub_port),
             "--auth-url", f"http://127.0.0.1:{web_port}/api/v1/streams/listener"]
        )  # fmt: skip
        procs.append(hub)
        wait(f"http://127.0.0.1:{hub_port}/status-json.xsl")
        target = f"icecast://{user}:{password}@127.0.0.1:{hub_port}{mount}"
        listen = f"http://device:{tokens[0]}@127.0.0.1:{hub_port}{mount}"
        base = without_hub()
        status = f"http://127.0.0.1:{hub_port}/status-json.xsl"
        hubbed = through_hub(target, listen, status, mount)
        # CPU: the session fed (a voice-like tone) while 1, then N, clusters listen.
        feeder = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi",
             "-i", "sine=frequency=300:sample_rate=44100", "-ac", "1", "-c:a", "libmp3lame",
             "-b:a", "64k", "-write_xing", "0", "-content_type", "audio/mpeg", "-f", "mp3", target],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)
        web = procs[0]
        web_cpu0 = cpu_seconds(web.pid)
        t0 = time.monotonic()
        one = measure(hub.pid, hub_port, f"http://127.0.0.1:{hub_port}/status-json.xsl",
                      mount, tokens[:1], args.seconds)  # fmt: skip
        web_one = 100 * (cpu_seconds(web.pid) - web_cpu0) / (time.monotonic() - t0)
        web_cpu0, t0 = cpu_seconds(web.pid), time.monotonic()
        many = measure(hub.pid, hub_port, f"http://127.0.0.1:{hub_port}/status-json.xsl",
                       mount, tokens, args.seconds)  # fmt: skip
        web_many = 100 * (cpu_seconds(web.pid) - web_cpu0) / (time.monotonic() - t0)
        icecast_pids = children(hub.pid)
    finally:
        if feeder is not None:
            feeder.terminate()
            feeder.wait(timeout=10)
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"live session latency, source to player ({CLICKS} clicks, loopback)")
    print(summary("no hub", base))
    print(summary("through hub", hubbed))
    if base and hubbed:
        print(
            f"the hub adds {statistics.median(hubbed) - statistics.median(base):.2f} s "
            f"(median; x{statistics.median(hubbed) / max(statistics.median(base), 0.001):.1f} "
            "the encoder and player alone)"
        )
    print(f"\none live session, {args.seconds:.0f} s window, icecast pids {icecast_pids}")
    print(f"{'clusters':>9} {'served':>7} {'min rate':>9} {'hub+icecast CPU %':>18} "
          f"{'serve CPU %':>12} {'icecast MB':>11}")  # fmt: skip
    r: Run
    for r, web_pct in ((one, web_one), (many, web_many)):
        print(
            f"{r.clusters:>9} {r.served:>7} {r.min_rate:>9.2f} {r.hub_cpu_pct:>18.1f} "
            f"{web_pct:>12.1f} {r.icecast_rss_mb:>11.1f}"
        )
    print(
        f"ratio {many.clusters} vs {one.clusters}: hub+icecast CPU "
        f"x{many.hub_cpu_pct / max(one.hub_cpu_pct, 0.1):.1f}, serve CPU "
        f"x{web_many / max(web_one, 0.1):.1f}"
    )


if __name__ == "__main__":
    main()
