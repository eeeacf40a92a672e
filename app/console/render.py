"""Templates: one Jinja environment, the navigation, and `render` / `redirect` for pages.

Every page template extends `base.html`. Its handler passes `title` (a message id, shown
translated) or `page_title` (text shown as it is, such as a segment's title), and what the
page needs. Every template also gets: `user`, `nav` (the links the user's role may follow),
`csrf_field()` (the hidden input every form must carry), `csrf_token`, `_()` and
`ngettext()` (translation), `lang`, `here` (this path, for `?next=`), `notice` (the message
left by the redirect that led here), `static(name)` (a cache-busted URL), `script(name)`
(the URL of a template's own JavaScript, kept beside it: `script("segments/detail.js")`),
`can(user, role)`, `labels`, `field_message(name)` (a refused form's message for that
field), and the formats `|date`, `|datetime` (the station's time
zone), `|month`, `|duration` (mm:ss), `|number`.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup, escape

from app.accounts.models import Role, User
from app.config import get_settings
from app.console import i18n, labels
from app.console import session as console_session
from app.console.auth import can, here
from app.console.i18n import N_

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static/console"
SCRIPTS_URL = "/static/console-js"
NOTICE_COOKIE = "loaxa_notice"
# A refused form's messages by field, for the page being rendered: read by the macros
# field_error/invalid, which are imported without the template's context.
_FIELD_ERRORS: ContextVar[dict[str, str] | None] = ContextVar("field_errors", default=None)


def field_message(name: str) -> str | None:
    """The refusal of field `name` on the page being rendered, if it had one."""
    return (_FIELD_ERRORS.get() or {}).get(name)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # message id
    role: Role


# The console's pages, in menu order. A new page adds its line here (and its router in
# app/console/router.py); the role is who sees the link, the page's dependency is the wall.
NAV: list[NavItem] = [
    NavItem("/", N_("Trang chủ"), Role.viewer),
    NavItem("/segments", N_("Tin bài"), Role.viewer),
    NavItem("/schedule", N_("Lịch phát"), Role.viewer),
    NavItem("/devices", N_("Thiết bị"), Role.approver),
    NavItem("/reports", N_("Báo cáo"), Role.viewer),
    NavItem("/emergency", N_("Phát khẩn cấp"), Role.approver),
    NavItem("/admin", N_("Quản trị"), Role.admin),
]

# What a redirect may leave for the next page to say, by key (never free text in a cookie).
NOTICES: dict[str, str] = {
    "signed-out": N_("Bạn đã đăng xuất."),
    "device-revoked": N_("Đã thu hồi mã của thiết bị: máy không kết nối được nữa."),
    "device-exists": N_(
        "Máy này vừa được thêm rồi, nên không thêm lần nữa. Mã chỉ hiện một lần: nếu chưa "
        "chép, hãy bấm “Cấp mã mới” ở dòng của máy."
    ),
    "saved": N_("Đã lưu."),
    "created": N_("Đã tạo tin bài."),
    "audio": N_("Đã gắn tệp âm thanh: đã đo độ dài và chuẩn hóa âm lượng."),
    "tts": N_("Đã tạo giọng đọc máy từ nội dung."),
    "submitted": N_("Đã gửi duyệt."),
    "approved": N_("Đã duyệt."),
    "rejected": N_("Đã trả lại cho người biên tập."),
    "rundown": N_("Đã lưu thứ tự phát."),
    "assembled": N_("Đã ghép buổi phát: bản ghép nghe được bên dưới."),
    "rundown-remade": N_(
        "Đã lưu thứ tự phát và ghép lại buổi phát: bản ghép mới nghe được bên dưới."
    ),
    "rundown-unassembled": N_(
        "Đã lưu thứ tự phát. Bản ghép cũ không còn dùng được và buổi phát chưa ghép lại, "
        "vì tổng thời lượng nằm ngoài khung: hãy sửa thứ tự rồi bấm Ghép buổi phát."
    ),
    "rundown-remake-failed": N_(
        "Đã lưu thứ tự phát, nhưng chưa ghép lại được buổi phát: hãy bấm Ghép buổi phát."
    ),
    "warning-seen": N_("Đã ghi nhận: bạn đã xem cảnh báo."),
    "rundown-assembled": N_("Đã lưu thứ tự phát và ghép buổi phát: bản ghép nghe được bên dưới."),
    "rundown-not-made": N_(
        "Đã lưu thứ tự phát, nhưng chưa ghép: tổng thời lượng nằm ngoài khung. Hãy sửa thứ "
        "tự rồi bấm Ghép buổi phát."
    ),
}
# Notices that tell of something left to do: shown as a warning, not as a success.
WARN_NOTICES = frozenset(
    {"rundown-unassembled", "rundown-remake-failed", "rundown-not-made", "device-exists"}
)


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.globals.update(
        static=static_url,
        script=script_url,
        can=can,
        labels=labels,
        languages=i18n.LANGUAGES,
        field_message=field_message,
    )
    env.filters.update(
        month=i18n.format_month,
        duration=i18n.format_duration,
        number=i18n.format_number,
        quote=lambda s: quote(str(s), safe="/"),
        # Dates in the time zone of the page's context (the user's station).
        date=pass_context(lambda ctx, v: i18n.format_date(v, ctx["tz"])),
        datetime=pass_context(lambda ctx, v: i18n.format_datetime(v, ctx["tz"])),
    )
    return env


def warm() -> None:
    """Compile every template and measure the CCHC column's intro and outro once, so the
    first person after a start does not wait for it (some seconds on a busy machine)."""
    from app.audio import service as audio

    env = environment()
    for name in env.list_templates(filter_func=lambda n: n.endswith(".html")):
        env.get_template(name)
    try:
        audio.programme_templates("cchc")
    except Exception:  # measured again on first use, where a failure is reported
        return


@lru_cache
def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    """The URL of a file in app/console/static, with its content hash for caching."""
    return f"{STATIC_URL}/{name}?v={_static_version(name)}"


@lru_cache
def _script_version(name: str) -> str:
    return hashlib.sha256((TEMPLATES_DIR / name).read_bytes()).hexdigest()[:10]


def script_url(name: str) -> str:
    """The URL of a template's JavaScript, which sits beside it (templates/segments/x.js)."""
    return f"{SCRIPTS_URL}/{name}?v={_script_version(name)}"


