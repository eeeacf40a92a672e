"""Who is looking at a console page, and what they may do there.

Page handlers declare the role they need with one of the aliases below, exactly as API
handlers do with `ViewerUser`, `EditorUser` …:

    @router.get("/segments")
    def segments_page(request: Request, user: ViewerPage) -> HTMLResponse: ...

Signed out (or expired) → `SignInRequired`, which the console turns into the sign-in page
with `?next=` back to where the person was; signed in with too small a role → `RoleRefused`,
a 403 page in words. Templates get `can(user, "approver")` to hide what a role cannot do;
hiding a button is a courtesy, the dependency is the wall.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from app.accounts import sessions
from app.accounts.models import Role, User
from app.accounts.security import password_fingerprint
from app.console import session as console_session
from app.db import unit_of_work
from app.stations.models import Station


class SignInRequired(Exception):
    """Nobody is signed in (or the session timed out): show the sign-in page."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


class RoleRefused(Exception):
    """Signed in, but the page or action needs a larger role."""

    def __init__(self, needed: Role) -> None:
        super().__init__(needed.value)
        self.needed = needed


def safe_next(value: str | None, default: str = "/") -> str:
    """`value` when it is a path on this site (never another host, never a scheme)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(c in value for c in "\r\n\\"):
        return default
    return value


def here(request: Request) -> str:
    """The path and query of this request, for `?next=`."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def sign_in_url(next_path: str, *, expired: bool = False) -> str:
    url = "/?next=" + quote(safe_next(next_path), safe="/")
    return url + "&expired=1" if expired else url


def signed_in_user(request: Request) -> User | None:
    """The signed-in, active user whose session the server has not ended (sign-out,
    disabling, a new password: ``app.accounts.sessions``); else None."""
    cached = getattr(request.state, "console_user", None)
    if cached is not None:
        return cached
    session = console_session.current(request)
    if session.uid is None:
        return None
    with unit_of_work(write=False) as db:
        user = db.get(User, session.uid)
        if user is not None and not sessions.is_live(db, sid=session.sid, user_id=user.id):
            user = None  # signed out, or ended when the user was disabled or re-passworded
        if user is not None:
            db.expunge(user)
            station = db.get(Station, user.station_id) if user.station_id else None
            if station is not None:
                request.state.console_station_name = station.name
                request.state.console_tz = station.timezone
    if (
        user is None
        or not user.is_active
        or session.pw != password_fingerprint(user.password_hash)
    ):
        console_session.sign_out(request)
        return None
    console_session.touch(request)
    request.state.console_user = user
    return user


def start_session(request: Request, *, user: User) -> None:
    """Sign the user in: a new session id, recorded so that the server can end it."""
    console_session.sign_in(request, user_id=user.id, password_hash=user.password_hash)
    with unit_of_work() as db:
        sessions.start(db, sid=console_session.current(request).sid, user_id=user.id)


def end_session(request: Request) -> None:
    """Sign out: this session ends for good (its cookie, replayed, is signed out)."""
    with unit_of_work() as db:
        sessions.end(db, sid=console_session.current(request).sid)
    console_session.sign_out(request)


def can(user: User | None, role: str) -> bool:
    """True when the user has at least `role`'s rights."""
    return user is not None and Role(user.role).at_least(Role(role))


def page_user(minimum: Role) -> Callable[[Request], User]:
    """A dependency: the signed-in user with at least `minimum`, else sign-in or 403."""

    def check(request: Request) -> User:
        user = signed_in_user(request)
        if user is None:
            # A form sent after expiry comes back to the page it was on, not its action.
            target = here(request) if request.method == "GET" else _referring_page(request)
            raise SignInRequired(target, expired=console_session.current(request).expired)
        if not Role(user.role).at_least(minimum):
            raise RoleRefused(minimum)
        return user

    return check


def _referring_page(request: Request) -> str:
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.netloc == request.url.netloc:
            return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return "/"


ViewerPage = Annotated[User, Depends(page_user(Role.viewer))]
EditorPage = Annotated[User, Depends(page_user(Role.editor))]
ApproverPage = Annotated[User, Depends(page_user(Role.approver))]
AdminPage = Annotated[User, Depends(page_user(Role.admin))]
