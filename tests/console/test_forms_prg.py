"""Every console form answers with a redirect, after success and after refusal alike, so
that a reload never posts twice: what was typed is kept on the server for the page, the
page shows why, and loading it again creates nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.console.models import KeptForm
from app.db import unit_of_work
from app.segments.models import Segment
from tests.console.helpers import csrf, make_segment, post
from tests.console.test_segments import tone_wav

RoleClient = Callable[[str], TestClient]


def _counts() -> tuple[int, int]:
    with unit_of_work(write=False) as db:
        return (
            db.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            db.scalar(select(func.count()).select_from(Segment)) or 0,
        )


def _version(client: TestClient, segment_id: int) -> str:
    found = re.search(r'name="version" value="(\d+)"', client.get(f"/segments/{segment_id}").text)
    return found[1] if found else "1"


def _send_and_reload(
    client: TestClient, page: str, path: str, data: dict[str, Any], files: Any = None
) -> tuple[str, list[int], str]:
    """Post from `page` as its form does, follow the redirect, then load it twice more
    (the person's reloads); returns where it landed, the statuses, and the last page."""
    r = client.post(
        path,
        data={"csrf_token": csrf(client, page), "_page": page, **data},
        files=files,
        follow_redirects=False,
    )
    assert r.status_code == 303, (path, r.status_code, r.text[:300])
    location = r.headers["location"]
    statuses, texts = [], []
    for _reload in range(3):
        shown = client.get(location.split("#")[0], follow_redirects=False)
        statuses.append(shown.status_code)
        texts.append(shown.text)
    assert all("Biểu mẫu" not in t or "Biểu mẫu" in texts[0] for t in texts)
    return location, statuses, texts[0]


def test_a_refused_new_segment_with_a_file_lands_on_its_draft_and_a_reload_adds_nothing(
    as_role: RoleClient, tmp_path: Path
) -> None:
    editor = as_role("editor")
    before = _counts()
    bogus = tmp_path / "bao-cao.pdf"
    bogus.write_bytes(b"%PDF-1.4 not audio" * 100)
    with bogus.open("rb") as fh:
        location, statuses, text = _send_and_reload(
            editor,
            "/segments/new",
            "/segments/new",
            {"title": "Tin có tệp hỏng", "topic": "policy", "programme": "cchc"},
            files={"file": ("bao-cao.pdf", fh, "application/pdf")},
        )
    # The draft was saved once; its page says why the file was refused, and that it must
    # be chosen again (a browser cannot keep a file across a redirect).
    assert re.fullmatch(r"/segments/\d+#error", location)
    assert statuses == [422, 200, 200]  # its status once, then a plain page
    assert "Tệp này không phải tệp âm thanh" in text and "hãy chọn lại tệp" in text
    assert "bao-cao.pdf" in text
    events, segments = _counts()
    assert segments == before[1] + 1 and events == before[0] + 1  # one create, nothing else


@pytest.mark.parametrize(
    "case",
    ["title", "script", "control", "village", "version", "csrf"],
)
def test_a_refused_save_shows_why_beside_the_field_and_a_reload_changes_nothing(
    as_role: RoleClient, case: str
) -> None:
    editor = as_role("editor")
    sid = make_segment("editor1", title="Bản gốc")
    page = f"/segments/{sid}"
    fields = {
        "title": "Tiêu đề mới",
        "topic": "policy",
        "programme": "cchc",
        "script": "Nội dung đã gõ",
        "version": _version(editor, sid),
    }
    bad = {
        "title": {"title": ""},
        "script": {"script": "x" * 20_001},
        "control": {"title": "Tin\x00có\x07ký\x1btự"},
        "village": {"village_ids": "²"},
        "version": {"version": "²"},
        "csrf": {},
    }[case]
    data = {**fields, **bad}
    before = _counts()
    if case == "csrf":
        r = editor.post(page, data={"csrf_token": "giả", "_page": page, **data},
                        follow_redirects=False)
        assert r.status_code == 303
        statuses = [editor.get(page).status_code for _ in range(2)]
        text = editor.get(page).text
    else:
        _location, statuses, text = _send_and_reload(editor, page, page, data)
    assert statuses[0] == (403 if case == "csrf" else 422) and set(statuses[1:]) == {200}
    assert _counts() == before
    assert data["script"] in text  # what was typed, kept (all 20 001 characters)
    said = {
        "title": "Hãy nhập tiêu đề.",
        "script": "Dài quá 20000 ký tự.",
        "control": "ký tự điều khiển",
        "village": "Danh sách thôn không hợp lệ.",
        "version": "Trang này đã cũ",
        "csrf": "Biểu mẫu đã hết hạn",
    }[case]
    assert said in text
    if case in ("title", "script"):
        assert f'id="{case}-error"' in text and 'aria-invalid="true"' in text
    with unit_of_work(write=False) as db:
        segment = db.get(Segment, sid)
        assert segment is not None and segment.title == "Bản gốc"


def test_every_segment_action_lands_where_it_changed_and_a_reload_repeats_nothing(
    as_role: RoleClient, tmp_path: Path
) -> None:
    editor, approver = as_role("editor"), as_role("approver")
    sid = make_segment("editor1", script="Kính thưa bà con, xã thông báo lịch tiếp dân.")
    page = f"/segments/{sid}"

    def step(client: TestClient, path: str, data: dict[str, Any], anchor: str, **kw: Any) -> str:
        before = _counts()
        location, statuses, text = _send_and_reload(client, page, path, data, **kw)
        assert location == anchor, (path, location)
        assert statuses == [200, 200, 200]
        assert _counts()[0] == before[0] + 1, path  # one audit event: done once
        return text

    version = _version(editor, sid)
    step(editor, page, {"title": "Lịch tiếp dân", "topic": "policy", "programme": "cchc",
                        "script": "Kính thưa bà con.", "version": version}, f"{page}#content")
    text = step(editor, f"{page}/tts", {"engine": "espeak", "version": _version(editor, sid)},
                f"{page}#audio")
    assert "Đã tạo giọng đọc máy" in text
    # Replacing audio asks first: without the yes, refused and nothing changes.
    before = _counts()
    with tone_wav(tmp_path / "a.wav", 2.0).open("rb") as fh:
        _l, statuses, text = _send_and_reload(
            editor, page, f"{page}/audio", {"version": _version(editor, sid)},
            files={"file": ("a.wav", fh, "audio/wav")},
        )
    assert statuses == [422, 200, 200] and "Thay âm thanh hiện có" in text and _counts() == before
    with tone_wav(tmp_path / "a.wav", 2.0).open("rb") as fh:
        step(editor, f"{page}/audio", {"version": _version(editor, sid), "replace": "1"},
             f"{page}#audio", files={"file": ("a.wav", fh, "audio/wav")})
    earlier = re.search(r'name="audio_id" value="(\d+)"', editor.get(page).text)
    assert earlier, "the replaced audio is offered back"
    text = step(editor, f"{page}/audio/restore",
                {"audio_id": earlier[1], "version": _version(editor, sid)}, f"{page}#audio")
    assert "Đã khôi phục âm thanh cũ." in text
    step(editor, f"{page}/submit", {"version": _version(editor, sid)}, f"{page}#flow")
    step(editor, f"{page}/withdraw", {"version": _version(editor, sid)}, f"{page}#flow")
    step(editor, f"{page}/submit", {"version": _version(editor, sid)}, f"{page}#flow")
    step(approver, f"{page}/reject", {"reason": "Bổ sung số liệu", "version":
                                       _version(approver, sid)}, f"{page}#flow")
    text = editor.get(page).text
    assert "Bổ sung số liệu" in text
    before = _counts()
    location, statuses, _t = _send_and_reload(
        editor, f"{page}/delete", f"{page}/delete", {"version": _version(editor, sid)}
    )
    assert location == "/segments" and statuses == [200, 200, 200]
    assert _counts() == (before[0] + 1, before[1] - 1)


def test_a_kept_form_belongs_to_its_session_and_goes_when_the_form_succeeds(
    as_role: RoleClient,
) -> None:
    editor, same_user_elsewhere = as_role("editor"), as_role("editor")
    typed = {"title": "", "topic": "policy", "programme": "cchc", "script": "Bản nháp dở"}
    _send_and_reload(editor, "/segments/new", "/segments/new", typed)
    assert "Bản nháp dở" not in same_user_elsewhere.get("/segments/new").text
    assert "Bản nháp dở" in editor.get("/segments/new").text  # still there after reloads
    r = post(editor, "/segments/new", {**typed, "title": "Tin đã sửa", "_page": "/segments/new"})
    assert r.status_code == 303 and r.headers["location"].startswith("/segments/")
    assert "Bản nháp dở" not in editor.get("/segments/new").text
    with unit_of_work(write=False) as db:
        assert db.scalar(select(func.count()).select_from(KeptForm)) == 0


def test_admin_and_emergency_forms_redirect_after_refusal_too(as_role: RoleClient) -> None:
    admin = as_role("admin")
    before = _counts()
    location, statuses, text = _send_and_reload(
        admin, "/admin", "/admin/users/new",
        {"username": "Lan Nguyễn", "password": "ngắn", "role": "editor",
         "full_name": "Nguyễn Thị Lan", "station_id": "²"},
    )
    assert location == "/admin#error" and statuses == [422, 200, 200]
    assert 'value="Nguyễn Thị Lan"' in text and "ngắn" not in text  # passwords are not kept
    assert _counts() == before
    location, statuses, text = _send_and_reload(
        admin, "/admin", "/admin/users/new",
        {"username": "lan.nguyen", "password": "mật-khẩu-dài", "role": "editor",
         "full_name": "Nguyễn Thị Lan"},
    )
    assert re.fullmatch(r"/admin/users/\d+", location) and statuses == [200] * 3
    assert "<h1>Nguyễn Thị Lan</h1>" in text and _counts()[0] == before[0] + 1
    approver = as_role("approver")
    location, statuses, text = _send_and_reload(
        approver, "/emergency", "/emergency/confirm",
        {"segment_id": "1" * 30, "scope": "villages", "village_ids": "x"},
    )
    assert location == "/emergency#error" and statuses == [422, 200, 200]
    assert "Hãy chọn một tin bài đã duyệt." in text


def test_deleting_anothers_draft_or_withdrawing_an_approved_segment_is_refused_in_words(
    as_role: RoleClient, station: dict[str, Any]
) -> None:
    from app.accounts.models import Role
    from tests.console.helpers import refused, sign_in
    from tests.helpers import make_user

    make_user("editor2", Role.editor, station["station_id"])
    editor, approver = as_role("editor"), as_role("approver")
    other = as_role("viewer")  # a fresh client, signed in as the second editor below
    sign_in(other, "editor2")
    mine = make_segment("editor1")
    page = f"/segments/{mine}"
    assert "Xóa bản nháp…" not in other.get(page).text  # not offered to another editor
    r = refused(other, f"{page}/delete", {"version": "1"})
    assert r.status_code == 403 and "Chỉ người tạo bản nháp mới xóa được nó." in r.text
    r = refused(editor, f"{page}/withdraw", {"version": "1"})
    assert r.status_code == 409 and "Chỉ rút lại được tin bài đang chờ duyệt" in r.text
    post(editor, f"{page}/submit", {})
    assert "Rút lại" not in other.get(page).text
    r = refused(other, f"{page}/withdraw", {})
    assert r.status_code == 403 and "Chỉ người tạo tin bài mới rút lại được." in r.text
    post(approver, f"{page}/approve", {})
    r = refused(editor, f"{page}/withdraw", {})
    assert r.status_code == 409 and "tin bài đã duyệt thì không" in r.text
    r = refused(editor, f"{page}/delete", {})
    assert r.status_code == 409 and "Chỉ xóa được bản nháp" in r.text
    with unit_of_work(write=False) as db:
        segment = db.get(Segment, mine)
        assert segment is not None and segment.status == "approved"


def test_approving_leaves_nothing_typed_behind_and_the_reason_has_its_own_step(
    as_role: RoleClient,
) -> None:
    sid = make_segment("editor1", submit=True)
    approver = as_role("approver")
    page = approver.get(f"/segments/{sid}").text
    assert 'name="reason"' not in page and f'href="/segments/{sid}/reject"' in page
    step = approver.get(f"/segments/{sid}/reject").text
    assert '<label for="reason">Lý do</label>' in step and ">Trả lại</button>" in step
    assert "Duyệt</button>" not in step
    location, statuses, text = _send_and_reload(
        approver, f"/segments/{sid}/reject", f"/segments/{sid}/reject", {"reason": ""}
    )
    assert location == f"/segments/{sid}/reject#error" and statuses[0] == 422
    assert "Hãy ghi lý do trả lại." in text


def test_home_lists_approved_segments_that_still_need_audio(as_role: RoleClient) -> None:
    sid = make_segment("editor1", title="Lời đã duyệt, chưa ghi âm", submit=True)
    approver = as_role("approver")
    post(approver, f"/segments/{sid}/approve", {})
    for role in ("editor", "approver"):
        home = as_role(role).get("/").text
        assert "Đã duyệt nhưng chưa có âm thanh" in home
        assert f'href="/segments/{sid}#audio">Lời đã duyệt, chưa ghi âm</a>' in home
    assert "Đã duyệt nhưng chưa có âm thanh" not in as_role("viewer").get("/").text


def test_submitting_without_audio_says_it_cannot_air_yet(as_role: RoleClient) -> None:
    sid = make_segment("editor1")
    editor = as_role("editor")
    assert "chưa phát được cho đến khi có bản ghi" in editor.get(f"/segments/{sid}").text
    location, _statuses, text = _send_and_reload(
        editor, f"/segments/{sid}", f"/segments/{sid}/submit", {}
    )
    assert location == f"/segments/{sid}#flow"
    assert "Đã gửi duyệt. Tin bài chưa có âm thanh nên chưa phát được" in text