def station_zone(request: Request) -> ZoneInfo:
    """The time zone dates are shown in: the user's station's, else the setting."""
    tz = getattr(request.state, "console_tz", None)
    return ZoneInfo(tz) if tz else get_settings().tz


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """The page `template` for this request, with the common context."""
    user: User | None = getattr(request.state, "console_user", None)
    tz = station_zone(request)
    notice_key = request.cookies.get(NOTICE_COOKIE)
    token = console_session.csrf_token(request)
    page = here(request)  # where a refused form comes back to (app/console/forms.py)
    kept = getattr(request.state, "console_form", None)
    field_errors: dict[str, str] = getattr(kept, "field_errors", {}) if kept else {}
    path = request.url.path
    nav = [
        {
            "path": n.path,
            "label": n.label,
            "current": path == n.path or path.startswith(n.path + "/"),
        }
        for n in NAV
        if user is not None and Role(user.role).at_least(n.role)
    ]
    _FIELD_ERRORS.set(field_errors)
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            tz=tz,
            user=user,
            nav=nav,
            lang=i18n.current_language(),
            here=here(request),
            station_name=getattr(request.state, "console_station_name", None),
            notice=NOTICES.get(notice_key or ""),
            notice_warn=notice_key in WARN_NOTICES,
            csrf_field=lambda: Markup(
                f'<input type="hidden" name="{console_session.CSRF_FIELD}" value="{token}">'
                f'<input type="hidden" name="_page" value="{escape(page)}">'
            ),
            csrf_token=token,
            **(context or {}),
        )
    )
    response = HTMLResponse(html, status_code=status)
    if notice_key:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def redirect(url: str, *, notice: str | None = None) -> Response:
    """303 See Other to `url` (after a POST), leaving a notice for the next page."""
    response = RedirectResponse(url, status_code=303)
    if notice is not None:
        if notice not in NOTICES:
            raise KeyError(f"unknown notice {notice!r}: add it to NOTICES")
        response.set_cookie(NOTICE_COOKIE, notice, httponly=True, samesite="lax", path="/")
    return response
