"""The console's framework: sign-in and out, session cookie and expiry, CSRF, role walls,
languages, headers, and error pages."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app import clock
from app.config import get_settings
from app.console.auth import safe_next
from tests.console.helpers import csrf, make_segment, post, sign_in, status_of
from tests.helpers import PASSWORD

ClientFactory = Callable[[], TestClient]
RoleClient = Callable[[str], TestClient]


def label_for(html: str, text: str) -> bool:
    """A <label> (or button) with exactly this text: the accessible name the contract uses."""
    return bool(re.search(rf"<(label|button|a)[^>]*>\s*{re.escape(text)}\s*</\1>", html))


def test_signed_out_root_is_the_vietnamese_sign_in_page(browser_client: ClientFactory) -> None:
    r = browser_client().get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for name in ("Tên đăng nhập", "Mật khẩu", "Đăng nhập"):
        assert label_for(r.text, name), name
    assert '<html lang="vi">' in r.text
    cookie = r.headers["set-cookie"]
    assert "loaxa_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; HTTPS sets it (next test)


def test_cookie_is_secure_over_https(station: dict[str, object]) -> None:
    from app.main import create_app

    with TestClient(create_app(), base_url="https://testserver") as client:
        assert "Secure" in client.get("/").headers["set-cookie"]


def test_sign_in_goes_to_next_and_shows_the_role_navigation(browser_client: ClientFactory) -> None:
    client = browser_client()
    sign_in(client, "editor1", next_path="/segments?status=draft")
    home = client.get("/")
    for name in ("Trang chủ", "Tin bài", "Lịch phát", "Báo cáo", "Đăng xuất"):
        assert label_for(home.text, name), name
    assert not label_for(home.text, "Thiết bị")  # devices are for approvers and admins
    assert "Bản nháp cần hoàn thành" in home.text


def test_wrong_password_keeps_the_name_and_says_so(browser_client: ClientFactory) -> None:
    client = browser_client()
    r = client.post(
        "/signin",
        data={"csrf_token": csrf(client), "username": "editor1", "password": "sai", "next": "/"},
    )
    assert r.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in r.text
    assert 'value="editor1"' in r.text
    assert client.get("/segments", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil", "x"])
def test_next_stays_on_this_site(target: str) -> None:
    assert safe_next(target) == "/"
    assert safe_next("/segments/3?x=1") == "/segments/3?x=1"


def test_sign_out_link_ends_the_session(as_role: RoleClient) -> None:
    client = as_role("editor")
    home = client.get("/")
    link = re.search(r'href="(/signout\?csrf=[0-9a-f]+)"', home.text)
    assert link
    r = client.get(link.group(1), follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert "Bạn đã đăng xuất." in client.get("/").text
    r = client.get("/segments", follow_redirects=False)
    assert r.headers["location"] == "/?next=/segments"


def test_sign_out_without_the_token_asks_first(as_role: RoleClient) -> None:
    client = as_role("editor")
    r = client.get("/signout")  # e.g. a link from another site
    assert r.status_code == 200 and "Bạn muốn đăng xuất khỏi loaxa?" in r.text
    assert client.get("/segments", follow_redirects=False).status_code == 200


def test_a_new_session_id_at_sign_in(browser_client: ClientFactory) -> None:
    client = browser_client()
    before = csrf(client)
    sign_in(client, "editor1")
    assert csrf(client) != before  # a session id planted before sign-in is worthless


def test_csrf_refusal_on_sign_in_keeps_the_name(browser_client: ClientFactory) -> None:
    client = browser_client()
    client.get("/")
    r = client.post(
        "/signin",
        data={"csrf_token": "0" * 32, "username": "editor1", "password": PASSWORD, "next": "/"},
    )
    assert r.status_code == 403
    assert "Biểu mẫu đã hết hạn" in r.text and 'value="editor1"' in r.text
    assert client.get("/segments", follow_redirects=False).status_code == 303


def test_csrf_refusal_on_a_form_keeps_what_was_typed(as_role: RoleClient) -> None:
    client = as_role("editor")
    typed = {
        "title": "Lịch tiếp công dân tháng 4",
        "topic": "policy",
        "programme": "cchc",
        "target_month": "2024-04",
        "script": "Kính thưa bà con…",
    }
    r = client.post("/segments/new", data={"csrf_token": "bad", **typed})
    assert r.status_code == 403
    assert "Biểu mẫu đã hết hạn" in r.text
    assert 'value="Lịch tiếp công dân tháng 4"' in r.text and "Kính thưa bà con…" in r.text
    assert "Lịch tiếp công dân" not in client.get("/segments").text  # nothing was created


def test_the_token_of_another_session_is_refused(as_role: RoleClient) -> None:
    editor, other = as_role("editor"), as_role("editor")
    r = editor.post(
        "/segments/new",
        data={"csrf_token": csrf(other), "title": "x", "topic": "policy", "programme": "cchc"},
    )
    assert r.status_code == 403


def test_the_cookie_never_authorises_the_api(as_role: RoleClient) -> None:
    client = as_role("admin")
    assert client.get("/segments").status_code == 200
    assert client.get("/api/v1/segments").status_code == 401
    token = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert client.get("/api/v1/segments", headers=headers).status_code == 200


def test_viewer_sees_no_approve_button_and_a_forged_post_gets_403(as_role: RoleClient) -> None:
    segment_id = make_segment("editor1", submit=True)
    viewer = as_role("viewer")
    page = viewer.get(f"/segments/{segment_id}")
    assert page.status_code == 200
    assert not label_for(page.text, "Duyệt") and not label_for(page.text, "Trả lại")
    r = post(viewer, f"/segments/{segment_id}/approve", {})
    assert r.status_code == 403
    assert "Trang hoặc thao tác này dành cho vai trò: Duyệt (Văn phòng UBND)." in r.text
    assert status_of(segment_id) == "submitted"
    approver = as_role("approver")
    assert label_for(approver.get(f"/segments/{segment_id}").text, "Duyệt")


def test_editor_cannot_approve_nor_open_devices(as_role: RoleClient) -> None:
    segment_id = make_segment("editor1", submit=True)
    editor = as_role("editor")
    assert post(editor, f"/segments/{segment_id}/approve", {}).status_code == 403
    assert editor.get("/devices").status_code == 403
    assert status_of(segment_id) == "submitted"


def test_an_expired_session_returns_to_where_the_person_was(as_role: RoleClient) -> None:
    client = as_role("editor")
    segment_id = make_segment("editor1")
    minutes = get_settings().console_session_minutes
    with clock.frozen(clock.now() + timedelta(minutes=minutes + 1)):
        r = client.get(f"/segments/{segment_id}?tab=audio", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/?next=/segments/{segment_id}%3Ftab%3Daudio&expired=1"
        page = client.get(r.headers["location"])
        assert "Phiên làm việc đã hết hạn" in page.text
        assert f'name="next" value="/segments/{segment_id}?tab=audio"' in page.text
        sign_in(client, "editor1", next_path=f"/segments/{segment_id}?tab=audio")
        assert client.get(f"/segments/{segment_id}").status_code == 200


def test_a_page_view_keeps_the_session_alive(as_role: RoleClient) -> None:
    client = as_role("editor")
    minutes = get_settings().console_session_minutes
    start = clock.now()
    with clock.frozen(start + timedelta(minutes=minutes - 1)):
        assert client.get("/segments", follow_redirects=False).status_code == 200
    with clock.frozen(start + timedelta(minutes=2 * minutes - 2)):
        assert client.get("/segments", follow_redirects=False).status_code == 200


def test_a_form_sent_after_expiry_is_kept_for_after_sign_in(as_role: RoleClient) -> None:
    client = as_role("editor")
    token = csrf(client, "/segments/new")
    minutes = get_settings().console_session_minutes
    with clock.frozen(clock.now() + timedelta(minutes=minutes + 1)):
        r = client.post(
            "/segments/new",
            data={
                "csrf_token": token,
                "title": "Tin về PAPI 2023",
                "topic": "indices",
                "programme": "cchc",
            },
            headers={"referer": "http://testserver/segments/new"},
        )
        assert r.status_code == 401
        assert "Phiên làm việc đã hết hạn" in r.text
        assert 'name="carry.title" value="Tin về PAPI 2023"' in r.text
        resumed = client.post(
            "/signin",
            data={
                "csrf_token": csrf(client),
                "username": "editor1",
                "password": PASSWORD,
                "next": "/segments/new",
                "carry_action": "/segments/new",
                "carry.title": "Tin về PAPI 2023",
                "carry.topic": "indices",
                "carry.programme": "cchc",
            },
        )
        assert resumed.status_code == 200
        assert 'action="/segments/new"' in resumed.text
        assert 'name="title" value="Tin về PAPI 2023"' in resumed.text
        again = client.post(
            "/segments/new",
            data={
                "csrf_token": csrf(client),
                "title": "Tin về PAPI 2023",
                "topic": "indices",
                "programme": "cchc",
            },
            follow_redirects=False,
        )
        assert again.status_code == 303


def test_a_new_password_ends_the_old_sessions(as_role: RoleClient) -> None:
    from sqlalchemy import select

    from app.accounts.models import User
    from app.accounts.security import hash_password
    from app.db import unit_of_work

    client = as_role("editor")
    with unit_of_work() as db:
        user = db.scalars(select(User).where(User.username == "editor1")).one()
        user.password_hash = hash_password("một-mật-khẩu-mới-dài")
    assert client.get("/segments", follow_redirects=False).status_code == 303


def test_english_is_one_click_away_and_remembered(as_role: RoleClient) -> None:
    client = as_role("approver")
    r = client.get("/language/en?next=/segments", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/segments")
    assert "loaxa_lang=en" in r.headers["set-cookie"]
    page = client.get("/segments")
    assert '<html lang="en">' in page.text
    for name in ("Home", "Segments", "Schedule", "Devices", "Reports", "Sign out"):
        assert label_for(page.text, name), name
    assert label_for(page.text, "Add a segment")
    client.get("/language/vi")
    assert label_for(client.get("/segments").text, "Thêm tin bài")


def test_every_english_message_is_translated() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "scripts" / "console_messages.py"
    spec = importlib.util.spec_from_file_location("console_messages", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from babel.messages.pofile import read_po

    with module.PO.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    catalog.update(module.extract(), no_fuzzy_matching=True)
    assert module.untranslated(catalog) == []


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("editor", "/"),
        ("approver", "/"),
        ("viewer", "/"),
        ("editor", "/segments"),
        ("editor", "/segments/new"),
        ("editor", "/segments/{id}"),
        ("approver", "/segments/{id}"),
        ("viewer", "/schedule"),
        ("approver", "/devices"),
        ("viewer", "/reports"),
    ],
)
def test_each_page_renders_nfc_vietnamese_with_security_headers(
    as_role: RoleClient, role: str, path: str
) -> None:
    segment_id = make_segment("editor1", submit=role == "approver")
    r = as_role(role).get(path.format(id=segment_id))
    assert r.status_code == 200, r.text
    assert unicodedata.is_normalized("NFC", r.text)
    assert "Trang chủ" in r.text and "Đăng xuất" in r.text
    csp = r.headers["content-security-policy"]
    for rule in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "media-src 'self' blob:",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert rule in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["cache-control"] == "no-store"
    # No inline script, style or handler: the CSP would block them.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert not re.search(r"\sstyle=|\son[a-z]+=", r.text)


def test_static_files_are_served_with_a_content_hash(browser_client: ClientFactory) -> None:
    client = browser_client()
    page = client.get("/")
    css = re.search(r'href="(/static/console/console\.css\?v=[0-9a-f]+)"', page.text)
    assert css
    r = client.get(css.group(1))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "immutable" in r.headers["cache-control"]
    assert client.get("/static/console-js/segments/detail.js").status_code == 200
    assert client.get("/static/console-js/segments/detail.html").status_code == 404


def test_an_unexpected_error_is_a_page_in_words_not_a_trace(
    as_role: RoleClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.console import dashboard

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(dashboard, "home", broken)
    r = as_role("editor").get("/")
    assert r.status_code == 500
    assert "Đã có lỗi ở máy chủ" in r.text
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_unknown_segment_and_bad_path_are_pages(as_role: RoleClient) -> None:
    client = as_role("editor")
    r = client.get("/segments/999999")
    assert r.status_code == 404 and "Không tìm thấy mục này" in r.text
    r = client.get("/segments/abc")
    assert r.status_code == 404 and "Địa chỉ này không đúng." in r.text
    r = client.get(f"/segments/{2**64}")  # past what the database holds: still a page
    assert r.status_code == 404 and "Địa chỉ này không đúng." in r.text
