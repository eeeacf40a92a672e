"""Lịch phát and Báo cáo in a real browser: approver → rundown → assemble → report → CSV,
at 360 px and 1280 px (fixtures and the Person helper from test_browser.py)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import Person, _bearer, browser, server  # noqa: F401

pytestmark = pytest.mark.browser


def _noise(path: Path, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"anoisesrc=c=pink:a=0.05:r=22050:d={seconds}", "-ac", "1",
         "-c:a", "libmp3lame", "-b:a", "48k", str(path)],
        check=True,
    )
    return path


def _approved_with_audio(base: str, title: str, audio: Path) -> int:
    editor, approver = _bearer(base, "editor1"), _bearer(base, "approver1")
    created = httpx.post(f"{base}/api/v1/segments", headers=editor, json={
        "title": title, "programme": "cchc", "topic": "progress", "script": "Kính thưa bà con."})
    sid = int(created.json()["id"])
    with audio.open("rb") as fh:
        r = httpx.put(f"{base}/api/v1/segments/{sid}/audio", headers=editor,
                      files={"file": ("a.mp3", fh)}, timeout=120)
    r.raise_for_status()
    httpx.post(f"{base}/api/v1/segments/{sid}/submit", headers=editor).raise_for_status()
    httpx.post(f"{base}/api/v1/segments/{sid}/approve", headers=approver).raise_for_status()
    return sid


@pytest.mark.parametrize("width", [360, 1280])
def test_approver_sets_the_rundown_assembles_and_downloads_the_report(
    browser: object, server: str, width: int, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    audio = _noise(tmp_path / "tin.mp3", 210)
    titles = [f"Tin {n} ({width})" for n in range(3)]
    for title in titles:
        _approved_with_audio(server, title, audio)
    now = datetime.now(UTC)
    # One broadcast per width: this month's column at 360 px, another month's at 1280 px.
    month = now.month if width == 360 else (now.month % 12) + 1 if now.month < 12 else 11
    key = f"{now.year}-{month:02d}"

    person = Person(browser, server, width)
    page = person.page
    person.sign_in("approver1")
    page.get_by_role("link", name="Lịch phát", exact=True).click()
    expect(page.locator(f"#m-{key}")).to_be_visible()
    person.shot("schedule")
    page.locator(f"#m-{key} ul.cal a").first.click()
    expect(page.get_by_role("button", name="Ghép buổi phát")).to_be_visible()

    page.get_by_role("group", name="Tin bài đã duyệt").get_by_label(titles[0]).check()
    page.get_by_role("button", name="Thêm vào buổi phát").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã lưu thứ tự phát")
    page.get_by_role("button", name="Ghép buổi phát").click()
    refusal = page.locator("#assemble-error")
    expect(refusal).to_contain_text("Chưa ghép được")
    expect(refusal).to_contain_text("còn thiếu")
    expect(page.locator(".band-total.off")).to_have_count(1)
    person.shot("broadcast-refused")
    # The refusal page answers 422, which the browser logs; nothing else may be logged.
    assert all("422" in e for e in person.errors), person.errors
    person.errors.clear()

    # The other two at once: several segments are ticked and added in one press.
    group = page.get_by_role("group", name="Tin bài đã duyệt")
    for title in titles[1:]:
        group.get_by_label(title).check()
    page.get_by_role("button", name="Thêm vào buổi phát").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã lưu thứ tự phát")
    expect(page.locator(".band-total.ok")).to_have_count(1)
    # No JavaScript needed: ↑ posts the order; then the keyboard (script) moves it back.
    page.get_by_role("button", name=f"Đưa lên: {titles[2]}").click()
    items = page.locator(".rundown-item .ri-title")
    expect(items.nth(1)).to_have_text(titles[2])
    total = page.locator(".band-total-text").inner_text()
    page.locator(".rundown-item").nth(1).focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(items.nth(2)).to_have_text(titles[2])
    assert page.locator(".band-total-text").inner_text() == total
    page.get_by_role("button", name="Lưu thứ tự").click()
    expect(items.nth(2)).to_have_text(titles[2])
    person.shot("broadcast-rundown")

    # Rendering eleven minutes of audio takes seconds, more on a busy shared machine.
    page.get_by_role("button", name="Ghép buổi phát").click(timeout=180_000)
    expect(page.get_by_role("status").first).to_contain_text("Đã ghép buổi phát", timeout=60_000)
    player = page.locator("#master audio")
    expect(player).to_be_visible()
    src = player.get_attribute("src")
    assert src and src.startswith("/files/audio/")
    duration = page.evaluate(
        """async (src) => { const a = new Audio(src); await new Promise((ok, ko) => {
             a.onloadedmetadata = ok; a.onerror = ko; }); return a.duration; }""",
        src,
    )
    assert 600 <= duration <= 900
    expect(page.get_by_role("table").first).to_contain_text(titles[0])
    person.shot("broadcast-assembled")

    page.get_by_role("link", name="Báo cáo", exact=True).click()
    expect(page.locator("svg.chart")).to_be_visible()
    person.shot("reports")
    # Every column of the report's tables in view, at 360 px too (a table may scroll
    # inside its frame, which the page-wide check above cannot see), and each month's
    # result shown once: under the month on a phone, in its own column on a desk.
    hidden = page.evaluate(
        """Array.from(document.querySelectorAll('.table-wrap'))
             .map(w => w.scrollWidth - w.clientWidth).filter(d => d > 0)"""
    )
    assert hidden == [], f"report tables scroll sideways by {hidden}px at {width}px"
    results = page.locator(".report-table.months tbody tr").first.locator(".status")
    expect(results.locator("visible=true")).to_have_count(1)
    with page.expect_download() as info:
        page.get_by_role("link", name="Tải CSV").click()
    body = Path(info.value.path()).read_bytes()
    assert "Tháng".encode() in body or b"month" in body.lower()
    assert info.value.suggested_filename.endswith(".csv")
    person.close()
