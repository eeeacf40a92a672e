"""Thiết bị, Phát khẩn cấp and Quản trị: role walls, the token shown once, the two-step
emergency watched as devices pick it up, and the admin's forms."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import unit_of_work
from app.devices.models import Device
from app.playout.models import Emergency
from tests.console.helpers import post, refused, sign_in
from tests.helpers import PASSWORD, login
from tests.playout.helpers import approved_segment, device, pink

ClientFactory = Callable[[], TestClient]
RoleClient = Callable[[str], TestClient]
EMERGENCIES = "/api/v1/playout/emergencies"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pink(tmp_path_factory.mktemp("clips") / "a.mp3", 2)


def api(browser_client: ClientFactory) -> tuple[TestClient, dict[str, dict[str, str]]]:
    client = browser_client()
    return client, {
        r: login(client, "admin" if r == "admin" else f"{r}1")
        for r in ("editor", "approver", "admin", "viewer")
    }


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        ("viewer", "/devices", False),
        ("editor", "/devices", False),
        ("approver", "/devices", True),
        ("viewer", "/emergency", False),
        ("editor", "/emergency", False),
        ("approver", "/emergency", True),
        ("approver", "/admin", False),
        ("approver", "/admin/station", False),
        ("admin", "/admin", True),
        ("admin", "/admin/station", True),
    ],
)
def test_role_walls(as_role: RoleClient, role: str, path: str, allowed: bool) -> None:
    r = as_role(role).get(path)
    assert r.status_code == (200 if allowed else 403), r.text
    if not allowed:
        assert "Không có quyền" in r.text


def test_menu_shows_each_role_its_pages(as_role: RoleClient) -> None:
    def links(role: str) -> set[str]:
        html = as_role(role).get("/").text
        return set(re.findall(r'<li><a href="(/[a-z]*)"', html))

    assert {"/devices", "/emergency", "/admin"} & links("editor") == set()
    assert {"/devices", "/emergency"} <= links("approver") and "/admin" not in links("approver")
    assert {"/devices", "/emergency", "/admin"} <= links("admin")


def test_forged_posts_get_403(as_role: RoleClient, station: dict[str, Any]) -> None:
    editor = as_role("editor")
    assert post(editor, "/emergency/confirm", {"segment_id": "1"}).status_code == 403
    approver = as_role("approver")
    r = post(approver, "/devices/new", {"name": "x", "place": str(station["station_id"])})
    assert r.status_code == 403
    assert post(approver, "/admin/users/new", {"username": "x"}).status_code == 403


def test_admin_adds_a_device_and_sees_its_token_once(
    as_role: RoleClient, station: dict[str, Any], browser_client: ClientFactory
) -> None:
    admin = as_role("admin")
    page = admin.get("/devices")
    assert "Thêm máy phát" in page.text and "Chưa có máy phát nào." in page.text
    village = station["village_ids"][0]
    place = f"{station['station_id']}:{village}"
    # Without the form's token: refused, nothing created, what was typed kept.
    r = admin.post("/devices/new", data={"name": "Máy thôn 1", "place": place})
    assert r.status_code == 403 and 'value="Máy thôn 1"' in r.text
    r = post(admin, "/devices/new", {"name": "Máy thôn 1", "place": place})
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    token = re.search(r'id="device-token">(dev_[A-Za-z0-9_-]+)<', r.text)
    assert token and "chỉ hiện một lần" in r.text
    # The token works for the device, and no page shows it again.
    poll = browser_client().get(EMERGENCIES, headers={"Authorization": f"Bearer {token[1]}"})
    assert poll.status_code == 200
    listed = admin.get("/devices").text
    assert token[1] not in listed and "Máy thôn 1" in listed and "Thôn 1" in listed
    assert "Đang kết nối" in listed  # it just polled
    assert refused(admin, "/devices/new", {"name": "", "place": place}).status_code == 422
    # A reload of the token page posts the form again: no second device, and it says why.
    again = post(admin, "/devices/new", {"name": "Máy thôn 1", "place": place})
    assert again.status_code == 303 and again.headers["location"] == "/devices"
    assert "vừa được thêm rồi" in admin.get("/devices").text
    with unit_of_work(write=False) as db:
        assert db.scalar(select(func.count()).select_from(Device)) == 1


def test_device_health_in_words(
    as_role: RoleClient, station: dict[str, Any], browser_client: ClientFactory
) -> None:
    client, h = api(browser_client)
    pc = device(client, h["admin"], station["station_id"])
    device(client, h["admin"], station["station_id"], station["village_ids"][1])
    client.get(
        EMERGENCIES,
        headers={
            **pc["h"],
            "X-Loaxa-Agent-Version": "1.4.2",
            "X-Loaxa-Free-Disk-Bytes": str(5 * 1024**3),
            "X-Loaxa-Push": "connected",
        },
    )
    html = as_role("approver").get("/devices").text
    assert "1.4.2" in html and "5,0 GB" in html
    # Push, as the agent reported it (issue 25); the other device never said.
    assert "Nhận lệnh tức thời" in html and "có, nhận lệnh ngay" in html and "chưa rõ" in html
    assert "Đang kết nối" in html and "Chưa kết nối lần nào" in html
    assert "Thêm máy phát" not in html  # approvers see; admins add


def test_emergency_two_steps_then_watch_devices_pick_it_up(
    as_role: RoleClient, station: dict[str, Any], browser_client: ClientFactory, clip: Path
) -> None:
    client, h = api(browser_client)
    sid, (v1, v2, _v3) = station["station_id"], station["village_ids"]
    seg = approved_segment(client, h, clip, title="Bão số 3: sơ tán")
    pc1 = device(client, h["admin"], sid, v1)
    pc2 = device(client, h["admin"], sid, v2)
    approver = as_role("approver")

    page = approver.get("/emergency")
    assert "Bão số 3: sơ tán" in page.text
    choice = {"segment_id": str(seg["id"]), "scope": "villages", "village_ids": [str(v1)]}
    # Step one without the token: refused, the choice kept.
    r = approver.post("/emergency/confirm", data=choice)
    assert r.status_code == 403 and 'value="villages" checked' in r.text
    r = refused(approver, "/emergency/confirm", {"segment_id": str(seg["id"]), "scope": "villages"})
    assert r.status_code == 422 and "ít nhất một thôn" in r.text
    r = post(approver, "/emergency/confirm", choice)
    assert r.status_code == 200 and "Phát ngay" in r.text and "PC " + str(v1) in r.text
    assert "PC " + str(v2) not in r.text
    with unit_of_work(write=False) as db:
        assert db.scalar(select(func.count()).select_from(Emergency)) == 0  # not yet
    # Step two: on air.
    assert approver.post("/emergency", data=choice).status_code == 403
    r = post(approver, "/emergency", choice)
    assert r.status_code == 303
    watch = r.headers["location"]
    eid = int(watch.rsplit("/", 1)[1])
    html = approver.get(watch).text
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "0/1 máy đã nhận" in html and "Chưa nhận" in html

    # The village's device polls: the page shows it picked up, then started.
    assert [e["id"] for e in client.get(EMERGENCIES, headers=pc1["h"]).json()] == [eid]
    assert client.get(EMERGENCIES, headers=pc2["h"]).json() == []
    html = approver.get(watch).text
    assert "1/1 máy đã nhận" in html and "Đã nhận" in html and "Nhận lúc" in html
    e = client.get(f"/api/v1/emergencies/{eid}", headers=h["viewer"]).json()
    assert [d["device_id"] for d in e["deliveries"]] == [pc1["id"]]

    # "Hủy": asked once more, then stopped.
    ask = approver.get(f"/emergency/{eid}/cancel")
    assert ask.status_code == 200 and "Dừng phát" in ask.text
    assert approver.post(f"/emergency/{eid}/cancel", data={}).status_code == 403
    r = post(approver, f"/emergency/{eid}/cancel", {})
    assert r.status_code == 303
    html = approver.get(watch).text
    assert "Đã hủy" in html and 'http-equiv="refresh"' not in html
    assert client.get(EMERGENCIES, headers=pc1["h"]).json() == []


def test_admin_manages_users(as_role: RoleClient, browser_client: ClientFactory) -> None:
    admin = as_role("admin")
    bad = {"username": "x y", "password": "ngắn", "role": "editor"}
    r = refused(admin, "/admin/users/new", bad)
    assert r.status_code == 422 and 'value="x y"' in r.text
    r = post(admin, "/admin/users/new", {"username": "lan", "password": PASSWORD, "role": "editor"})
    assert r.status_code == 303
    user_page = r.headers["location"]
    assert "lan" in admin.get("/admin").text

    lan = browser_client()
    sign_in(lan, "lan")
    assert lan.get("/segments").status_code == 200
    assert post(admin, user_page + "/role", {"role": "approver"}).status_code == 303
    assert lan.get("/emergency").status_code == 200  # the new role counts at once
    assert post(admin, user_page + "/active", {"disabled": "1"}).status_code == 303
    assert "Đã khóa" in admin.get(user_page).text
    assert lan.get("/segments", follow_redirects=False).status_code == 303  # signed out
    assert post(admin, user_page + "/active", {"disabled": "0"}).status_code == 303
    new = "một-mật-khẩu-mới"
    assert post(admin, user_page + "/password", {"password": new}).status_code == 303
    login(browser_client(), "lan", new)

    # The last active admin cannot lock or demote themself.
    admin_id = re.search(r'href="/admin/users/(\d+)">admin<', admin.get("/admin").text)
    assert admin_id
    mine = f"/admin/users/{admin_id[1]}"
    r = refused(admin, mine + "/active", {"disabled": "1"})
    assert r.status_code == 409 and "last active admin" in r.text
    assert refused(admin, mine + "/role", {"role": "viewer"}).status_code == 409


def test_admin_sets_the_network_and_how_the_report_is_signed(
    as_role: RoleClient, station: dict[str, Any]
) -> None:
    # The fields of PATCH /api/v1/stations/{id} that the console lacked: the network kind
    # (from the next local day) and the report's number pattern, signer and recipients.
    from app.stations.models import Station
    from app.stations.network import network_state

    admin = as_role("admin")
    sid = station["station_id"]
    page = admin.get("/admin/station").text
    assert re.search(r'value="ip" checked', page)  # a new station's loudspeakers are networked
    details = {
        "name": "Xuân Phúc",
        "hotline": "",
        "network": "fm",
        "report_number_pattern": "{n}/BC-UBND",
        "report_signer_name": "Nguyễn Văn Bình",
        "report_signer_title": "Phó Chủ tịch",
        "report_recipients": "UBND huyện Quảng Xương;\r\n\r\n  Lưu: VT, VP.  \r\n",
    }
    assert post(admin, f"/admin/station/{sid}", details).status_code == 303
    page = admin.get("/admin/station").text
    assert "chuyển sang FM từ ngày" in page and re.search(r'value="fm" checked', page)
    with unit_of_work(write=False) as db:
        saved = db.get_one(Station, sid)
        assert network_state(saved).today == "ip" and network_state(saved).pending == "fm"
        assert saved.report_signer_name == "Nguyễn Văn Bình"
        assert saved.report_signer_title == "Phó Chủ tịch"
        assert saved.report_recipients == ["UBND huyện Quảng Xương;", "Lưu: VT, VP."]

    # A pattern without its number and a title too long for the signature block: 422 naming
    # the field, what was typed kept, nothing saved.
    bad = {**details, "report_number_pattern": "BC-UBND", "report_signer_name": "Trần Thị Hoa"}
    r = refused(admin, f"/admin/station/{sid}", bad)
    assert r.status_code == 422 and "Số hiệu văn bản" in r.text and 'value="BC-UBND"' in r.text
    r = refused(admin, f"/admin/station/{sid}", {**details, "report_signer_title": "Phó " * 10})
    assert r.status_code == 422 and "Chức vụ người ký" in r.text
    r = refused(admin, f"/admin/station/{sid}", {**details, "network": "dab"})
    assert r.status_code == 422 and "IP hoặc FM" in r.text

    # A form without the report's fields (a page loaded before they existed) keeps them.
    assert post(admin, f"/admin/station/{sid}", {"name": "Xuân Phúc"}).status_code == 303
    with unit_of_work(write=False) as db:
        assert db.get_one(Station, sid).report_signer_title == "Phó Chủ tịch"

    # Emptied fields restore the defaults; choosing IP again cancels the pending change.
    cleared = {**details, "network": "ip", "report_number_pattern": "", "report_recipients": ""}
    assert post(admin, f"/admin/station/{sid}", cleared).status_code == 303
    with unit_of_work(write=False) as db:
        saved = db.get_one(Station, sid)
        assert saved.report_number_pattern is None and saved.report_recipients is None
        assert saved.report_signer_name == "Nguyễn Văn Bình"
        assert network_state(saved).pending is None


def test_admin_edits_the_station_villages_and_programmes(
    as_role: RoleClient, station: dict[str, Any]
) -> None:
    admin = as_role("admin")
    sid = station["station_id"]
    page = admin.get("/admin/station")
    assert "Xuân Phúc" in page.text and "Asia/Ho_Chi_Minh" in page.text
    assert "hằng tháng: Thứ Bảy tuần thứ ba, 17:00" in page.text
    r = refused(admin, f"/admin/station/{sid}", {"name": "Xuân Phúc", "hotline": "abc"})
    assert r.status_code == 422 and 'value="abc"' in r.text
    r = post(admin, f"/admin/station/{sid}", {"name": "Xuân Phúc", "hotline": "0237 3868 999"})
    assert r.status_code == 303
    assert "0237 3868 999" in admin.get("/admin/station").text

    assert (
        post(admin, f"/admin/station/{sid}/villages", {"village_name": "Thôn Mới"}).status_code
        == 303
    )
    r = refused(admin, f"/admin/station/{sid}/villages", {"village_name": "Thôn Mới"})
    assert r.status_code == 409

    r = post(
        admin,
        f"/admin/station/{sid}/programmes/cchc",
        {
            "by": "week",
            "week": "-1",
            "weekday": "4",
            "time": "19:30",
            "min": "10:00",
            "max": "15:00",
        },
    )
    assert r.status_code == 303, r.text
    assert "hằng tháng: Thứ Sáu tuần cuối, 19:30" in admin.get("/admin/station").text
    r = refused(
        admin,
        f"/admin/station/{sid}/programmes/cchc",
        {
            "by": "week",
            "week": "3",
            "weekday": "5",
            "time": "17:00",
            "min": "15:00",
            "max": "10:00",
        },
    )
    assert r.status_code == 422 and 'value="15:00"' in r.text

    v1 = station["village_ids"][0]
    r = post(
        admin,
        f"/admin/station/{sid}/villages/{v1}/cadence",
        {"weekdays": ["2", "6"], "time": "06:00"},
    )
    assert r.status_code == 303
    assert "hằng tuần: Thứ Tư, Chủ nhật, 06:00" in admin.get("/admin/station").text
    r = post(admin, f"/admin/station/{sid}/villages/{v1}/cadence", {"clear": "1"})
    assert r.status_code == 303
    assert "hằng tuần: Thứ Tư" not in admin.get("/admin/station").text
