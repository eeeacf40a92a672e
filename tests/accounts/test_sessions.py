"""Sessions the server can end (issue 21, finding 4), through a real server: a cookie or
token replayed after it was ended is signed out, for good."""

from __future__ import annotations

import re

import httpx
import pytest

from app.accounts import throttle
from app.accounts.models import Role
from app.console.session import COOKIE
from tests.helpers import PASSWORD, make_station, make_user

TOKEN = "/api/v1/auth/token"

# Generous: the machine may be busy (argon2, ffmpeg); no answer should come near it.
TIMEOUT = 60.0


@pytest.fixture
def people(database_url: str) -> dict[str, int]:
    station = int(make_station()["station_id"])  # type: ignore[call-overload]
    throttle.reset()
    return {
        "editor": make_user("editor1", Role.editor, station),
        "admin": make_user("admin", Role.admin),
    }


def _console(url: str, username: str) -> tuple[httpx.Client, str]:
    """A browser signed in to the console; and its session cookie, as a thief would copy it."""
    http = httpx.Client(base_url=url, follow_redirects=False, timeout=TIMEOUT)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', http.get("/").text)
    assert token
    r = http.post(
        "/signin", data={"csrf_token": token.group(1), "username": username, "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return http, http.cookies[COOKIE]


def _signed_in(url: str, cookie: str) -> bool:
    """Whether a fresh browser holding only this cookie sees a page that needs sign-in."""
    with httpx.Client(
        base_url=url, follow_redirects=False, cookies={COOKIE: cookie}, timeout=TIMEOUT
    ) as http:
        r = http.get("/segments")
        if r.status_code == 303:
            assert r.headers["location"].startswith("/?next=")
            return False
        assert r.status_code == 200, r.text
        return True


def _bearer(url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = httpx.post(url + TOKEN, data={"username": username, "password": password}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_cookie_replayed_after_sign_out_is_signed_out(
    server_url: str, people: dict[str, int]
) -> None:
    """Finding 4: the cookie replayed after "Đăng xuất" was still signed in."""
    http, cookie = _console(server_url, "editor1")
    assert _signed_in(server_url, cookie)
    page = http.get("/segments").text
    link = re.search(r'href="(/signout\?csrf=[0-9a-f]+)"', page)
    assert link, "no Đăng xuất link"
    assert http.get(link.group(1)).status_code == 303  # "Đăng xuất"
    assert not _signed_in(server_url, cookie)
    http.close()
    # Another session of the same user (the phone) is not ended by it.
    phone, phone_cookie = _console(server_url, "editor1")
    assert _signed_in(server_url, phone_cookie)
    phone.close()


@pytest.mark.parametrize("how", ["disable", "password"])
def test_disabling_or_a_new_password_ends_every_session_and_token_for_good(
    server_url: str, people: dict[str, int], how: str
) -> None:
    """Finding 4: disabling and re-enabling a user revived its old cookie and API token."""
    admin = _bearer(server_url, "admin")
    office, office_cookie = _console(server_url, "editor1")
    phone, phone_cookie = _console(server_url, "editor1")
    token = _bearer(server_url, "editor1")
    assert (
        httpx.get(server_url + "/api/v1/users/me", headers=token, timeout=TIMEOUT).status_code
        == 200
    )
    user = f"{server_url}/api/v1/users/{people['editor']}"
    new_password = "mật-khẩu-mới-dài-đủ"
    if how == "disable":
        assert (
            httpx.patch(user, json={"disabled": True}, headers=admin, timeout=TIMEOUT).status_code
            == 200
        )
        assert (
            httpx.patch(user, json={"disabled": False}, headers=admin, timeout=TIMEOUT).status_code
            == 200
        )
    else:
        r = httpx.post(
            user + "/password", json={"password": new_password}, headers=admin, timeout=TIMEOUT
        )
        assert r.status_code == 204
    assert not _signed_in(server_url, office_cookie)
    assert not _signed_in(server_url, phone_cookie)
    assert (
        httpx.get(server_url + "/api/v1/users/me", headers=token, timeout=TIMEOUT).status_code
        == 401
    )
    # Signing in again works, and gives a live session and token.
    password = PASSWORD if how == "disable" else new_password
    fresh = _bearer(server_url, "editor1", password)
    assert (
        httpx.get(server_url + "/api/v1/users/me", headers=fresh, timeout=TIMEOUT).status_code
        == 200
    )
    office.close()
    phone.close()
