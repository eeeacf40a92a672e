"""The console in a real browser: Debian's chromium driven by Playwright, against a real
loaxa server (uvicorn in a subprocess, its own SQLite data directory, migrated and seeded).

Walks the editor → approver journey at phone (360 px) and desktop (1280 px) width, records
a segment with Chromium's fake microphone and checks the stored audio through the API,
and checks a CSRF refusal, the role walls and the English switch where a person meets
them. A screenshot of each page goes to var/screenshots/ (gitignored) for a person to look
at. These tests fail, never skip, when chromium is missing: scripts/bootstrap.sh installs
it (apt), and `playwright install` is never run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
SETUP = f"""
from app import migrations
from app.accounts import service as accounts
from app.accounts.models import Role
from app.config import get_settings
from app.db import unit_of_work
from app.demo import seed_demo
from app.schedule.planning import plan_year
from app import clock

migrations.upgrade(get_settings().sqlalchemy_url)
with unit_of_work() as db:
    station_id = seed_demo(db).station_id
    for name, role in (("editor1", Role.editor), ("approver1", Role.approver),
                       ("viewer1", Role.viewer)):
        accounts.create_user(db, username=name, password={PASSWORD!r}, role=role,
                             station_id=station_id)
    plan_year(db, station_id=station_id, year=clock.now().year)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded loaxa server on a free loopback port; its base URL."""
    data_dir = tmp_path_factory.mktemp("browser-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOAXA_")}
    env.update(
        LOAXA_DATA_DIR=str(data_dir),
        LOAXA_SECRET_KEY="browser-test-secret-" + "x" * 40,
        LOAXA_ADMIN_PASSWORD=PASSWORD,
        # No network here: gTTS fails at once and text-to-speech uses espeak-ng.
        LOAXA_TTS_GTTS_ENDPOINT="http://127.0.0.1:9/",
        PYTHONPATH=str(ROOT),
    )
    subprocess.run([sys.executable, "-c", SETUP], env=env, cwd=ROOT, check=True)
    port = _free_port()
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded machine imports slowly
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data_dir / "server.log").read_text(errors="replace"))
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _tone(path: Path, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=523:duration={seconds}", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )
    return path


class Person:
    """One person at one screen width, in their own browser context."""

    def __init__(self, browser: object, base: str, width: int) -> None:
        height = 800 if width < 600 else 900
        self.context = browser.new_context(  # type: ignore[attr-defined]
            base_url=base, viewport={"width": width, "height": height}, locale="vi-VN",
            permissions=["microphone"],
        )
        self.page = self.context.new_page()
        self.width = width
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def sign_in(self, username: str) -> None:
        page = self.page
        page.goto("/")
        page.get_by_label("Tên đăng nhập").fill(username)
        page.get_by_label("Mật khẩu").fill(PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        page.get_by_role("link", name="Đăng xuất").wait_for()

    def sign_out(self) -> None:
        self.page.get_by_role("link", name="Đăng xuất").click()
        self.page.get_by_label("Tên đăng nhập").wait_for()

    def shot(self, name: str) -> None:
        """Save the page (full length) and check nothing scrolls sideways."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.width}-{name}.png"), full_page=True)
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {self.width}px"

    def close(self) -> None:
        assert not self.errors, self.errors  # no CSP violation, no script error
        self.context.close()


