"""Thiết bị: "Thu hồi" (asked once more first) and "Cấp mã mới" (issue 21, finding 7)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.console.helpers import post
from tests.helpers import login
from tests.playout.test_device_revoke import _device, _polls


def test_thu_hoi_asks_first_then_the_token_is_dead_and_cap_ma_moi_shows_the_new_one(
    as_role: Callable[[str], TestClient], station: dict[str, object]
) -> None:
    admin_page = as_role("admin")
    api = admin_page  # the same app: the API answers bearer tokens
    headers = login(api, "admin")
    device_id, token = _device(api, headers, int(station["station_id"]))  # type: ignore[call-overload]
    page = admin_page.get("/devices").text
    assert "Thu hồi" in page and "Cấp mã mới" in page
    # The first press only asks.
    r = post(admin_page, f"/devices/{device_id}/revoke", {})
    assert r.status_code == 200 and "Thu hồi mã của máy “PC Đài xã”?" in r.text
    assert _polls(api, token) == 200
    r = post(admin_page, f"/devices/{device_id}/revoke", {"confirm": "yes"})
    assert r.status_code == 303
    assert "Đã thu hồi mã của thiết bị" in admin_page.get("/devices").text
    assert _polls(api, token) == 401
    # "Cấp mã mới": the answer shows the token once; it works.
    r = post(admin_page, f"/devices/{device_id}/token", {})
    assert r.status_code == 200 and "Mã mới của thiết bị" in r.text
    shown = re.search(r'id="device-token">(dev_[A-Za-z0-9_-]+)<', r.text)
    assert shown and _polls(api, shown.group(1)) == 200
    assert shown.group(1) not in admin_page.get("/devices").text
    # Approvers see the devices, not the buttons, and cannot post them.
    approver = as_role("approver")
    assert "Thu hồi" not in approver.get("/devices").text
    assert post(approver, f"/devices/{device_id}/revoke", {"confirm": "yes"}).status_code == 403
    assert _polls(api, shown.group(1)) == 200
