"""A segment's page on a 360 px phone, in a real browser (Debian's chromium, Playwright):
no traps, feedback while slow actions work, and a page that fits a phone.

- "Thêm tin bài" with a file that is not audio: the draft is saved once and its page says
  why the file was refused and that it must be chosen again; reloading creates nothing.
- "Đọc thử" and "Tải lên" show that they are working and cannot be pressed twice, then land
  at the player (#audio), not at the top of the page.
- Replacing audio asks first; the replaced audio comes back with "Khôi phục".
- "Tìm" finds the segment without diacritics.
The page's height at 360 px is measured (printed, and bounded). Screenshots go to
var/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import (  # noqa: F401  (module fixtures: server, browser)
    Person,
    _bearer,
    _tone,
    browser,
    server,
)

pytestmark = pytest.mark.browser


def _titled(base: str, title: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base}/api/v1/segments", params={"q": title, "limit": 100},
                  headers=_bearer(base, "editor1"))
    return [s for s in r.json()["items"] if s["title"] == title]


WATCH_BUSY = """(working) => {
  sessionStorage.removeItem("busy");
  const watch = new MutationObserver(() => {
    const button = [...document.querySelectorAll("button")]
      .find((b) => b.textContent.trim() === working);
    if (!button || sessionStorage.getItem("busy")) return;
    sessionStorage.setItem("busy", JSON.stringify({
      disabled: button.disabled, formBusy: button.form.getAttribute("aria-busy")}));
    button.click();                 // a second press...
    button.form.requestSubmit();    // ...and a second submit: both must send nothing
  });
  watch.observe(document.body, {subtree: true, childList: true, characterData: true,
                                attributes: true});
}"""


def busy(page: object, pattern: str, idle: str, working: str) -> None:
    """Press `idle`: while the server works, the button says `working` and is disabled, its
    form is aria-busy, and pressing or submitting again sends nothing (one POST)."""
    posts: list[str] = []
    page.on(  # type: ignore[attr-defined]
        "request", lambda r: r.method == "POST" and r.url.endswith(pattern) and posts.append(r.url)
    )
    page.evaluate(WATCH_BUSY, working)  # type: ignore[attr-defined]
    page.get_by_role("button", name=idle).click()  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('busy'))")  # type: ignore[attr-defined]
    assert seen == {"disabled": True, "formBusy": "true"}, seen
    assert len(posts) == 1, posts


def test_a_segment_on_a_phone_has_no_traps_and_says_when_it_works(
    browser: object, server: str, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    editor = Person(browser, server, 360)
    page = editor.page
    editor.sign_in("editor1")
    page.get_by_role("link", name="Tin bài").click()
    page.get_by_role("button", name="Thêm tin bài").click()
    title = "Kết quả giải quyết thủ tục hành chính tháng 3"
    page.get_by_label("Tiêu đề").fill(title)
    page.get_by_label("Nội dung").fill(
        "Kính thưa bà con, tháng 3 Bộ phận một cửa tiếp nhận 125 hồ sơ, đúng hạn 100%."
    )
    bogus = tmp_path / "bao-cao.pdf"
    bogus.write_bytes(b"%PDF-1.4\n" + b"0" * 4000)
    page.get_by_label("Tệp âm thanh").set_input_files(str(bogus))
    page.get_by_role("button", name="Lưu", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("không phải tệp âm thanh")
    expect(alert).to_contain_text("hãy chọn lại tệp")
    assert re.search(r"/segments/\d+#error$", page.url), page.url
    editor.shot("segment-file-refused")
    editor.errors.clear()  # the page that says so is a 422
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("không phải tệp âm thanh")
    editor.errors.clear()
    assert len(_titled(server, title)) == 1  # the reload created nothing twice
    segment_url = page.url.split("#")[0]

    page.goto(segment_url)  # the refusal is still said (422) until something succeeds here
    editor.errors.clear()
    tall = page.evaluate("document.documentElement.scrollHeight")
    print(f"\nsegment page at 360 px, draft with a script and no audio: {tall} px")
    editor.shot("segment-draft")

    # "Đọc thử": busy while it reads, pressing again sends nothing, then the page lands at
    # the player.
    busy(page, "/tts", "Đọc thử", "Đang đọc…")
    expect(page.get_by_role("status").first).to_contain_text("Đã tạo giọng đọc máy")
    assert page.url.endswith("#audio"), page.url
    expect(page.locator("#audio audio").first).to_be_in_viewport()
    expect(page.locator("#audio dd").filter(has_text="đạt chuẩn")).to_be_visible()
    editor.shot("segment-read-aloud")
    tall_audio = page.evaluate("document.documentElement.scrollHeight")
    print(f"segment page at 360 px, with audio: {tall_audio} px")
    assert tall_audio < 2750, "the page should fit a phone better than before (2 750-3 400 px)"

    # Replacing the audio asks first, and shows it is working.
    page.locator("#add-audio > summary").click()
    page.get_by_label("Tệp âm thanh").set_input_files(str(_tone(tmp_path / "ghi.wav", 3)))
    upload = page.get_by_role("button", name="Tải lên")
    upload.click()  # without the yes, the browser asks for it and nothing is sent
    expect(page.locator("#replace-file:invalid")).to_have_count(1)
    page.locator("#replace-file").check()
    busy(page, "/audio", "Tải lên", "Đang tải lên…")
    expect(page.get_by_role("status").first).to_contain_text("Đã gắn tệp âm thanh")
    assert page.url.endswith("#audio")
    expect(page.locator("#audio dd").filter(has_text="00:03")).to_be_visible()

    # The machine reading that was replaced comes back with "Khôi phục".
    page.locator("#earlier-audio > summary").click()
    editor.shot("segment-earlier-audio")
    page.get_by_role("button", name="Khôi phục").first.click()
    expect(page.get_by_role("status").first).to_contain_text("Đã khôi phục âm thanh cũ")
    expect(page.locator("#audio dd").filter(has_text="Giọng đọc máy")).to_be_visible()

    # "Tìm" without diacritics.
    page.get_by_role("link", name="Tin bài").click()
    page.get_by_role("searchbox", name="Tìm").fill("thu tuc hanh chinh")
    page.get_by_role("button", name="Tìm").click()
    expect(page.get_by_role("link", name=title)).to_be_visible()
    editor.shot("segments-search")
    editor.close()
