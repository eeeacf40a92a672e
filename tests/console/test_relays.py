"""The console's relays: an admin adds and edits one in Quản trị ("Tiếp sóng"), listens to
a stream first ("Nghe thử"), bad input is refused in words with what was typed kept;
approvers see today's relays on Trang chủ; Báo cáo shows the relay rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app import clock
from app.db import unit_of_work
from app.stations.models import Programme
from tests.console.helpers import post, refused

CLOSED = "http://127.0.0.1:9/vov1"


def _relays(sid: int) -> list[Programme]:
    with unit_of_work(write=False) as s:
        return list(
            s.scalars(
                select(Programme).where(
                    Programme.station_id == sid, Programme.source_kind.is_not(None)
                )
            )
        )


def test_an_admin_adds_edits_and_listens_to_a_relay(
    as_role: Callable[[str], TestClient], station: dict[str, Any]
) -> None:
    sid = station["station_id"]
    admin = as_role("admin")
    page = admin.get(f"/admin/relays?station={sid}")
    assert page.status_code == 200 and "Đài chưa tiếp sóng chương trình nào." in page.text

    typed = {"name": "Tiếp sóng VOV1", "code": "vov1", "url": "ftp://vov.vn/1", "time": "06:00"}
    r = refused(admin, f"/admin/relays/{sid}", {**typed, "length": "30:00"})
    assert "Địa chỉ luồng phải bắt đầu bằng http:// hoặc https://." in r.text
    assert 'value="Tiếp sóng VOV1"' in r.text and 'value="vov1"' in r.text  # nothing lost
    assert _relays(sid) == []

    r = post(admin, f"/admin/relays/{sid}", {**typed, "url": CLOSED, "length": "30:00"})
    assert r.status_code == 303, r.text
    [relay] = _relays(sid)
    assert relay.cadence == {"kind": "daily", "time": "06:00"}
    assert relay.min_duration_ms == relay.max_duration_ms == 1_800_000
    page = admin.get(r.headers["location"])
    assert "Tiếp sóng VOV1" in page.text and "hằng ngày 06:00" in page.text

    r = refused(admin, f"/admin/relays/{sid}", {**typed, "url": CLOSED, "length": "30:00"})
    assert "vov1" in r.text  # the same code twice

    r = post(
        admin,
        f"/admin/relays/{sid}/vov1",
        {"name": "VOV1 buổi sáng", "url": CLOSED, "time": "05:30", "length": "45:00"},
    )
    assert r.status_code == 303, r.text
    [relay] = _relays(sid)
    assert relay.name == "VOV1 buổi sáng" and relay.cadence["time"] == "05:30"
    assert relay.max_duration_ms == 2_700_000

    heard = admin.get("/admin/relays/probe", params={"station": sid, "url": CLOSED})
    assert heard.status_code == 200
    assert "Không nghe được: không kết nối được tới máy chủ phát." in heard.text
    heard = admin.get("/admin/relays/probe", params={"station": sid, "url": "file:///etc"})
    assert "Địa chỉ luồng phải bắt đầu bằng http:// hoặc https://." in heard.text

    # The programmes page leaves relays to their own page.
    assert "Sửa lịch và thời lượng của VOV1" not in admin.get("/admin/station").text
    assert as_role("approver").get(f"/admin/relays?station={sid}").status_code == 403


def test_approvers_see_today_s_relays_and_the_report_their_rows(
    as_role: Callable[[str], TestClient], station: dict[str, Any]
) -> None:
    sid = station["station_id"]
    admin = as_role("admin")
    r = post(
        admin,
        f"/admin/relays/{sid}",
        {"name": "VOV1", "code": "vov1", "url": CLOSED, "time": "06:00", "length": "30:00"},
    )
    assert r.status_code == 303, r.text
    starts = datetime(2024, 3, 16, 6, 0, tzinfo=UTC) - timedelta(hours=7)
    clock.set_now(lambda: starts - timedelta(hours=1))
    from app.accounts.models import User
    from app.schedule import service as schedule

    with unit_of_work() as s:
        approver = s.scalars(select(User).where(User.username == "approver1")).one()
        bid = schedule.create_broadcast(
            s, programme_code="vov1", station_id=sid, starts_at=starts, actor=approver
        ).id
    home = as_role("approver").get("/")
    assert "Tiếp sóng hôm nay" in home.text and "VOV1: 06:00" in home.text
    # Lịch phát counts the month's relay slots, and lists them when the month is opened.
    calendar = as_role("viewer").get("/schedule", params={"year": 2024})
    assert "Tiếp sóng: 1 buổi" in calendar.text and "chưa đến giờ" in calendar.text
    opened = as_role("viewer").get("/schedule", params={"month": "2024-03"})
    assert f'href="/schedule/{bid}"' in opened.text
    assert as_role("viewer").get(f"/schedule/{bid}").status_code == 200
    clock.set_now(lambda: datetime(2024, 4, 2, tzinfo=UTC))
    report = as_role("viewer").get("/reports", params={"year": 2024, "month": 3})
    assert report.status_code == 200
    assert "Tiếp sóng đài cấp trên" in report.text and "0 / 1" in report.text
