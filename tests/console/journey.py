"""A commune's first month, as its two officials do it on a phone: the driver that the
journey test (tests/console/test_journey.py) and its benchmark (scripts/bench_journey.py)
share.

`Commune` starts the service the way the README's main command does, against a data
directory of its own: `loaxa migrate`, `loaxa seed-demo`, two staff accounts made with
`loaxa user add`, then `loaxa up` as a real process (the web server and the scheduler,
whose rolling plan makes the coming months; nothing here plans for it). `Hands` drives a
360 px Chromium and counts what a person does: each tap and each field filled. The access
log of `loaxa up` (one JSON line a request, with its `duration_ms`) gives each step's
server time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "mật-khẩu-thử-2024"
EDITOR, APPROVER = "bientap", "vanphong"

# About 16 characters a second read by espeak-ng's Vietnamese voice at loaxa's rate.
SENTENCE = (
    "Thực hiện kế hoạch cải cách hành chính năm nay, Ủy ban nhân dân xã đã tiếp nhận và "
    "giải quyết đúng hạn các hồ sơ của người dân tại bộ phận một cửa. "
)


def script_of(seconds: int) -> str:
    """A script that espeak-ng reads in about `seconds`."""
    return SENTENCE * max(1, round(seconds * 16 / len(SENTENCE)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Commune:
    """`loaxa up` on a free port with a fresh data directory, and what it logged."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = Path()
    env: dict[str, str] = field(default_factory=dict)
    pg_database: str | None = None  # the PostgreSQL database made for this run, if any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def loaxa(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"loaxa {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOAXA_")}
        self.env.update(
            LOAXA_DATA_DIR=str(self.data_dir),
            LOAXA_SECRET_KEY="journey-secret-" + "x" * 40,
            LOAXA_ADMIN_PASSWORD=PASSWORD,
            # No network here: gTTS fails at once and text-to-speech uses espeak-ng.
            LOAXA_TTS_GTTS_ENDPOINT="http://127.0.0.1:9/",
            LOAXA_LOG_FORMAT="json",
            PYTHONPATH=str(ROOT),
        )
        server = os.environ.get("LOAXA_TEST_DATABASE_URL")
        if server:  # the suite's PostgreSQL half: a database of this run's own
            from tests.conftest import _create_pg_database

            url, self.pg_database = _create_pg_database(server)
            self.env["LOAXA_DATABASE_URL"] = url
        self.loaxa("migrate")
        self.loaxa("seed-demo")
        for name, role in ((EDITOR, "editor"), (APPROVER, "approver")):
            self.loaxa("user", "add", name, "--role", role, "--station", "1",
                       env={"LOAXA_PASSWORD": PASSWORD})
        self.port = _free_port()
        self.log_path = self.data_dir / "up.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "up", "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log_path.read_text(errors="replace"))
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        server = os.environ.get("LOAXA_TEST_DATABASE_URL")
        if server and self.pg_database:
            from tests.conftest import _drop_pg_database

            _drop_pg_database(server, self.pg_database)

    def token(self, username: str) -> dict[str, str]:
        r = httpx.post(f"{self.base}/api/v1/auth/token",
                       data={"username": username, "password": PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def wait_for_plan(self, timeout: float = 90) -> dict[str, Any]:
        """The column being prepared, once the scheduler's rolling plan has made it."""
        headers = self.token(APPROVER)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            year = time.gmtime().tm_year
            found = []
            for y in (year, year + 1):
                r = httpx.get(f"{self.base}/api/v1/broadcasts", headers=headers,
                              params={"programme": "cchc", "year": y, "limit": 50})
                found += r.json()["items"]
            ahead = [b for b in found if b["status"] == "planned"
                     and b["starts_at"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())]
            if ahead:
                return min(ahead, key=lambda b: b["starts_at"])  # type: ignore[no-any-return]
            time.sleep(1)
        raise AssertionError("the scheduler made no CCHC column ahead within the timeout")

    def state(self) -> dict[str, Any]:
        """What a repeated post would change: segments, rundowns, masters, acknowledgements."""
        headers = self.token(APPROVER)
        segments = httpx.get(f"{self.base}/api/v1/segments", headers=headers,
                             params={"limit": 100}).json()
        year = time.gmtime().tm_year
        columns = []
        for y in (year, year + 1):
            found = httpx.get(f"{self.base}/api/v1/broadcasts", headers=headers,
                              params={"programme": "cchc", "year": y, "limit": 50})
            columns += found.json()["items"]
        return {
            "segments": sorted((s["id"], s["status"], s["audio_sha256"], s["version"])
                               for s in segments["items"]),
            "columns": sorted((b["id"], b["status"], b["master_sha256"], b["version"])
                              for b in columns),
        }

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def requests_since(self, offset: int) -> list[dict[str, Any]]:
        """The access log's lines written since `offset` (method, path, status, duration)."""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "duration_ms" in entry and "path" in entry:
                found.append(entry)
        return found


@contextmanager
def running_commune(data_dir: Path) -> Iterator[Commune]:
    commune = Commune(data_dir)
    try:
        commune.start()
        yield commune
    finally:
        commune.stop()


@dataclass
class Step:
    name: str
    actions: int
    requests: list[dict[str, Any]]

    @property
    def server_ms(self) -> float:
        return sum(float(r["duration_ms"]) for r in self.requests)


@dataclass
class Hands:
    """One person's phone: taps and fields filled are counted, step by step."""

    page: Any
    commune: Commune
    actions: int = 0
    steps: list[Step] = field(default_factory=list)
    shots: Path | None = None
    after_post: Callable[[], None] | None = None
    _offset: int = 0
    _counted: int = 0

    def tap(self, locator: Any, **kwargs: Any) -> None:
        locator.click(**kwargs)
        self.actions += 1

    def fill(self, locator: Any, text: str) -> None:
        locator.fill(text)
        self.actions += 1

    def begin(self) -> None:
        self._offset, self._counted = self.commune.log_offset(), self.actions

    def end(self, name: str) -> Step:
        """Close a step: its actions and the requests the server logged meanwhile."""
        self.page.wait_for_load_state()
        time.sleep(0.3)  # the access log line is written after the answer
        step = Step(name, self.actions - self._counted, self.commune.requests_since(self._offset))
        self.steps.append(step)
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(self.shots / f"journey-{len(self.steps):02d}-{name}.png"),
                                 full_page=True)
        return step


def new_phone(browser: Any, base: str) -> Any:
    context = browser.new_context(base_url=base, viewport={"width": 360, "height": 800},
                                  locale="vi-VN")
    return context.new_page()


@dataclass
class Outcome:
    editor: Hands
    approver: Hands
    column: dict[str, Any]
    reloads: int = 0  # reloads after a post that were checked to change nothing

    @property
    def actions(self) -> int:
        return self.editor.actions + self.approver.actions

    @property
    def steps(self) -> list[Step]:
        return self.editor.steps + self.approver.steps


def first_month(
    commune: Commune,
    browser: Any,
    segments: list[tuple[str, str]],
    *,
    shots: Path | None = None,
    check_reloads: bool = True,
    refusal: bool = True,
) -> Outcome:
    """The editor adds the segments for the column being prepared, each saved, read by the
    machine voice and submitted in one tap ("Gửi duyệt, thêm bài khác"); the approver ticks
    them all on Trang chủ and approves them together, lets "Tự động xếp" fill the rundown,
    and saves and assembles it in one tap ("Lưu và ghép"). With `check_reloads`, every
    post is followed by a reload that must change nothing; with `refusal`, the approver
    first presses "Ghép buổi phát" on the empty column (refused, then reloaded: nothing
    made)."""
    from playwright.sync_api import expect

    column = commune.wait_for_plan()
    month = column["local_month"]
    mm_yyyy = f"{month[5:]}/{month[:4]}"
    outcome = Outcome(
        Hands(new_phone(browser, commune.base), commune, shots=shots),
        Hands(new_phone(browser, commune.base), commune, shots=shots),
        column,
    )

    def reload_changes_nothing(hands: Hands) -> None:
        if not check_reloads:
            return
        before = commune.state()
        hands.page.reload()
        hands.page.wait_for_load_state()
        assert commune.state() == before, f"a reload after {hands.steps[-1].name} changed things"
        outcome.reloads += 1

    def sign_in(hands: Hands, username: str) -> None:
        page = hands.page
        page.goto("/")  # the address typed or bookmarked: not counted
        hands.begin()
        hands.fill(page.get_by_label("Tên đăng nhập"), username)
        hands.fill(page.get_by_label("Mật khẩu"), PASSWORD)
        hands.tap(page.get_by_role("button", name="Đăng nhập"))
        expect(page.get_by_role("heading", name="Trang chủ")).to_be_visible()
        hands.end(f"{username}-sign-in")

    # --- the editor (Ban văn hóa)
    ed = outcome.editor
    page = ed.page
    sign_in(ed, EDITOR)
    coming = page.locator("#next")
    expect(coming).to_contain_text(f"tháng {mm_yyyy}")
    ed.begin()
    ed.tap(page.locator("#next").get_by_role("button", name="Thêm tin bài"))
    ed.end("editor-new-form")
    for n, (title, script) in enumerate(segments, 1):
        last = n == len(segments)
        ed.begin()
        expect(page.get_by_label("Tháng phát")).to_have_value(month)
        ed.fill(page.get_by_label("Tiêu đề"), title)
        ed.fill(page.get_by_label("Nội dung"), script)
        # One tap saves, reads the script with the machine voice and submits; all but the
        # last land on a fresh form for the same month.
        button = "Lưu và gửi duyệt" if last else "Gửi duyệt, thêm bài khác"
        # Reading a long script aloud takes a while: the click waits for its navigation.
        ed.tap(page.get_by_role("button", name=button, exact=True), timeout=300_000)
        expect(page.get_by_role("status").first).to_contain_text(
            "gửi duyệt", timeout=180_000)
        if last:
            expect(page.get_by_role("heading", name=title)).to_be_visible()
        ed.end(f"editor-add-{n}")
        reload_changes_nothing(ed)
    ed.begin()
    ed.tap(page.get_by_role("link", name="Đăng xuất"))
    expect(page.get_by_label("Tên đăng nhập")).to_be_visible()
    ed.end("editor-sign-out")

    # --- the approver (Văn phòng UBND)
    ap = outcome.approver
    page = ap.page
    sign_in(ap, APPROVER)
    expect(page.locator("#next")).to_contain_text(
        f"{len(segments)} tin bài chờ duyệt" if len(segments) > 1 else "1 chờ duyệt")
    ap.begin()
    ap.tap(page.locator("#todo").get_by_role("link", name="Chọn tất cả"))
    for title, _script in segments:
        expect(page.get_by_role("checkbox", name=f"Chọn để duyệt: {title}")).to_be_checked()
    ap.tap(page.get_by_role("button", name="Duyệt các tin bài đã chọn"))
    expect(page.get_by_role("status").first).to_contain_text("Đã duyệt")
    ap.end("approver-approve")
    reload_changes_nothing(ap)
    if refusal:
        # A detour: the column's page and "Ghép buổi phát" while its rundown is empty.
        page.locator("#next h3 a").click()
        page.get_by_role("button", name="Ghép buổi phát").click()
        expect(page.locator("#assemble-error")).to_contain_text("chưa có tin bài")
        before = commune.state()
        page.reload()
        assert commune.state() == before, "a reload after a refused assembly changed things"
        outcome.reloads += 1
        page.get_by_role("link", name="Trang chủ", exact=True).click()
    ap.begin()
    ap.tap(page.locator("#next").get_by_role("button", name="Tự động xếp"))
    proposal = page.locator("#proposal")
    for title, _script in segments:
        expect(proposal).to_contain_text(title)
    ap.end("approver-autofill")
    ap.begin()
    ap.tap(page.get_by_role("button", name="Lưu và ghép"), timeout=300_000)
    expect(page.get_by_role("status").first).to_contain_text(
        "Đã lưu thứ tự phát và ghép buổi phát", timeout=300_000)
    expect(page.locator(".band-total.ok")).to_have_count(1)
    expect(page.locator("#master audio")).to_be_visible()
    ap.end("approver-save-and-assemble")
    reload_changes_nothing(ap)
    return outcome
