"""Signing in to the console the way a browser does: read the form's token, post it."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.accounts.models import User
from app.db import unit_of_work
from app.segments import service as segments
from tests.helpers import PASSWORD

# In a form's hidden field, or in the "Đăng xuất" link of a page without forms.
TOKEN = re.compile(r'(?:name="csrf_token" value="|/signout\?csrf=)([0-9a-f]+)')


def csrf(client: TestClient, path: str = "/") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    r = client.get(path)
    found = TOKEN.search(r.text)
    assert found, f"no form token on {path}: {r.status_code}"
    return found.group(1)


def sign_in(client: TestClient, username: str, *, next_path: str = "/") -> None:
    token = csrf(client)
    r = client.post(
        "/signin",
        data={"csrf_token": token, "username": username, "password": PASSWORD, "next": next_path},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == next_path


def post(client: TestClient, path: str, data: dict[str, Any], files: Any = None) -> httpx.Response:
    """A form post with the session's token, as the page's form sends it."""
    return client.post(
        path, data={"csrf_token": csrf(client), **data}, files=files, follow_redirects=False
    )


def make_segment(
    username: str,
    *,
    title: str = "Kết quả CCHC quý I",
    script: str | None = None,
    submit: bool = False,
) -> int:
    """A segment created (and optionally submitted) by `username` through the services."""
    from sqlalchemy import select

    with unit_of_work() as db:
        user = db.scalars(select(User).where(User.username == username)).one()
        segment = segments.create_segment(
            db,
            user=user,
            title=title,
            programme="cchc",
            topic="progress",
            script=script or "Kính thưa bà con, xã thông báo kết quả cải cách hành chính.",
            target_month="2024-03",
        )
        if submit:
            segments.submit_segment(db, user=user, segment=segment)
        return segment.id


def status_of(segment_id: int) -> str:
    from app.segments.models import Segment

    with unit_of_work(write=False) as db:
        segment = db.get(Segment, segment_id)
        assert segment is not None
        return segment.status


def refused(
    client: TestClient, path: str, data: dict[str, Any], files: Any = None
) -> httpx.Response:
    """A post the console refuses: it answers with a redirect back to the form's page
    (POST/redirect/GET), and that page shows why; the page's answer is returned."""
    r = post(client, path, data, files)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert r.headers["location"].endswith("#error"), r.headers["location"]
    return client.get(r.headers["location"].split("#")[0], follow_redirects=False)