def _bearer(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _approved_segment(base: str, title: str) -> int:
    """A segment written, submitted and approved through the JSON API."""
    editor, approver = _bearer(base, "editor1"), _bearer(base, "approver1")
    created = httpx.post(f"{base}/api/v1/segments", headers=editor, json={
        "title": title, "programme": "cchc", "topic": "policy", "script": "Kính thưa bà con."})
    segment_id = int(created.json()["id"])
    httpx.post(f"{base}/api/v1/segments/{segment_id}/submit", headers=editor).raise_for_status()
    httpx.post(f"{base}/api/v1/segments/{segment_id}/approve", headers=approver).raise_for_status()
    return segment_id


def _api_segment(base: str, segment_id: int) -> dict[str, object]:
    headers = _bearer(base, "editor1")
    segment = httpx.get(f"{base}/api/v1/segments/{segment_id}", headers=headers).json()
    sha = segment["audio_sha256"]
    if sha:
        audio = httpx.get(f"{base}/api/v1/audio/{sha}", headers=headers)
        assert audio.status_code == 200 and len(audio.content) > 1000
    return segment  # type: ignore[no-any-return]


@pytest.mark.parametrize("width", [360, 1280])
def test_editor_writes_uploads_submits_and_approver_approves(
    browser: object, server: str, width: int, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    editor = Person(browser, server, width)
    page = editor.page
    editor.sign_in("editor1")
    editor.shot("home-editor")
    page.get_by_role("link", name="Tin bài").click()
    page.get_by_role("button", name="Thêm tin bài").click()
    title = f"Kết quả chỉ số PAPI năm 2023 ({width})"
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Chủ đề").select_option("indices")
    page.get_by_label("Tháng phát").fill("2024-03")
    page.get_by_label("Nội dung").fill("Kính thưa bà con, ngày 15/3 UBND xã công bố chỉ số PAPI.")
    page.get_by_label("Tệp âm thanh").set_input_files(str(_tone(tmp_path / "ban-tin.wav", 3)))
    editor.shot("segment-new")
    page.get_by_role("button", name="Lưu", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Đã tạo tin bài")
    expect(page.locator("dd").filter(has_text="00:03")).to_be_visible()
    expect(page.locator("dd").filter(has_text="đạt chuẩn")).to_be_visible()  # not "LUFS"
    editor.shot("segment-editor")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã gửi duyệt")
    segment_url = page.url
    editor.sign_out()
    editor.close()

    approver = Person(browser, server, width)
    page = approver.page
    approver.sign_in("approver1")
    expect(page.get_by_role("link", name=title)).to_be_visible()  # waiting on the home page
    approver.shot("home-approver")
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("link", name="Trả lại kèm lý do…")).to_be_visible()
    expect(page.get_by_label("Lý do")).to_have_count(0)  # its own step: "Duyệt" drops nothing
    approver.shot("segment-approver")
    page.get_by_role("button", name="Duyệt").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã duyệt")
    page.get_by_role("link", name="Tin bài").click()
    approver.shot("segments")
    approver.close()
    assert segment_url.startswith(server)


def test_record_in_the_browser_with_the_fake_microphone(
    browser: object, server: str
) -> None:
    from playwright.sync_api import expect

    editor = Person(browser, server, 360)
    page = editor.page
    editor.sign_in("editor1")
    page.goto("/segments/new")
    page.get_by_label("Tiêu đề").fill("Thông báo lịch tiếp công dân (ghi âm)")
    page.get_by_role("button", name="Lưu", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Đã tạo tin bài")
    segment_id = int(re.search(r"/segments/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    page.get_by_role("button", name="Ghi âm").click()
    expect(page.get_by_role("button", name="Dừng")).to_be_enabled()
    page.wait_for_timeout(2500)
    page.get_by_role("button", name="Dừng").click()
    save = page.get_by_role("button", name="Gửi bản ghi")
    expect(save).to_be_visible()
    editor.shot("segment-recorded")
    save.click()
    expect(page.get_by_role("status").first).to_contain_text("Đã gắn tệp âm thanh")
    stored = _api_segment(server, segment_id)
    assert stored["duration_ms"] and int(stored["duration_ms"]) > 1000  # type: ignore[call-overload]
    assert stored["audio_sha256"]
    editor.close()


def test_csrf_refusal_role_walls_and_english_in_the_browser(
    browser: object, server: str
) -> None:
    from playwright.sync_api import expect

    editor = Person(browser, server, 1280)
    page = editor.page
    editor.sign_in("editor1")
    page.goto("/segments/new")
    page.get_by_label("Tiêu đề").fill("Tin bị giả mạo token")
    page.locator("input[name=csrf_token]").evaluate("el => el.value = 'forged'")
    page.get_by_role("button", name="Lưu", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Biểu mẫu đã hết hạn")
    expect(page.get_by_label("Tiêu đề")).to_have_value("Tin bị giả mạo token")
    editor.shot("csrf-refused")
    assert [e for e in editor.errors if "403" not in e] == []  # the refusal page is a 403
    editor.errors.clear()
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name="Segments")).to_be_visible()
    page.goto("/segments")
    expect(page.get_by_role("button", name="Add a segment")).to_be_visible()
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_role("button", name="Thêm tin bài")).to_be_visible()
    editor.close()

    segment_id = _approved_segment(server, "Tin đã duyệt cho lãnh đạo xem")
    viewer = Person(browser, server, 360)
    viewer.sign_in("viewer1")
    viewer.page.goto("/segments?status=approved")
    viewer.page.get_by_role("link", name="Tin đã duyệt cho lãnh đạo xem").click()
    assert viewer.page.url.endswith(f"/segments/{segment_id}")
    expect(viewer.page.get_by_role("button", name="Duyệt")).to_have_count(0)
    viewer.shot("segment-viewer")
    status = viewer.page.evaluate(
        """async () => {
            const token = document.querySelector('a[href^="/signout?csrf="]').href.split('=')[1];
            const body = new URLSearchParams({csrf_token: token});
            const r = await fetch(location.pathname + '/approve', {method: 'POST', body});
            return r.status;
        }"""
    )
    assert status == 403
    viewer.errors.clear()  # the browser logs the refused fetch: that 403 is the point
    viewer.close()
