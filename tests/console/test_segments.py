"""Tin bài pages: create, edit with versions, audio (file, refused file, TTS), workflow,
filters and history, through the same services as the API."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db import unit_of_work
from app.segments.models import Segment
from tests.console.helpers import csrf, make_segment, post, refused, status_of

RoleClient = Callable[[str], TestClient]


def tone_wav(path: Path, seconds: float = 2.0) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:a",
            "pcm_s16le",
            str(path),
        ],
        check=True,
    )
    return path


def segment(segment_id: int) -> Segment:
    with unit_of_work(write=False) as db:
        found = db.get(Segment, segment_id)
        assert found is not None
        return found


def version_on(page: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', page)
    assert found
    return found.group(1)


def test_editor_adds_a_segment_with_the_contract_labels(as_role: RoleClient) -> None:
    editor = as_role("editor")
    form = editor.get("/segments/new").text
    for label in ("Tiêu đề", "Chủ đề", "Tháng phát", "Nội dung", "Tệp âm thanh"):
        assert re.search(rf"<label for=\"\w+\">{label}</label>", form), label
    assert re.search(r"<button[^>]*>Lưu</button>", form)
    r = post(
        editor,
        "/segments/new",
        {
            "title": "Kết quả chỉ số PAPI 2023",
            "topic": "indices",
            "programme": "cchc",
            "target_month": "2024-03",
            "script": "Kính thưa bà con, chỉ số PAPI năm 2023…",
        },
    )
    assert r.status_code == 303
    page = editor.get(r.headers["location"])
    assert "Đã tạo tin bài." in page.text and "Kết quả chỉ số PAPI 2023" in page.text
    assert "Văn bản sẽ được đọc" in page.text  # the normalised script
    assert "Tạo tin bài" in page.text  # history from the audit log


def test_a_missing_title_is_refused_beside_the_form_keeping_the_rest(as_role: RoleClient) -> None:
    editor = as_role("editor")
    r = refused(
        editor,
        "/segments/new",
        {"title": "", "topic": "policy", "programme": "cchc", "script": "Nội dung đã gõ"},
    )
    assert r.status_code == 422
    assert "Hãy nhập tiêu đề." in r.text and "Nội dung đã gõ" in r.text


def test_a_stale_save_shows_a_message_not_an_overwrite(as_role: RoleClient) -> None:
    segment_id = make_segment("editor1", title="Bản gốc")
    mine, theirs = as_role("editor"), as_role("editor")
    seen = version_on(mine.get(f"/segments/{segment_id}").text)
    fields = {"topic": "progress", "programme": "cchc", "target_month": "2024-03"}
    r = post(
        theirs,
        f"/segments/{segment_id}",
        {"title": "Sửa của người khác", "version": seen, **fields},
    )
    assert r.status_code == 303
    mine_now = {"title": "Sửa của tôi", "version": seen, **fields}
    r = refused(mine, f"/segments/{segment_id}", mine_now)
    assert r.status_code == 412
    assert "Đã có người khác sửa mục này" in r.text
    assert 'value="Sửa của tôi"' in r.text  # what I typed is still there
    assert segment(segment_id).title == "Sửa của người khác"
    # Saved again from the page's new version, it goes through.
    r = post(
        mine,
        f"/segments/{segment_id}",
        {"title": "Sửa của tôi", "version": version_on(r.text), **fields},
    )
    assert r.status_code == 303 and segment(segment_id).title == "Sửa của tôi"
    assert "Sửa: Tiêu đề" in mine.get(f"/segments/{segment_id}").text


def test_an_upload_refused_by_the_pipeline_says_why_beside_the_file(
    as_role: RoleClient, tmp_path: Path
) -> None:
    segment_id = make_segment("editor1")
    editor = as_role("editor")
    page = editor.get(f"/segments/{segment_id}").text
    fake = tmp_path / "bai-doc.mp3"
    fake.write_text("đây không phải âm thanh " * 50, encoding="utf-8")
    with fake.open("rb") as fh:
        r = refused(
            editor,
            f"/segments/{segment_id}/audio",
            {"version": version_on(page)},
            files={"file": ("bai-doc.mp3", fh, "audio/mpeg")},
        )
    assert r.status_code == 422
    audio_section = r.text.split('id="audio"', 1)[1].split("</section>", 1)[0]
    assert "Tệp này không phải tệp âm thanh" in audio_section
    assert segment(segment_id).audio_id is None


def test_an_uploaded_recording_is_measured_and_plays_from_the_page(
    as_role: RoleClient, browser_client: Callable[[], TestClient], tmp_path: Path
) -> None:
    segment_id = make_segment("editor1")
    editor = as_role("editor")
    page = editor.get(f"/segments/{segment_id}").text
    with tone_wav(tmp_path / "ghi-am.wav", 2.0).open("rb") as fh:
        r = post(
            editor,
            f"/segments/{segment_id}/audio",
            {"version": version_on(page)},
            files={"file": ("ghi-am.wav", fh, "audio/wav")},
        )
    assert r.status_code == 303, r.text
    page = editor.get(f"/segments/{segment_id}").text
    assert "Đã gắn tệp âm thanh" in page
    assert re.search(r"<dt>Độ dài</dt><dd>00:02</dd>", page)
    assert "<dt>Độ lớn</dt><dd>đạt chuẩn</dd>" in page  # words, not "-16,0 LUFS"
    assert "LUFS" not in page
    src = re.search(r'<audio controls preload="metadata" src="([^"]+)"', page)
    assert src
    audio = editor.get(src.group(1), headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and audio.headers["content-type"] == "audio/mpeg"
    stranger = browser_client()
    assert stranger.get(src.group(1), follow_redirects=False).status_code == 303


def test_read_aloud_drafts_tts_offline_and_shows_the_player(as_role: RoleClient) -> None:
    segment_id = make_segment("editor1", script="Ngày 15/3 UBND xã tiếp công dân.")
    editor = as_role("editor")
    page = editor.get(f"/segments/{segment_id}").text
    assert "Ngày mười lăm tháng ba" in page or "mười lăm" in page  # the normalised text
    r = post(
        editor, f"/segments/{segment_id}/tts", {"engine": "espeak", "version": version_on(page)}
    )
    assert r.status_code == 303, r.text
    page = editor.get(f"/segments/{segment_id}").text
    assert "Đã tạo giọng đọc máy từ nội dung." in page
    assert "Giọng đọc máy" in page and "<audio controls" in page
    assert "espeak-ng" not in page and "(espeak)" not in page and "TTS" not in page
    assert "Tạo giọng đọc máy" in page  # history


def test_submit_approve_and_send_back_with_a_reason(as_role: RoleClient) -> None:
    editor, approver = as_role("editor"), as_role("approver")
    first, second = make_segment("editor1"), make_segment("editor1", title="Tin thứ hai")
    for segment_id in (first, second):
        # A save that names no version could overwrite someone's edit: refused.
        r = refused(editor, f"/segments/{segment_id}", {"title": "x", "topic": "progress"})
        assert r.status_code == 428 and "Đã có người khác sửa" in r.text
        r = post(editor, f"/segments/{segment_id}/submit", {})
        assert r.status_code == 303 and status_of(segment_id) == "submitted"
    waiting = approver.get("/").text
    assert "Tin bài chờ duyệt" in waiting and "Tin thứ hai" in waiting
    assert post(approver, f"/segments/{first}/approve", {}).status_code == 303
    assert status_of(first) == "approved"
    r = refused(approver, f"/segments/{second}/reject", {"reason": ""})
    assert r.status_code == 422 and "Hãy ghi lý do trả lại." in r.text
    r = post(approver, f"/segments/{second}/reject", {"reason": "Thiếu số liệu quý I"})
    assert r.status_code == 303 and status_of(second) == "draft"
    page = editor.get(f"/segments/{second}").text
    assert "Bị trả lại. Lý do:" in page and "Thiếu số liệu quý I" in page
    assert "bị trả lại" in editor.get("/").text  # on the editor's to-do list


def test_approving_twice_says_it_cannot_in_words(as_role: RoleClient) -> None:
    segment_id = make_segment("editor1", submit=True)
    approver = as_role("approver")
    assert post(approver, f"/segments/{segment_id}/approve", {}).status_code == 303
    r = refused(approver, f"/segments/{segment_id}/approve", {})
    assert r.status_code == 409
    assert "Tin bài này không còn chờ duyệt" in r.text


def test_list_filters_by_status_month_topic_and_programme(as_role: RoleClient) -> None:
    make_segment("editor1", title="Nháp tháng ba")
    make_segment("editor1", title="Đã gửi tháng ba", submit=True)
    editor = as_role("editor")
    page = editor.get("/segments?status=submitted").text
    assert "Đã gửi tháng ba" in page and "Nháp tháng ba" not in page
    assert "Nháp tháng ba" not in editor.get("/segments?topic=indices").text
    assert "Nháp tháng ba" in editor.get("/segments?month=2024-03&programme=cchc").text
    assert "Nháp tháng ba" not in editor.get("/segments?month=2024-04").text
    assert editor.get("/segments?status=bogus&month=13").status_code == 200  # ignored


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_read_only_segment_has_no_edit_forms(as_role: RoleClient, role: str) -> None:
    segment_id = make_segment("editor1", submit=True)
    page = as_role(role).get(f"/segments/{segment_id}").text
    assert f'action="/segments/{segment_id}"' not in page
    assert "/audio" not in page.split('id="audio"', 1)[1].split("</section>", 1)[0]
    assert csrf(as_role(role))  # still signed in
