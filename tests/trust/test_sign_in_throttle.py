"""One throttle for every way to sign in (issue 21, findings 3 and 12), through a real server.

The server's peer is 127.0.0.1, a trusted proxy by default: X-Forwarded-For names the
client address each request comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from app.accounts import throttle
from app.accounts.models import Role
from app.config import get_settings
from tests.helpers import PASSWORD, make_station, make_user

TOKEN = "/api/v1/auth/token"

# Generous: the machine may be busy (argon2, ffmpeg); no answer should come near it.
TIMEOUT = 60.0


@pytest.fixture
def viewer(database_url: str) -> Iterator[str]:
    make_user("viewer1", Role.viewer, int(make_station()["station_id"]))  # type: ignore[call-overload]
    throttle.reset()
    yield "viewer1"
    throttle.reset()


def _console_sign_in(
    http: httpx.Client, username: str, password: str, address: str
) -> httpx.Response:
    page = http.get("/", headers={"X-Forwarded-For": address})
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token, page.text[:300]
    return http.post(
        "/signin",
        data={"csrf_token": token.group(1), "username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


def test_40_wrong_console_passwords_get_429s_and_the_owner_still_signs_in_elsewhere(
    server_url: str, viewer: str
) -> None:
    """Finding 3: 40 wrong passwords in 5 s were all 401, then the right one worked."""
    stranger = "203.0.113.5"
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=TIMEOUT) as http:
        answers = [_console_sign_in(http, viewer, f"sai-{n}", stranger) for n in range(40)]
    statuses = [r.status_code for r in answers]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    last = answers[-1]
    assert int(last.headers["Retry-After"]) > 0
    assert "thử lại" in last.text  # said in words, on the sign-in page
    # The stranger's right guess is refused too until the window moves ...
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=TIMEOUT) as http:
        assert _console_sign_in(http, viewer, PASSWORD, stranger).status_code == 429
    # ... but the owner, from another address, signs in (console and API).
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=TIMEOUT) as http:
        r = _console_sign_in(http, viewer, PASSWORD, "198.51.100.7")
        assert r.status_code == 303, r.text
        r = http.post(
            TOKEN,
            data={"username": viewer, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert r.status_code == 200


def test_the_apis_429_applies_to_the_console_and_back(
    server_url: str, viewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 3: while the API answered 429 for a user, the console signed that user in."""
    monkeypatch.setattr(get_settings(), "token_rate_per_username", "3/minute")
    here = {"X-Forwarded-For": "192.0.2.10"}
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=TIMEOUT) as http:
        for _ in range(3):
            r = http.post(TOKEN, data={"username": viewer, "password": "sai"}, headers=here)
            assert r.status_code == 401
        assert (
            http.post(
                TOKEN, data={"username": viewer, "password": PASSWORD}, headers=here
            ).status_code
            == 429
        )
        assert _console_sign_in(http, viewer, PASSWORD, "192.0.2.10").status_code == 429
    throttle.reset()
    there = "192.0.2.20"
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=TIMEOUT) as http:
        for _ in range(3):
            assert _console_sign_in(http, viewer, "sai", there).status_code == 401
        r = http.post(
            TOKEN,
            data={"username": viewer, "password": PASSWORD},
            headers={"X-Forwarded-For": there},
        )
        assert r.status_code == 429


def test_failures_from_many_addresses_do_not_lock_the_owner_out_of_the_api(
    server_url: str, viewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 12: ten failed API sign-ins a minute from anywhere locked the right password
    out too (counting per username alone let anyone deny a user the API)."""
    with httpx.Client(base_url=server_url, timeout=TIMEOUT) as http:
        for n in range(12):  # a botnet: each address fails once
            r = http.post(
                TOKEN,
                data={"username": viewer, "password": "sai"},
                headers={"X-Forwarded-For": f"198.18.0.{n + 1}"},
            )
            assert r.status_code == 401
        r = http.post(
            TOKEN,
            data={"username": viewer, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.99"},
        )
        assert r.status_code == 200, r.text
