"""Lịch phát and Báo cáo: the calendar, the rundown (buttons without JavaScript), the
assemble refusal in words, role walls, the report page with its chart and downloads."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.accounts.models import User
from app.audio import service as audio
from app.console.report_views import RESULTS
from app.db import unit_of_work
from app.devices import service as devices
from app.devices.models import Device
from app.playout.models import AsRunEvent
from app.reports import formats
from app.reports.schemas import MonthResult
from app.schedule import service as schedule
from app.schedule.models import Broadcast
from app.schedule.planning import plan_year
from app.segments import service as segments
from app.stations.models import Village
from tests.console.helpers import post, refused

RoleClient = Callable[[str], TestClient]
YEAR = 2024


@pytest.fixture
def planned(station: dict[str, object]) -> dict[str, int]:
    """The year 2024 planned; three approved CCHC segments with (recorded) audio of 2 min."""
    station_id = int(station["station_id"])  # type: ignore[call-overload]
    ids: dict[str, int] = {}
    with unit_of_work() as db:
        editor = db.scalars(select(User).where(User.username == "editor1")).one()
        approver = db.scalars(select(User).where(User.username == "approver1")).one()
        plan_year(db, station_id=station_id, year=YEAR)
        for n in range(3):
            asset = audio.register_asset(
                db,
                sha256=hashlib.sha256(f"seg{n}".encode()).hexdigest(),
                duration_ms=120_000,
                loudness_lufs=-16.0,
                true_peak_dbtp=-2.0,
                size_bytes=1000,
                origin="upload",
            )
            db.flush()
            seg = segments.create_segment(
                db, user=editor, title=f"Tin số {n}", programme="cchc", topic="policy",
                script="Kính thưa bà con.", target_month="2024-03",
            )
            seg.audio_id = asset.id
            db.flush()
            segments.submit_segment(db, user=editor, segment=seg)
            segments.approve_segment(db, user=approver, segment=seg)
            ids[f"seg{n}"] = seg.id
        march = db.scalars(
            schedule.list_query(user=approver, station_id=station_id, programme="cchc",
                                month="2024-03")
        ).one()
        ids["march"] = march.id
    return ids


def rundown_ids(broadcast_id: int) -> list[int]:
    with unit_of_work(write=False) as db:
        return schedule.rundown_segment_ids(db, broadcast_id)


def test_calendar_lists_the_year_by_month_with_status_words(
    as_role: RoleClient, planned: dict[str, int]
) -> None:
    viewer = as_role("viewer")
    r = viewer.get(f"/schedule?year={YEAR}")
    assert r.status_code == 200
    assert "Lịch phát năm 2024" in r.text
    assert r.text.count('class="panel month') == 12
    assert f'href="/schedule/{planned["march"]}"' in r.text
    assert "Đã lên lịch" in r.text and "Phát ở các thôn" in r.text
    opened = viewer.get(f"/schedule?month={YEAR}-03")
    assert opened.status_code == 200 and "Thôn 1" in opened.text
    assert viewer.get("/schedule?month=2024-13").status_code == 404  # in words, not a 500
    assert len(r.content) < 100_000


def test_rundown_buttons_add_reorder_remove_without_javascript(
    as_role: RoleClient, planned: dict[str, int]
) -> None:
    approver = as_role("approver")
    b, s0, s1 = planned["march"], planned["seg0"], planned["seg1"]
    page = approver.get(f"/schedule/{b}")
    assert "Ghép buổi phát" in page.text and "Thêm vào buổi phát" in page.text
    for seg in (s0, s1):
        r = post(approver, f"/schedule/{b}/rundown",
                 {"segment_id": rundown_ids(b), "op": "add", "add": str(seg)})
        assert r.status_code == 303, r.text
    assert rundown_ids(b) == [s0, s1]
    post(approver, f"/schedule/{b}/rundown", {"segment_id": [s0, s1], "op": f"up:{s1}"})
    assert rundown_ids(b) == [s1, s0]
    post(approver, f"/schedule/{b}/rundown", {"segment_id": [s1, s0], "op": f"remove:{s1}"})
    assert rundown_ids(b) == [s0]
    page = approver.get(f"/schedule/{b}")
    assert "Đã lưu thứ tự phát." in page.text
    assert "Đã có nội dung" in page.text  # planned with a rundown: "filled"
    assert "band-total off" in page.text and "thiếu" in page.text  # 2 min: red, in words


def test_assemble_outside_the_window_says_why_beside_the_bar(
    as_role: RoleClient, planned: dict[str, int]
) -> None:
    approver = as_role("approver")
    b = planned["march"]
    post(approver, f"/schedule/{b}/rundown", {"segment_id": [planned["seg0"]], "op": "save"})
    r = refused(approver, f"/schedule/{b}/assemble", {})
    assert r.status_code == 422
    message = re.search(r'id="assemble-error">(.*?)</div>', r.text, re.S)
    assert message, r.text
    assert "Chưa ghép được" in message.group(1) and "còn thiếu" in message.group(1)
    assert r.text.index('id="band"') < r.text.index('id="assemble-error"')
    assert "the rundown runs" not in r.text  # the API's English stays out


def test_role_walls_on_the_schedule(as_role: RoleClient, planned: dict[str, int]) -> None:
    viewer = as_role("viewer")
    b = planned["march"]
    page = viewer.get(f"/schedule/{b}")
    assert page.status_code == 200
    assert "Ghép buổi phát" not in page.text and "Thêm vào buổi phát" not in page.text
    forged = post(viewer, f"/schedule/{b}/rundown", {"segment_id": [planned["seg0"]]})
    assert forged.status_code == 403
    assert post(viewer, f"/schedule/{b}/assemble", {}).status_code == 403
    assert rundown_ids(b) == []
    editor = as_role("editor")
    assert post(editor, f"/schedule/{b}/assemble", {}).status_code == 403


def test_a_refused_segment_is_explained_and_csrf_is_checked(
    as_role: RoleClient, planned: dict[str, int]
) -> None:
    approver = as_role("approver")
    b = planned["march"]
    r = approver.post(f"/schedule/{b}/rundown", data={"segment_id": "1", "op": "save"})
    assert r.status_code == 403 and "Biểu mẫu đã hết hạn" in r.text
    r = refused(approver, f"/schedule/{b}/rundown", {"op": "add", "add": "999999"})
    assert r.status_code == 422 and "Chưa làm được" in r.text


def test_report_page_has_the_chart_tables_and_downloads(
    as_role: RoleClient, planned: dict[str, int]
) -> None:
    viewer = as_role("viewer")
    r = viewer.get(f"/reports?year={YEAR}")
    assert r.status_code == 200
    assert "<svg" in r.text and 'class="chart"' in r.text
    assert r.text.count('<rect class="bar-') == 12  # a bar a month, coloured by its result
    # The legend is page text (it wraps on a phone), one swatch per colour of the chart.
    assert r.text.count('class="swatch ') == 3 and "khung 10–15 phút" in r.text
    for name in ("Tải CSV", "Tải Excel", "Tải PDF"):
        assert re.search(rf"<a [^>]*>{name}</a>", r.text), name
    assert "Thôn 1" in r.text and "podcast.xml" in r.text
    month = viewer.get(f"/reports?year={YEAR}&month=3")
    assert month.status_code == 200 and "tháng 03/2024" in month.text
    assert len(r.content) < 100_000


def test_every_month_result_has_words_on_the_report_page() -> None:
    assert set(RESULTS) == set(get_args(MonthResult))


def test_report_page_names_the_village_that_did_not_hear_the_column(
    as_role: RoleClient, planned: dict[str, int], station: dict[str, object]
) -> None:
    """An ip month aired at the station and in Thôn 1, not in Thôn 2: 1 of 2, Thôn 2 named."""
    station_id = int(station["station_id"])  # type: ignore[call-overload]
    with unit_of_work() as db:
        march = db.get_one(Broadcast, planned["march"])
        assert march.network == "ip"
        villages = list(
            db.scalars(select(Village).where(Village.station_id == station_id).order_by(Village.id))
        )
        pc, _ = devices.create_device(db, name="Máy phát trung tâm", station_id=station_id)
        clusters: list[Device] = []
        for village in villages[:2]:  # Thôn 3 has no cluster: not in service
            cluster, _ = devices.create_device(
                db, name=f"Loa {village.name}", station_id=station_id, village_id=village.id
            )
            cluster.created_at = datetime(2024, 1, 1, tzinfo=UTC)
            clusters.append(cluster)
        db.flush()
        played = [pc, clusters[0]]  # Thôn 2's cluster stayed silent
        march.status = "aired"
        ended = march.starts_at + timedelta(minutes=12)
        db.add_all(
            AsRunEvent(
                event_id=f"ev-{device.id}", device_id=device.id, broadcast_id=march.id,
                sha256="0" * 64, started_at=march.starts_at, ended_at=ended, status="played",
                received_at=ended,
            )
            for device in played
        )  # fmt: skip
    page = as_role("viewer").get(f"/reports?year={YEAR}")
    assert page.status_code == 200
    row = next(r for r in page.text.split("<tr>") if "03/2024" in r)
    assert "Chưa phát đủ các thôn" in row and "1&nbsp;/&nbsp;2" in row
    assert f"Chưa nghe: {villages[1].name}" in row
    # In text too, not only on hover: under the table, by month.
    missing = page.text.split('id="missing-h"')[1].split("</ul>")[0]
    assert f"Tháng 03/2024: {villages[1].name}</li>" in missing


def test_a_month_not_yet_due_is_neither_compliant_nor_not(
    as_role: RoleClient, station: dict[str, object]
) -> None:
    """Next year's months: "Chưa đến hạn" in words, a grey bar, a dash for the villages."""
    station_id = int(station["station_id"])  # type: ignore[call-overload]
    year = datetime.now(UTC).year + 1
    with unit_of_work() as db:
        plan_year(db, station_id=station_id, year=year)
        for village_id in station["village_ids"]:  # type: ignore[attr-defined]
            devices.create_device(db, name=f"Loa {village_id}", station_id=station_id,
                                  village_id=village_id)
    page = as_role("viewer").get(f"/reports?year={year}")
    assert page.status_code == 200
    row = next(r for r in page.text.split("<tr>") if f"03/{year}" in r)
    assert "Chưa đến hạn" in row and "—" in row and "&nbsp;/&nbsp;3" not in row
    chart = page.text.split('<svg class="chart"')[1].split("</svg>")[0]
    assert "bar-pending" in chart and "chưa đạt" not in chart and ", đạt<" not in chart


def test_downloads_are_the_api_files_for_the_cookie(
    as_role: RoleClient, planned: dict[str, int]
) -> None:
    viewer = as_role("viewer")
    csv = viewer.get(f"/reports/compliance.csv?year={YEAR}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert formats.read_csv_tables(csv.content)
    xlsx = viewer.get(f"/reports/compliance.xlsx?year={YEAR}&month=3")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    pdf = viewer.get(f"/reports/compliance.pdf?year={YEAR}")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
    ics = viewer.get(f"/reports/schedule.ics?year={YEAR}")
    assert ics.status_code == 200 and b"BEGIN:VCALENDAR" in ics.content
    assert viewer.get("/reports/compliance.doc?year=2024").status_code == 404


def test_signed_out_downloads_go_to_sign_in(browser_client: Callable[[], TestClient]) -> None:
    r = browser_client().get("/reports/compliance.csv?year=2024", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/?next=")
    with unit_of_work(write=False) as db:
        assert db.scalar(select(Broadcast.id).limit(1)) is None
