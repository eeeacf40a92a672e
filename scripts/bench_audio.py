"""Benchmark the assembly path against plain ffmpeg (not a test).

Makes 10 MP3 segments of about 90 s (speech-like modulated noise plus a voiced tone, levels
varied over 11 dB) and ingests each through the real ingest (``audio.service.ingest_upload``,
into a scratch data directory, outside the timing): what assembly reads is what the store
keeps, the playout files and their envelopes. The CCHC intro/outro from audio_templates/
get their envelopes as on their first use, also outside the timing. Then the same
~15-minute programme is rendered three ways, each in a fresh process:

  (a) ours      app.audio.pipeline.assemble(): read the items' kept envelopes, join them and
                plan one gain and the true-peak limiter (allowing for the items' codec
                overshoot), then one streaming pass: one ffmpeg decodes the items in order,
                high-passed, the limiter renders 10 s at a time into LAME, whose output is
                decoded and measured (loudness, true peak, length) while it is being made.
  (b) one-liner ffmpeg concat filter + loudnorm=I=-16:TP=-1 + MP3 encode (same settings).
  (c) floor     ffmpeg concat filter + MP3 encode, no loudness processing at all.

Other processes on the machine distort wall times (ours uses two cores in places, so it
suffers more from contention): before every run the script waits, up to --quiet-timeout
seconds, for the 1-minute load average to drop to --max-load, and prints the load seen.
CPU time (user + system of the whole process tree) is printed as a contention-proof check.

Fairness: all three read the same files, write the same format with the same LAME
settings (pipeline.ENCODE_ARGS: V2, mono, 44.1 kHz) and start as a fresh process. Wall time
is measured around the whole process; for (a) that includes starting Python and importing
numpy/scipy (~1 s, paid once by the long-running service), so the assemble() call alone is
reported as well. Each variant runs --repeat times, alternating; the median is reported.

Memory: ru_maxrss from wait4()/RUSAGE_CHILDREN is NOT used, because Linux carries the
parent's high-water mark across fork/vfork+exec into the child's ru_maxrss (every variant
then "peaks" at the size of this benchmark process). Instead a monitor thread samples the
process tree every 20 ms from /proc: "tree peak" is the largest sum of VmRSS over the
process and all its ffmpeg descendants seen at one instant (a child is only counted once it
has exec'd ffmpeg, because between fork and exec it still shows the parent's memory). A sum
of VmRSS counts the pages of the libraries every process maps once per process: an idle
ffmpeg shows ~51 MB of VmRSS of which ~41 MB are shared library pages (its proportional
share, Pss, is ~19 MB). So the tree peak is also given as the largest sum of Pss
(/proc/PID/smaps_rollup: each shared page divided among the processes that map it), which
is what was really resident at once;
"own peak" is the kernel's exact VmHWM of the top process, and for (a) the largest VmHWM
seen among its ffmpeg children is shown too.

Usage: .venv/bin/python scripts/bench_audio.py [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from scipy.signal import butter, lfilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.audio.pipeline import ENCODE_ARGS, RATE  # noqa: E402
from app.audio.templates import template_paths  # noqa: E402

SEGMENTS = 10
GOAL_VS_ONELINER = 0.3  # assemble() alone
GOAL_VS_FLOOR = 1.2  # assemble() alone
GOAL_PROCESS_VS_FLOOR = 1.45  # the whole process, imports included
TARGET_LUFS, TOLERANCE_LU, CEILING_DBTP = -16.0, 0.5, -1.0
RSS_BUDGET_MB = 250

OURS = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from app.audio.pipeline import EnvelopeCache, Item, assemble
from app.audio.storage import AudioStore
t1 = time.perf_counter()
store = AudioStore(Path(sys.argv[2]))
pairs = [arg.split("=", 1) for arg in sys.argv[3:]]
items = [  # the segments were made to the current standard: high-passed at ingest
    Item(f"item {i}", Path(p), sha, filtered=0 < i < len(pairs) - 1)
    for i, (sha, p) in enumerate(pairs)
]
result = assemble(items, out_path=Path(sys.argv[1]), envelopes=EnvelopeCache(store.envelope_path))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "assemble_s": t2 - t1, "gain_db": result.gain_db,
                  "limiter_db": result.limiter_db, "planning_s": result.planning_s}))
"""


