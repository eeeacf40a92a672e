"""The console's session cookie and its CSRF token.

Rules:
- One cookie, `loaxa_session`, for every visitor, signed with the app's key (itsdangerous,
  its own salt): `{"sid": random id, "uid": user id, "pw": password fingerprint, "seen":
  last page view}`. `uid` is absent while signed out. Nothing secret is in it.
- `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when the request came over HTTPS.
- Expiry: a signed-in session that has seen no page for `console_session_minutes` (by
  loaxa's clock, which tests control) is over; the person signs in again and goes back to
  where they were. `seen` is refreshed at most once a minute, not on every request.
- A new `sid` at sign-in and at sign-out: a session id planted before sign-in is useless.
- Changing the password (or disabling the account) ends every session of that user: the
  cookie carries a fingerprint of the password hash and must match.
- CSRF: every form carries `csrf_token`, an HMAC of the session id; a POST without the
  token of the cookie that came with it is refused. A cross-site page can read neither.
- The cookie never authorises the JSON API: `/api/v1` reads only `Authorization`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeSerializer

from app import clock
from app.accounts.security import password_fingerprint
from app.config import get_settings

COOKIE = "loaxa_session"
CSRF_FIELD = "csrf_token"
_SALT = "loaxa.console.session"
_REFRESH_AFTER_S = 60


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie says; `expired` marks a signed-in session that timed out."""

    sid: str
    uid: int | None = None
    pw: str | None = None
    seen: float = 0.0
    expired: bool = False
    dirty: bool = False  # the response must (re)write the cookie


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().signing_key(), salt=_SALT)


def _new(*, dirty: bool = True, expired: bool = False) -> ConsoleSession:
    return ConsoleSession(sid=secrets.token_urlsafe(18), dirty=dirty, expired=expired)


def _decode(raw: str | None) -> ConsoleSession:
    if not raw:
        return _new()
    try:
        data: Any = _serializer().loads(raw)
    except BadSignature:
        return _new()
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
        return _new()
    uid, seen = data.get("uid"), data.get("seen")
    if not isinstance(uid, int) or not isinstance(seen, int | float):
        return ConsoleSession(sid=data["sid"])
    idle = clock.now().timestamp() - seen
    if idle > get_settings().console_session_minutes * 60:
        return _new(expired=True)
    return ConsoleSession(sid=data["sid"], uid=uid, pw=str(data.get("pw")), seen=float(seen))


def current(request: Request) -> ConsoleSession:
    """The request's session, read from the cookie once."""
    found = getattr(request.state, "console_session", None)
    if found is None:
        found = _decode(request.cookies.get(COOKIE))
        request.state.console_session = found
    return found


def sign_in(request: Request, *, user_id: int, password_hash: str) -> None:
    """Start a signed-in session under a new id."""
    request.state.console_session = ConsoleSession(
        sid=secrets.token_urlsafe(18),
        uid=user_id,
        pw=password_fingerprint(password_hash),
        seen=clock.now().timestamp(),
        dirty=True,
    )


def sign_out(request: Request) -> None:
    """End the session: a fresh, signed-out one replaces it."""
    request.state.console_session = _new()


def touch(request: Request) -> None:
    """Note a page view; the cookie is rewritten only when the last note is a minute old."""
    session = current(request)
    now = clock.now().timestamp()
    if session.uid is not None and now - session.seen >= _REFRESH_AFTER_S:
        request.state.console_session = replace(session, seen=now, dirty=True)


def write_cookie(request: Request, response: Response) -> None:
    """Set the cookie on the response when the session is new or changed."""
    session = current(request)
    if not session.dirty:
        return
    payload: dict[str, Any] = {"sid": session.sid}
    if session.uid is not None:
        payload.update(uid=session.uid, pw=session.pw, seen=int(session.seen))
    response.set_cookie(
        COOKIE,
        _serializer().dumps(payload),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def csrf_token(request: Request) -> str:
    """The token every form of this session carries."""
    key = get_settings().signing_key().encode()
    message = b"csrf:" + current(request).sid.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """True when `submitted` is this session's token (compared in constant time)."""
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500 otherwise).
    expected = csrf_token(request).encode()
    return bool(submitted) and hmac.compare_digest(expected, str(submitted).encode())
