"""The month's work in the console, without a browser: Trang chủ leads to the column being
prepared and tells the scheduler's state and warnings in words; "Tự động xếp" shows the
fill's proposal and saves nothing; several segments go in at once; an aired segment is
asked about; an assembled column whose rundown changes gets its master made again; Thiết
bị starts with a summary; Lịch phát opens at this month; pages are compressed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app import clock
from app.db import unit_of_work
from app.devices import service as devices
from app.schedule import service as schedule
from app.schedule import warnings as schedule_warnings
from app.schedule.models import Broadcast, ScheduleWarning
from app.stations.models import Programme
from tests.console.helpers import post, refused
from tests.console.test_schedule_reports import RoleClient, planned, rundown_ids  # noqa: F401
from tests.helpers import login
from tests.schedule.test_broadcasts_api import approved_segment, pink

MARCH_1 = datetime(2024, 3, 1, 3, 0, tzinfo=UTC)  # 10:00 local: the 16th's column is next


def _notice(client: TestClient, url: str) -> str:
    page = client.get(url)
    found = re.search(r'role="status">(.*?)</p>', page.text, re.S)
    return found.group(1) if found else ""


def _month_broadcast(month: str) -> int:
    with unit_of_work(write=False) as db:
        return int(
            db.scalars(
                select(Broadcast.id)
                .join(Programme, Programme.id == Broadcast.programme_id)
                .where(Programme.code == "cchc", Broadcast.local_month == month)
            ).one()
        )


def test_autofill_shows_the_fills_proposal_and_saves_nothing(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    approver = as_role("approver")
    b = planned["march"]
    page = approver.get(f"/schedule/{b}/autofill")
    assert page.status_code == 200
    proposal = page.text.split('id="proposal"')[1].split("</form>")[0]
    titles = re.findall(r'<span class="ri-title">(.*?)</span>', proposal)
    assert titles == ["Tin số 0", "Tin số 1", "Tin số 2"]  # by approval age, as the fill
    assert "Còn thiếu" in proposal  # 3 x 2 min cannot reach 10 min: said, still offered
    assert rundown_ids(b) == []
    ids = re.findall(r'name="segment_id" value="(\d+)"', proposal)
    r = post(approver, f"/schedule/{b}/rundown", {"segment_id": ids, "op": "save"})
    assert r.status_code == 303 and r.headers["location"].endswith("#rundown")
    assert rundown_ids(b) == [planned["seg0"], planned["seg1"], planned["seg2"]]


def test_autofill_with_nothing_to_offer_says_why_and_saves_nothing(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    approver = as_role("approver")
    april = _month_broadcast("2024-04")
    page = approver.get(f"/schedule/{april}/autofill")
    assert page.status_code == 200
    assert "Chưa xếp được: không có tin bài nào của tháng 04/2024" in page.text
    assert "Chưa lưu gì" in page.text and "Lưu thứ tự này" not in page.text
    assert rundown_ids(april) == []
    assert as_role("viewer").get(f"/schedule/{april}/autofill").status_code == 403


def test_several_segments_are_added_at_once(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    approver = as_role("approver")
    b = planned["march"]
    picked = [planned["seg2"], planned["seg0"]]
    r = post(approver, f"/schedule/{b}/rundown", {"op": "add", "add": picked})
    assert r.status_code == 303
    assert rundown_ids(b) == picked  # in the order listed
    r = post(approver, f"/schedule/{b}/rundown",
             {"segment_id": picked, "op": "add", "add": [planned["seg1"], planned["seg0"]]})
    assert rundown_ids(b) == [*picked, planned["seg1"]]  # nothing twice


def test_a_segment_that_aired_elsewhere_is_asked_about_first(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    approver = as_role("approver")
    feb, march, old = _month_broadcast("2024-02"), planned["march"], planned["seg0"]
    post(approver, f"/schedule/{feb}/rundown", {"op": "add", "add": [old]})
    with unit_of_work() as db:
        db.execute(update(Broadcast).where(Broadcast.id == feb).values(status="aired"))
    page = approver.get(f"/schedule/{march}")
    assert "đã phát 17/02/2024 17:00" in page.text  # marked in the list of approved segments

    r = refused(approver, f"/schedule/{march}/rundown", {"op": "add", "add": [old]})
    assert r.status_code == 409
    box = r.text.split('id="confirm-aired"')[1].split("</div>")[0]
    assert "«Tin số 0» đã phát 17/02/2024 17:00" in box and "Vẫn thêm tin đã phát" in box
    words = re.sub(r"<[^>]+>", " ", box)
    assert "segment" not in words and "broadcast" not in words  # no English, no ids
    assert rundown_ids(march) == []
    r = post(approver, f"/schedule/{march}/rundown",
             {"segment_id": [old], "op": "save", "confirm_aired": "1"})
    assert r.status_code == 303
    assert rundown_ids(march) == [old]


@pytest.fixture
def short_column(station: dict[str, object]) -> None:
    with unit_of_work() as db:
        db.execute(update(Programme).where(Programme.code == "cchc")
                   .values(min_duration_ms=30_000, max_duration_ms=45_000))


def test_changing_an_assembled_column_remakes_its_master_and_says_so(
    as_role: RoleClient, station: dict[str, object], short_column: None, tmp_path: Path
) -> None:
    approver = as_role("approver")
    w = {"station_id": station["station_id"],
         "h": {"editor": login(approver, "editor1"), "approver": login(approver, "approver1")}}
    a = approved_segment(approver, w, pink(tmp_path / "a.mp3", 12, 1), "Tin A")["id"]
    b = approved_segment(approver, w, pink(tmp_path / "b.mp3", 10, 2), "Tin B")["id"]
    with unit_of_work() as db:
        from app.schedule.planning import plan_year

        plan_year(db, station_id=int(station["station_id"]), year=2024)  # type: ignore[call-overload]
    march = _month_broadcast("2024-03")
    post(approver, f"/schedule/{march}/rundown", {"op": "add", "add": [a, b]})
    assert post(approver, f"/schedule/{march}/assemble", {}).status_code == 303
    page = approver.get(f"/schedule/{march}")
    assert 'id="remake-note"' in page.text and 'data-busy="Đang lưu và ghép lại…"' in page.text

    # Dropping one leaves it short: saved, the old master gone, and the page says so.
    r = post(approver, f"/schedule/{march}/rundown", {"segment_id": [a, b], "op": f"remove:{b}"})
    assert r.status_code == 303 and r.headers["location"].endswith("#rundown")
    assert "chưa ghép lại" in _notice(approver, f"/schedule/{march}")
    with unit_of_work(write=False) as db:
        column = db.get_one(Broadcast, march)
        assert column.status == "planned" and column.master_sha256 is None

    # Putting it back fits again: the master is made again at once.
    r = post(approver, f"/schedule/{march}/rundown", {"segment_id": [a], "op": "add", "add": [b]})
    assert r.status_code == 303 and r.headers["location"].endswith("#master")
    assert "ghép lại buổi phát" in _notice(approver, f"/schedule/{march}")
    with unit_of_work(write=False) as db:
        column = db.get_one(Broadcast, march)
        assert column.status == "assembled" and column.master_sha256
        assert schedule.rundown_segment_ids(db, march) == [a, b]


def test_home_leads_each_role_to_the_next_step(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    editor, approver = as_role("editor"), as_role("approver")
    with clock.frozen(MARCH_1):
        mine = editor.get("/")
        theirs = approver.get("/")
    coming = mine.text.split('id="next"')[1].split("</section>")[0]
    assert "tháng 03/2024" in coming and "16/03/2024 17:00" in coming
    assert 'action="/segments/new"' in coming and 'name="month" value="2024-03"' in coming
    assert "Thêm tin bài" in coming
    assert "Ghép buổi phát" not in coming
    assert "Bộ lập lịch" not in mine.text.split('id="next"')[0]  # editors are not told

    coming = theirs.text.split('id="next"')[1].split("</section>")[0]
    assert "3 đã duyệt" in coming and "Tự động xếp" in coming  # 6 min: not yet in window
    assert 'id="scheduler-state"' in theirs.text and "Bộ lập lịch chưa chạy lần nào" in theirs.text
    # The new segment form opens at that month.
    form = editor.get("/segments/new?month=2024-03")
    assert 'name="target_month" type="month" value="2024-03"' in form.text


def test_home_offers_ghep_when_the_rundown_fits_and_moves_on_once_assembled(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    approver = as_role("approver")
    with unit_of_work() as db:
        db.execute(update(Programme).where(Programme.code == "cchc")
                   .values(min_duration_ms=300_000, max_duration_ms=900_000))
    post(approver, f"/schedule/{planned['march']}/rundown",
         {"op": "add", "add": [planned["seg0"], planned["seg1"], planned["seg2"]]})
    with clock.frozen(MARCH_1):
        page = approver.get("/")
    coming = page.text.split('id="next"')[1].split("</section>")[0]
    assert f'action="/schedule/{planned["march"]}/assemble"' in coming
    assert 'data-busy="Đang ghép…"' in coming
    with unit_of_work() as db:
        db.execute(update(Broadcast).where(Broadcast.id == planned["march"])
                   .values(status="assembled", master_sha256="0" * 64))
    with clock.frozen(MARCH_1):
        page = approver.get("/")
    coming = page.text.split('id="next"')[1].split("</section>")[0]
    assert "tháng 04/2024" in coming  # the next one not yet assembled


def test_warnings_are_sentences_with_links_and_approvers_acknowledge_them(
    as_role: RoleClient, planned: dict[str, int], station: dict[str, object]  # noqa: F811
) -> None:
    station_id = int(station["station_id"])  # type: ignore[call-overload]
    feb = _month_broadcast("2024-02")
    with unit_of_work() as db:
        column = db.get_one(Broadcast, feb)
        schedule_warnings.sync_group(
            db, kind="missed", station_id=station_id, month="2024-02",
            items=[schedule_warnings.broadcast_item(
                broadcast_id=feb, starts_at=column.starts_at, village_id=None, village=None)],
        )
        schedule_warnings.sync_group(
            db, kind="cchc-missing", station_id=station_id, month="2024-05",
            items=[{"key": "m2024-05"}], stage="T-7",
        )
    approver = as_role("approver")
    page = approver.get("/")
    box = page.text.split('id="warnings"')[1].split("</section>")[0]
    assert "Buổi phát 17/02/2024 17:00 (Đài xã) không có máy phát nào báo đã phát." in box
    assert f'href="/schedule/{feb}"' in box
    assert "Tháng 05/2024 chưa có buổi phát chuyên mục CCHC trong lịch." in box
    assert 'href="/schedule?month=2024-05#m-2024-05"' in box
    assert not re.search(r"broadcast|missed|\b\d+ \(CCHC", box)  # no English, no ids
    assert "Đã xem" in box and "Đã xem" not in as_role("viewer").get("/").text.split(
        'id="warnings"')[1].split("</section>")[0]

    with unit_of_work(write=False) as db:
        wid = db.scalars(select(ScheduleWarning.id).where(ScheduleWarning.kind == "missed")).one()
    r = post(approver, f"/warnings/{wid}/ack", {})
    assert r.status_code == 303 and r.headers["location"] == "/#warnings"
    page = approver.get("/")
    seen = page.text.split(f'id="warning-{wid}"')[1].split("</li>")[0]
    assert "Đã xem: approver1" in seen
    with unit_of_work(write=False) as db:
        assert db.get_one(ScheduleWarning, wid).acked_by_id is not None
    assert post(as_role("viewer"), f"/warnings/{wid}/ack", {}).status_code == 403


def test_devices_start_with_a_summary(as_role: RoleClient, station: dict[str, object]) -> None:
    station_id = int(station["station_id"])  # type: ignore[call-overload]
    now = clock.now()
    with unit_of_work() as db:
        pc, _ = devices.create_device(db, name="Máy phát trung tâm", station_id=station_id)
        silent, _ = devices.create_device(db, name="Loa Thôn 1", station_id=station_id,
                                          village_id=station["village_ids"][0])  # type: ignore[index]
        pc.last_seen_at, pc.free_disk_bytes = now, 3 * 1024**3
        silent.last_seen_at = now - timedelta(days=2)
    page = as_role("approver").get("/devices")
    summary = page.text.split('id="summary"')[1].split("</section>")[0]
    assert "1 máy đang kết nối" in summary and "1 máy mất kết nối" in summary
    assert "Mất kết nối: Loa Thôn 1." in summary
    assert "Máy phát trung tâm (3,0 GB)" in summary
    assert page.text.index('id="summary"') < page.text.index('class="cards"')


def test_the_calendar_opens_at_this_month(as_role: RoleClient, planned: dict[str, int]) -> None:  # noqa: F811
    viewer = as_role("viewer")
    with clock.frozen(MARCH_1):
        r = viewer.get("/schedule", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/schedule?year=2024#m-2024-03"


def test_pages_are_compressed_but_audio_and_ranges_are_not(
    as_role: RoleClient, planned: dict[str, int]  # noqa: F811
) -> None:
    viewer = as_role("viewer")
    page = viewer.get("/schedule?year=2024", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and "Lịch phát" in page.text
    css = viewer.get("/static/console/console.css", headers={"Accept-Encoding": "gzip"})
    assert css.headers.get("content-encoding") == "gzip"
    ranged = viewer.get("/schedule?year=2024",
                        headers={"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert "content-encoding" not in ranged.headers


@pytest.fixture
def google_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """gTTS at a closed loopback port: "auto" falls back to espeak-ng without the internet."""
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "tts_gtts_endpoint", "http://127.0.0.1:9/")


def _segments_titled(*titles: str) -> list[tuple[str, str, bool]]:
    from app.segments.models import Segment

    with unit_of_work(write=False) as db:
        rows = db.execute(
            select(Segment.title, Segment.status, Segment.audio_id.is_not(None))
            .where(Segment.title.in_(titles)).order_by(Segment.id)
        ).all()
        return [(t, s, bool(a)) for t, s, a in rows]


def test_one_tap_saves_reads_aloud_submits_and_offers_the_next_form(
    as_role: RoleClient, google_closed: None
) -> None:
    editor = as_role("editor")
    typed = {"title": "Tin một chạm", "topic": "progress", "programme": "cchc",
             "target_month": "2024-03", "script": "Kính thưa bà con, xã thông báo lịch tiếp dân."}
    r = post(editor, "/segments/new", {**typed, "then": "submit-next"})
    assert r.status_code == 303 and r.headers["location"].startswith("/segments/new?month=2024-03")
    page = editor.get(r.headers["location"]).text
    assert "Mời viết tin bài tiếp theo" in page and 'value="2024-03"' in page
    assert _segments_titled("Tin một chạm") == [("Tin một chạm", "submitted", True)]

    # "Lưu và gửi duyệt" lands on the segment, submitted with its machine voice.
    r = post(editor, "/segments/new", {**typed, "title": "Tin thứ hai", "then": "submit"})
    assert r.status_code == 303 and re.search(r"/segments/\d+#flow$", r.headers["location"])
    assert "Đã gửi duyệt." in editor.get(r.headers["location"]).text
    assert _segments_titled("Tin thứ hai") == [("Tin thứ hai", "submitted", True)]


def test_one_tap_with_nothing_to_read_is_refused_and_creates_nothing(as_role: RoleClient) -> None:
    editor = as_role("editor")
    typed = {"title": "Tin trống", "topic": "progress", "programme": "cchc",
             "target_month": "2024-03", "script": "   "}
    page = refused(editor, "/segments/new", {**typed, "then": "submit"})
    assert "Hãy viết nội dung (để đọc bằng giọng máy) hoặc chọn tệp âm thanh" in page.text
    assert 'value="Tin trống"' in page.text  # what was typed is kept
    assert _segments_titled("Tin trống") == []


def test_one_tap_with_a_file_submits_that_recording(as_role: RoleClient, tmp_path: Path) -> None:
    editor = as_role("editor")
    typed = {"title": "Tin có ghi âm", "topic": "progress", "programme": "cchc",
             "target_month": "2024-03", "script": ""}
    with pink(tmp_path / "ghi-am.mp3", 3, 1).open("rb") as fh:
        r = post(editor, "/segments/new", {**typed, "then": "submit"},
                 files={"file": ("ghi-am.mp3", fh, "audio/mpeg")})
    assert r.status_code == 303, r.text
    assert _segments_titled("Tin có ghi âm") == [("Tin có ghi âm", "submitted", True)]
    page = editor.get(r.headers["location"]).text
    assert re.search(r"<dt>Độ dài</dt><dd>00:03</dd>", page)


def test_approvers_tick_all_and_approve_together_or_not_at_all(
    as_role: RoleClient, station: dict[str, object]
) -> None:
    from tests.console.helpers import make_segment, status_of

    a = make_segment("editor1", title="Tin duyệt A", submit=True)
    b = make_segment("editor1", title="Tin duyệt B", submit=True)
    approver = as_role("approver")
    home = approver.get("/").text
    assert "Chọn tất cả" in home and 'name="approve"' in home
    ticked = approver.get("/?tick_all=1").text
    values = re.findall(r'name="approve" value="([^"]+)"[^>]*checked', ticked)
    assert len(values) == 2

    assert "Hãy chọn ít nhất một tin bài" in refused(approver, "/segments/approve", {}).text
    # One changed after the page was shown: named, and nothing approved.
    stale = [v if not v.startswith(f"{b}:") else f"{b}:999" for v in values]
    page = refused(approver, "/segments/approve", {"approve": stale})
    assert "«Tin duyệt B»" in page.text
    assert (status_of(a), status_of(b)) == ("submitted", "submitted")

    r = post(approver, "/segments/approve", {"approve": values})
    assert r.status_code == 303 and r.headers["location"] == "/#todo"
    assert "Đã duyệt các tin bài đã chọn." in approver.get("/").text
    assert (status_of(a), status_of(b)) == ("approved", "approved")
    # Editors cannot.
    assert post(as_role("editor"), "/segments/approve", {"approve": values}).status_code == 403


def test_save_and_assemble_from_the_proposal_in_one_tap(
    as_role: RoleClient, station: dict[str, object], short_column: None, tmp_path: Path
) -> None:
    approver = as_role("approver")
    w = {"station_id": station["station_id"],
         "h": {"editor": login(approver, "editor1"), "approver": login(approver, "approver1")}}
    a = approved_segment(approver, w, pink(tmp_path / "a.mp3", 12, 1), "Tin A")["id"]
    b = approved_segment(approver, w, pink(tmp_path / "b.mp3", 10, 2), "Tin B")["id"]
    with unit_of_work() as db:
        from app.schedule.planning import plan_year

        plan_year(db, station_id=int(station["station_id"]), year=2024)  # type: ignore[call-overload]
    march = _month_broadcast("2024-03")
    proposal = approver.get(f"/schedule/{march}/autofill").text
    assert "Lưu và ghép" in proposal

    # Too short for the window: saved, not made, and said as a warning.
    r = post(approver, f"/schedule/{march}/rundown", {"segment_id": [b], "op": "save-assemble"})
    assert r.status_code == 303 and r.headers["location"].endswith("#rundown")
    assert "chưa ghép" in _notice(approver, f"/schedule/{march}")
    r = post(approver, f"/schedule/{march}/rundown", {"segment_id": [a, b], "op": "save-assemble"})
    assert r.status_code == 303 and r.headers["location"].endswith("#master")
    assert "ghép buổi phát" in _notice(approver, f"/schedule/{march}")
    with unit_of_work(write=False) as db:
        column = db.get_one(Broadcast, march)
        assert column.status == "assembled" and column.master_sha256
        assert schedule.rundown_segment_ids(db, march) == [a, b]
