"""Benchmark: a commune's first month on a 360 px phone, from `loaxa up` to an assembled
column, with five segments whose audio is made by text-to-speech (espeak-ng, offline).

The editor adds five segments for the column being prepared ("Thêm tin bài" on Trang chủ,
then for each: title, script, "Gửi duyệt, thêm bài khác", which saves, reads the script
with the machine voice and submits); the approver ticks them all on Trang chủ ("Chọn tất
cả", "Duyệt các tin bài đã chọn"), lets "Tự động xếp" fill the rundown and presses "Lưu và
ghép". The service is started as
the README's main command starts it (`loaxa migrate`, `loaxa seed-demo`, `loaxa up`), in a
data directory of its own; the journey is the one tests/console/test_journey.py walks.

Prints, against the goals (ratios: figure / goal):
* the actions counted (each tap and each field filled), per step and in all: goal ≤ 30;
* the server time of each step (from `loaxa up`'s access log), and per kind of request
  (its route) n, p50, p95 and max: goal p95 < 300 ms for every page and action except
  text-to-speech and assembly, which are reported apart.

    .venv/bin/python scripts/bench_journey.py [--segments 5] [--seconds 140] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.console.journey import CHROMIUM, first_month, running_commune, script_of  # noqa: E402

GOAL_ACTIONS = 30
GOAL_P95_MS = 300.0
# Text-to-speech and assembly are reported apart: "POST /segments/new" reads the script
# aloud when it submits at once, "/rundown" assembles with "Lưu và ghép".
SLOW_ROUTES = ("/tts", "/assemble", "POST /segments/new", "/rundown")
TITLES = [
    "Kết quả cải cách hành chính tháng này",
    "Hướng dẫn nộp hồ sơ trực tuyến",
    "Biểu dương cán bộ một cửa tận tình",
    "Tiếp nhận phản ánh, kiến nghị của người dân",
    "Lịch tiếp công dân của Chủ tịch xã",
    "Chỉ số hài lòng của người dân năm nay",
]


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=140, help="each segment read aloud")
    parser.add_argument("--keep", type=Path, help="keep the data directory and screenshots here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    segments = [
        (TITLES[n % len(TITLES)], script_of(args.seconds)) for n in range(args.segments)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-journey-") as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        with running_commune(data / "data") as commune, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            outcome = first_month(
                commune,
                browser,
                segments,
                shots=data / "shots" if args.keep else None,
                check_reloads=False,
                refusal=False,
            )
            browser.close()

    print(f"journey: {args.segments} segments of ~{args.seconds} s by espeak-ng, 360 px\n")
    print(f"{'step':28s} {'actions':>7s} {'requests':>8s} {'server ms':>10s}")
    by_route: dict[str, list[float]] = defaultdict(list)
    for step in outcome.steps:
        print(f"{step.name:28s} {step.actions:7d} {len(step.requests):8d} {step.server_ms:10.1f}")
        for r in step.requests:
            by_route[f"{r.get('method', '?')} {r.get('route') or r['path']}"].append(
                float(r["duration_ms"])
            )
    total = outcome.actions
    print(f"\nactions in all: {total} (editor {outcome.editor.actions}, approver "
          f"{outcome.approver.actions}); goal ≤ {GOAL_ACTIONS}: ratio {total / GOAL_ACTIONS:.2f}")
    # "warm": without each route's first request in the fresh process (its code paths,
    # statements and templates are cold then, and the scheduler is catching up beside it).
    head = ("request", "n", "p50 ms", "p95 ms", "max ms", "warm p95", "p95/goal")
    print("\n{:48s} {:>3s} {:>8s} {:>8s} {:>8s} {:>8s} {:>8s}".format(*head))
    worst = worst_warm = 0.0
    for route, values in sorted(by_route.items()):
        slow = any(route.endswith(s) or route == s for s in SLOW_ROUTES)
        p95 = _p95(values)
        warm = _p95(values[1:]) if len(values) > 1 else float("nan")
        if not slow:
            worst = max(worst, p95)
            worst_warm = max(worst_warm, warm if len(values) > 1 else 0.0)
        ratio = "(apart)" if slow else f"{p95 / GOAL_P95_MS:.2f}"
        print(f"{route:48s} {len(values):3d} {statistics.median(values):8.1f} {p95:8.1f} "
              f"{max(values):8.1f} {warm:8.1f} {ratio:>8s}")
    print(f"\nworst p95 of pages and actions (but TTS and assembly): {worst:.1f} ms; "
          f"goal < {GOAL_P95_MS:.0f} ms: ratio {worst / GOAL_P95_MS:.2f}; "
          f"warm (routes seen twice or more): {worst_warm:.1f} ms, "
          f"ratio {worst_warm / GOAL_P95_MS:.2f}")
    return 0 if total <= GOAL_ACTIONS and worst < GOAL_P95_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