class TreeMonitor(threading.Thread):
    """Samples VmRSS of a process and its descendants, and each one's VmHWM, from /proc."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop = threading.Event()
        self.tree_peak_kb = 0
        self.tree_pss_peak_kb = 0
        self.hwm_kb: dict[int, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            total = pss = 0
            for pid in self._tree(self.pid):
                if pid != self.pid and _comm(pid) != "ffmpeg":
                    continue  # not exec'd yet: it still shows the parent's memory
                rss, hwm = _status_kb(pid)
                total += rss
                pss += _pss_kb(pid)
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
            self.tree_peak_kb = max(self.tree_peak_kb, total)
            self.tree_pss_peak_kb = max(self.tree_pss_peak_kb, pss)
            self.stop.wait(self.interval)

    @staticmethod
    def _tree(root: int) -> list[int]:
        """root and all its descendants (children of every thread)."""
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in children.read_text().split()]
        return found


def _comm(pid: int) -> str:
    """A process's command name ('' if it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pss_kb(pid: int) -> int:
    """A process's proportional set size in kB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _status_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB; zeros if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    kb = [int(values.get(k, "0 kB").split()[0]) for k in ("VmRSS", "VmHWM")]
    return kb[0], kb[1]


def speechlike(seconds: float, level_db: float, rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise and a gliding voiced tone in syllables and phrases (PLR ~12 dB)."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    b, a = butter(2, [300 / (RATE / 2), 3400 / (RATE / 2)], "band")
    noise = lfilter(b, a, rng.standard_normal(n))
    noise = np.tanh(noise / np.std(noise))
    pitch = 120 + 25 * np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = np.clip(np.sin(2 * np.pi * 4.2 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    phrases = np.sin(2 * np.pi * 0.21 * t + rng.uniform(0, 6)) > -0.7
    x = (0.6 * voiced + 0.8 * noise) * syllables * phrases
    x *= 10 ** (level_db / 20) / np.sqrt(np.mean(x**2))
    x *= min(1.0, 0.7 / np.max(np.abs(x)))  # never clipped
    return x.astype("<f4")


def make_segments(directory: Path) -> list[Path]:
    """Ten ~90 s MP3 segments at levels from -27 to -16 dBFS RMS (peaks <= -3 dBFS)."""
    rng = np.random.default_rng(20240601)
    paths = []
    for i in range(SEGMENTS):
        seconds = 86.0 + 0.9 * i
        level = -27 + 11 * ((i * 7) % SEGMENTS) / (SEGMENTS - 1)
        path = directory / f"segment_{i:02d}.mp3"
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(RATE)]
        cmd += ["-ac", "1", "-i", "pipe:0", *ENCODE_ARGS, str(path)]
        subprocess.run(cmd, input=speechlike(seconds, level, rng).tobytes(), check=True)
        paths.append(path)
    return paths


def wait_for_quiet(max_load: float, timeout: float) -> float:
    """Wait (up to timeout s) until the 1-minute load average is <= max_load; return it."""
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(2)
    return os.getloadavg()[0]


def _children_cpu() -> float:
    """User + system CPU seconds of all reaped descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(cmd: list[str]) -> dict:
    """Run a process under the tree monitor; return wall/CPU time, memory and stdout."""
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    monitor = TreeMonitor(proc.pid)
    monitor.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    monitor.stop.set()
    monitor.join()
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed: {err.decode(errors='replace')[-2000:]}")
    children = [kb for pid, kb in monitor.hwm_kb.items() if pid != proc.pid]
    return {
        "wall": wall,
        "cpu": _children_cpu() - cpu_before,
        "tree_mb": monitor.tree_peak_kb / 1024,
        "tree_pss_mb": monitor.tree_pss_peak_kb / 1024,
        "own_mb": monitor.hwm_kb.get(proc.pid, 0) / 1024,
        "child_mb": max(children, default=0) / 1024,
        "stdout": out.decode(),
    }


