"""Phát khẩn cấp in a real browser at 360 px: an approver chooses, confirms, and watches a
device pick the emergency up (the device polls over HTTP, as the agent does); the admin's
device token page and the Quản trị pages are photographed too. Same server and chromium
as tests/console/test_browser.py (fails, never skips, without chromium)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import (  # noqa: F401  (fixtures)
    Person,
    _bearer,
    _tone,
    browser,
    server,
)

pytestmark = pytest.mark.browser


def _segment_with_audio(base: str, title: str, tmp_path: Path) -> int:
    editor, approver = _bearer(base, "editor1"), _bearer(base, "approver1")
    created = httpx.post(f"{base}/api/v1/segments", headers=editor, json={
        "title": title, "programme": "cchc", "topic": "emergency", "script": "Bão số 3."})
    segment_id = int(created.json()["id"])
    with _tone(tmp_path / "bao.wav", 3).open("rb") as fh:
        r = httpx.put(f"{base}/api/v1/segments/{segment_id}/audio", headers=editor,
                      files={"file": ("bao.wav", fh)}, timeout=60)
    r.raise_for_status()
    httpx.post(f"{base}/api/v1/segments/{segment_id}/submit", headers=editor).raise_for_status()
    httpx.post(f"{base}/api/v1/segments/{segment_id}/approve", headers=approver).raise_for_status()
    return segment_id


def test_approver_sends_an_emergency_and_sees_a_device_pick_it_up(
    browser: object, server: str, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    title = "Bão số 3: sơ tán khẩn cấp"
    _segment_with_audio(server, title, tmp_path)
    admin = _bearer(server, "admin")
    station_id = httpx.get(f"{server}/api/v1/stations", headers=admin).json()[0]["id"]
    made = httpx.post(f"{server}/api/v1/devices", headers=admin,
                      json={"name": "PC tại đài", "station_id": station_id}).json()
    agent = {"Authorization": f"Bearer {made['token']}", "X-Loaxa-Agent-Version": "1.4.2"}
    quiet = httpx.get(f"{server}/api/v1/playout/emergencies", headers=agent)
    assert quiet.json() == []

    approver = Person(browser, server, 360)
    page = approver.page
    approver.sign_in("approver1")
    page.get_by_role("link", name="Thiết bị").click()
    expect(page.get_by_role("heading", name="PC tại đài")).to_be_visible()
    approver.shot("devices")
    page.get_by_role("link", name="Phát khẩn cấp").click()
    compose = page.locator("#compose")  # the live form below has its own scope
    compose.get_by_label("Hoặc phát một tin bài đã duyệt").select_option(label=title)
    compose.get_by_label("Cả xã (máy ở đài và mọi thôn)").check()
    approver.shot("emergency-choose")
    page.get_by_role("button", name="Tiếp tục").click()
    expect(page.get_by_role("heading", name="Xác nhận phát khẩn cấp")).to_be_visible()
    expect(page.locator("dd").filter(has_text="PC tại đài")).to_be_visible()
    approver.shot("emergency-confirm")
    page.get_by_role("button", name="Phát ngay").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã phát lệnh khẩn cấp")
    expect(page.get_by_text("0/1 máy đã nhận")).to_be_visible()
    approver.shot("emergency-sent")

    # The agent polls with the ETag it had: the new list is a 200, its pickup recorded.
    polled = httpx.get(f"{server}/api/v1/playout/emergencies",
                       headers={**agent, "If-None-Match": quiet.headers["etag"]})
    assert polled.status_code == 200 and polled.json()[0]["title"] == title
    # The page refreshes itself (every 5 s) and shows the pickup.
    expect(page.get_by_text("1/1 máy đã nhận")).to_be_visible(timeout=12_000)
    expect(page.get_by_text("Nhận lúc")).to_be_visible()
    approver.shot("emergency-picked-up")

    page.get_by_role("button", name="Hủy").click()
    expect(page.get_by_role("heading", name="Hủy phát khẩn cấp")).to_be_visible()
    approver.shot("emergency-cancel")
    page.get_by_role("button", name="Hủy").click()
    expect(page.get_by_role("status").first).to_contain_text("Đã hủy phát khẩn cấp")
    assert httpx.get(f"{server}/api/v1/playout/emergencies", headers=agent).json() == []
    approver.close()


def test_admin_adds_a_device_and_manages_the_commune(
    browser: object, server: str  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    admin = Person(browser, server, 360)
    page = admin.page
    admin.sign_in("admin")
    page.get_by_role("link", name="Thiết bị").click()
    page.get_by_label("Tên máy").fill("Máy phát thôn Đông")
    page.get_by_label("Nơi đặt").select_option(index=1)
    page.get_by_role("button", name="Thêm máy phát").click()
    token = page.locator("#device-token").inner_text()
    assert token.startswith("dev_")
    admin.shot("device-token")
    page.get_by_role("button", name="Đã chép xong").click()
    assert token not in page.content()
    page.get_by_role("link", name="Quản trị").click()
    admin.shot("admin-users")
    page.get_by_role("link", name="editor1").click()
    admin.shot("admin-user")
    page.get_by_role("link", name="Đài, thôn và chuyên mục").click()
    expect(page.get_by_label("Tên xã")).to_be_visible()
    admin.shot("admin-station")
    admin.close()
