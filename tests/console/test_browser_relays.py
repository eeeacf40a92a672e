"""Tiếp sóng in a real browser at 360 px: an admin listens to a stream ("Nghe thử"), sees
why it cannot be heard, adds a relay ("Tiếp sóng") and finds it listed once, also after a
reload. Same server and chromium as tests/console/test_browser.py
(fails, never skips, without chromium)."""

from __future__ import annotations

import pytest

from tests.console.test_browser import Person, browser, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

CLOSED = "http://127.0.0.1:9/vov1"


def test_admin_adds_a_relay_after_listening(
    browser: object,  # noqa: F811
    server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    admin = Person(browser, server, 360)
    page = admin.page
    admin.sign_in("admin")
    page.goto("/admin")
    page.get_by_role("link", name="Các chương trình tiếp sóng").click()
    page.get_by_label("Địa chỉ luồng").first.fill(CLOSED)
    page.get_by_role("button", name="Nghe thử").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Không nghe được: không kết nối được tới máy chủ phát."
    )
    admin.shot("relays-probe")

    page.get_by_label("Tên chương trình").fill("Tiếp sóng VOV1 buổi sáng")
    page.get_by_label("Mã").fill("vov1")
    page.locator("#url").fill(CLOSED)
    page.get_by_label("Giờ phát").fill("06:00")
    page.get_by_label("Thời lượng (phút:giây)").fill("30:00")
    page.get_by_role("button", name="Tiếp sóng", exact=True).click()
    expect(page.get_by_role("heading", name="Tiếp sóng VOV1 buổi sáng")).to_be_visible()
    expect(page.get_by_text("hằng ngày 06:00")).to_be_visible()
    page.reload()  # a reload after the save posts nothing again
    expect(page.get_by_role("heading", name="Tiếp sóng VOV1 buổi sáng")).to_have_count(1)
    admin.shot("relays-added")
    admin.close()