def ffmpeg_cmd(inputs: list[Path], out: Path, loudnorm: bool) -> list[str]:
    """One ffmpeg command line: concat filter (+ loudnorm) + the playout MP3 encode."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    for path in inputs:
        # The deep input queue loaxa's decoders use (app.audio.pipeline.assembly): it saves
        # the baselines ~0.25 s of futex calls too, so they stay as fast as ffmpeg can be.
        cmd += ["-thread_queue_size", "4096", "-i", str(path)]
    graph = "".join(f"[{i}:a]" for i in range(len(inputs))) + f"concat=n={len(inputs)}:v=0:a=1"
    if loudnorm:
        graph += ",loudnorm=I=-16:TP=-1,aresample=44100"
    return [
        *cmd,
        "-filter_complex",
        graph + "[out]",
        "-map",
        "[out]",
        "-ac",
        "1",
        *ENCODE_ARGS,
        str(out),
    ]


def ingest_items(segments: list[Path], data_dir: Path) -> list[tuple[str, Path]]:
    """Ingest the segments through the real ingest into data_dir's store, and give the
    templates their envelopes as their first assembly would: (sha256, path) per item, in
    programme order (intro, segments, outro)."""
    os.environ["LOAXA_DATA_DIR"] = str(data_dir)
    from app.audio import service as audio
    from app.audio.pipeline import measure_item
    from app.audio.storage import sha256_file
    from app.config import get_settings

    get_settings.cache_clear()
    items = []
    for path in segments:
        sha = str(audio.ingest_upload(path, filename=path.name)["sha256"])
        items.append((sha, audio.store().path_for(sha)))
    try:
        intro, outro = template_paths("cchc")
    except (FileNotFoundError, ValueError):
        intro, outro = None, None
    cache, key = audio.envelope_cache(), audio.envelope_key(filtered=False)
    ends = []
    for path in (intro, outro):
        if path is not None:
            sha = sha256_file(path)
            cache.put(sha, key, measure_item(path, **audio.sound_settings()))
        ends.append([(sha, path)] if path is not None else [])
    return [*ends[0], *items, *ends[1]]


def bench(
    items: list[tuple[str, Path]], work: Path, args: argparse.Namespace
) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Run the three variants `repeat` times each, alternating, each on a quiet machine."""
    runs: dict[str, list[dict]] = {"ours": [], "one-liner": [], "floor": []}
    inputs = [path for _, path in items]
    store = work / "data" / "audio"
    ours = [f"{sha}={path}" for sha, path in items]
    commands = {
        "ours": [sys.executable, "-c", OURS, str(work / "ours.mp3"), str(store), *ours],
        "one-liner": ffmpeg_cmd(inputs, work / "one-liner.mp3", loudnorm=True),
        "floor": ffmpeg_cmd(inputs, work / "floor.mp3", loudnorm=False),
    }
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            load = wait_for_quiet(args.max_load, args.quiet_timeout)
            run = {**run_measured(cmd), "load": load, "out": work / f"{name}.mp3"}
            if name == "ours":
                run.update(json.loads(run["stdout"]))
                out = run["out"].with_name(f"ours-{len(runs[name])}.mp3")
                run["out"] = out
                os.replace(work / "ours.mp3", out)
            runs[name].append(run)
    return {name: _median_run(r) for name, r in runs.items()}, runs


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time."""
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def ebur128(path: Path) -> tuple[float, float, float]:
    """(integrated LUFS, true peak dBTP, LRA) as ffmpeg's ebur128=peak=true measures path."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path)]
    log = subprocess.run(
        [*cmd, "-af", "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True
    ).stderr
    summary = log[log.rindex("Summary:") :]
    values = [
        re.search(pattern, summary)
        for pattern in (r"I:\s+(-?[\d.]+) LUFS", r"Peak:\s+(-?[\d.]+) dBFS", r"LRA:\s+([\d.]+) LU")
    ]
    return tuple(float(v.group(1)) if v else math.nan for v in values)  # type: ignore[return-value]


def decoded_ms(path: Path) -> int:
    """Length of a file as ffmpeg decodes it at 44.1 kHz (ms)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE)]
    out = subprocess.run([*cmd, "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return round(len(out) / 2 * 1000 / RATE)


def report(results: dict[str, dict], runs: dict[str, list[dict]], inputs: list[Path]) -> None:
    """Print times, memory, output measurements and the goal ratios."""
    print(f"\ninputs: {len(inputs)} files")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print("every repetition (wall s / CPU s / load at start):")
    for n in range(len(runs["ours"])):
        ours, one, floor = (runs[k][n] for k in ("ours", "one-liner", "floor"))
        lufs, peak, _ = ebur128(ours["out"])
        print(
            f"  {n + 1}: ours {ours['wall']:.2f} / {ours['cpu']:.2f} / {ours['load']:.2f} "
            f"(assemble() {ours['assemble_s']:.2f}, of it to LAME's first audio "
            f"{ours['planning_s'] * 1000:.0f} ms, imports {ours['import_s']:.2f}, "
            f"tree {ours['tree_mb']:.0f} MB RSS / {ours['tree_pss_mb']:.0f} MB Pss, "
            f"{lufs:.1f} LUFS {peak:.1f} dBTP); "
            f"one-liner {one['wall']:.2f} / {one['cpu']:.2f} / {one['load']:.2f}; "
            f"floor {floor['wall']:.2f} / {floor['cpu']:.2f} / {floor['load']:.2f}"
        )
        ours["on_target"] = abs(lufs - TARGET_LUFS) <= TOLERANCE_LU and peak <= CEILING_DBTP
    for name, r in results.items():
        loudness, peak, lra = ebur128(r["out"])
        r["on_target"] = abs(loudness - TARGET_LUFS) <= TOLERANCE_LU and peak <= CEILING_DBTP
        extra = ""
        if name == "ours":
            extra = f" (assemble() {r['assemble_s']:.2f} s + imports {r['import_s']:.2f} s)"
        print(
            f"{name:10s} wall {r['wall']:6.2f} s{extra}; CPU {r['cpu']:.2f} s; load {r['load']:.2f}"
        )
        mem = f"tree peak {r['tree_mb']:6.1f} MB (sum of RSS), {r['tree_pss_mb']:6.1f} MB (Pss)"
        mem += f"; own peak {r['own_mb']:6.1f} MB"
        if name == "ours":
            mem += f"; largest ffmpeg child {r['child_mb']:.1f} MB"
        print(f"{'':10s} {mem}")
        print(
            f"{'':10s} output {decoded_ms(r['out'])} ms; ffmpeg ebur128: {loudness:.1f} LUFS, "
            f"true peak {peak:.1f} dBTP, LRA {lra:.1f} LU"
            f" ({'on' if r['on_target'] else 'OFF'} target)"
        )
    ours, one, floor = (results[k]["wall"] for k in ("ours", "one-liner", "floor"))
    inner = results["ours"]["assemble_s"]
    print(
        f"\nassemble()/one-liner = {inner / one:.3f} (goal <= {GOAL_VS_ONELINER}); "
        f"whole process {ours / one:.3f}"
    )
    print(
        f"assemble()/floor     = {inner / floor:.3f} (goal <= {GOAL_VS_FLOOR}); "
        f"whole process {ours / floor:.3f} (goal <= {GOAL_PROCESS_VS_FLOOR})"
    )
    cpu = {k: statistics.median(r["cpu"] for r in runs[k]) for k in runs}
    print(
        f"CPU time (median): ours {cpu['ours']:.2f} s, one-liner {cpu['one-liner']:.2f} s, "
        f"floor {cpu['floor']:.2f} s: ours/floor {cpu['ours'] / cpu['floor']:.3f}, "
        f"ours/one-liner {cpu['ours'] / cpu['one-liner']:.3f}"
    )
    print(f"ours on target in every repetition: {all(r['on_target'] for r in runs['ours'])}")
    r = results["ours"]
    print(
        f"ours on target (-16 +-0.5 LUFS, <= -1 dBTP): {r['on_target']}; "
        f"gain {r['gain_db']:+.2f} dB, limiter {r['limiter_db']:.2f} dB"
    )
    print(
        f"ours memory: tree peak {r['tree_mb']:.1f} MB as a sum of RSS, "
        f"{r['tree_pss_mb']:.1f} MB as a sum of Pss; python + largest ffmpeg "
        f"{r['own_mb'] + r['child_mb']:.1f} MB (budget {RSS_BUDGET_MB} MB)"
    )


def main() -> None:
    """Make the inputs, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-load", type=float, default=1.0, help="wait for this load average")
    parser.add_argument("--quiet-timeout", type=float, default=120, help="max wait per run (s)")
    parser.add_argument("--keep", type=Path, help="keep inputs and outputs in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        items = ingest_items(make_segments(work), work / "data")
        results, runs = bench(items, work, args)
        report(results, runs, [path for _, path in items])


if __name__ == "__main__":
    main()
