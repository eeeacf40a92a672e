"""Posted forms: read once, CSRF checked, checked by the API's own models, and answered with
a redirect, after success and after refusal alike (POST/redirect/GET).

The pattern every console POST follows (see app/console/pages/segments.py):

    @router.post("/segments/{segment_id}")
    def save(request: Request, user: EditorPage, segment_id: int, form: FormDep) -> Response:
        def again(message: str, status: int) -> Response:   # the page, with what was typed
            return render(request, "segments/detail.html", {..., "form": form,
                          "error": message}, status=status)

        def action(db: Session) -> Response:                # the same services as the API
            body = form.model(SegmentUpdate, {"title": form.get("title"), ...})
            segments.update_segment(db, user=user, ...)
            return redirect(f"/segments/{segment_id}", notice=N_("Đã lưu."))

        return run_form(form, again=again, action=action)

`run_form` refuses a missing or wrong CSRF token (403) before `action` runs, runs `action`
in its own unit of work (committed when it returns, rolled back when it raises). A domain
error is a refusal: nothing half-done is committed, what was typed is kept on the server
(app/console/models.py: one row per session and page, until the same form succeeds or the
session's idle time passes) and the answer is a 303 back to the page the form was on. When
that page is asked for, the console shows it as `again(<Vietnamese message>, <status>)`
would have: `again` runs then, from the form as it was kept (app/console/routing.py calls
the form's own handler again, with `form.replay` set, and `run_form` answers with `again`
without running `action`). So a reload never posts twice, and nothing typed is lost.

Rules for handlers, since they run again to show a refusal: everything that changes
something happens inside `action` (or `task`); what a handler does before `run_form` must
only read. Files cannot be kept (a browser never re-sends a file after a redirect): the page
says so in the refusal's message.

`run_form_task` is the same for services that open their own units of work (audio ingest,
text-to-speech).

Input is checked once, by the API's request models: `form.model(SegmentCreate, data)` builds
the same pydantic model the API's route takes, and a field it refuses comes back to the page
as a message beside that field (`FieldErrors`). Integers are ASCII digits, bounded
(`form.int_value`, `form.int_list`): "²" is a digit to `str.isdigit()` and not to `int()`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response, UploadFile
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import clock
from app.config import get_settings
from app.console import session as console_session
from app.console.auth import safe_next
from app.console.i18n import _
from app.console.messages import describe_error
from app.console.models import KeptForm
from app.console.render import redirect
from app.db import INT32_MAX, unit_of_work
from app.errors import Invalid, LoaxaError
from app.text import nfc

PAGE_FIELD = "_page"  # the page a form was on (every form has it, beside the CSRF token)
_RAW = frozenset({"password", console_session.CSRF_FIELD})
_DIGITS = re.compile(r"[0-9]{1,10}")
MAX_KEPT_PER_USER = 20  # pages with a refused form kept, per user (the oldest go first)

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Refusal:
    """A refused form shown again on its page: what it said, and the status it had."""

    error: str
    status: int
    fields: dict[str, str] = field(default_factory=dict)


class FieldErrors(Invalid):
    """Fields the API's model refused, each with its message for the person (422)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class Refused(LoaxaError):
    """A refusal the console has put in the person's words itself: shown as it is."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.status_code = status


def parse_int(raw: str, *, low: int = 1, high: int = INT32_MAX) -> int | None:
    """An integer written in ASCII digits within [low, high], else None."""
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


@dataclass
class ConsoleForm:
    """A posted form: text fields NFC-normalised, files apart, the CSRF verdict."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)
    csrf_ok: bool = False
    request: Request | None = field(default=None, repr=False, compare=False)
    replay: Refusal | None = None  # set when a kept refusal is shown on its page
    action: str | None = None  # the form whose `again` shows a refusal, when not this one

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def get_int(self, name: str, *, low: int = 1, high: int = INT32_MAX) -> int | None:
        """The field as a bounded integer; None when it is missing or is not one."""
        return parse_int(self.get(name), low=low, high=high)

    def int_value(
        self, name: str, message: str, *, low: int = 1, high: int = INT32_MAX
    ) -> int | None:
        """The field as a bounded integer, None when empty; anything else is refused (422)."""
        raw = self.get(name).strip()
        if not raw:
            return None
        value = parse_int(raw, low=low, high=high)
        if value is None:
            raise FieldErrors({name: message})
        return value

    def int_list(self, name: str, message: str) -> list[int]:
        """Every value of the field as an id; one that is not refuses the form (422)."""
        values = [parse_int(v) for v in self.getlist(name)]
        if any(v is None for v in values):
            raise FieldErrors({name: message})
        return [v for v in values if v is not None]

    def model(
        self, model: type[Model], data: Mapping[str, Any], *, names: Mapping[str, str] = {}
    ) -> Model:
        """`data` checked by the API's request model; what it refuses comes back beside the
        form's fields (`names` maps a model field to its form field where they differ)."""
        try:
            return model.model_validate(dict(data))
        except ValidationError as exc:
            raise FieldErrors(field_messages(exc, names)) from exc

    def typed(self) -> dict[str, str]:
        """The text fields as typed, without the token: what a re-shown page fills in."""
        return {k: v[0] for k, v in self.values.items() if k != console_session.CSRF_FIELD and v}

    @property
    def field_errors(self) -> dict[str, str]:
        return self.replay.fields if self.replay else {}


def field_messages(exc: ValidationError, names: Mapping[str, str] = {}) -> dict[str, str]:
    """The model's refusals in words, by form field (the first per field)."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ("",)
        name = names.get(str(loc[0]), str(loc[0]))
        found.setdefault(name, _refusal_words(error))
    return found


def _refusal_words(error: Any) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    text = str(error.get("msg", ""))
    if kind == "string_too_long":
        return _("Dài quá %(n)s ký tự.") % {"n": ctx.get("max_length")}
    if kind == "too_long":
        return _("Nhiều quá %(n)s mục.") % {"n": ctx.get("max_length")}
    if kind in ("missing", "string_too_short") or "must not be empty" in text:
        return _("Hãy điền ô này.")
    if "control character" in text:
        return _(
            "Có ký tự điều khiển không in được (như NUL, BEL, ESC), thường do dán từ phần mềm "
            "khác: hãy xóa rồi gõ lại."
        )
    if "month must be" in text:
        return _("Tháng phải có dạng năm-tháng, ví dụ 2024-03.")
    if kind in ("enum", "literal_error"):
        return _("Hãy chọn một mục trong danh sách.")
    if kind.startswith(("int_", "greater_than", "less_than")):
        return _("Số không hợp lệ.")
    return _("Giá trị này không dùng được.")


async def read_form(request: Request) -> ConsoleForm:
    """Parse the posted form (once per request) and check its CSRF token.

    The body's size and time limits are the middleware's, checked before this reads a byte
    (LOAXA_MAX_BODY_BYTES; LOAXA_MAX_UPLOAD_BYTES on the routes that take audio)."""
    cached = getattr(request.state, "console_form", None)
    if cached is not None:
        return cached
    raw = await request.form(max_files=2, max_fields=200)
    form = ConsoleForm(request=request)
    for key, value in raw.multi_items():
        if isinstance(value, str):
            # Passwords are compared as typed, as the API's token endpoint does.
            form.values.setdefault(key, []).append(value if key in _RAW else nfc(value))
        elif getattr(value, "filename", None):
            form.files[key] = value  # type: ignore[assignment]
    form.csrf_ok = console_session.csrf_valid(request, form.get(console_session.CSRF_FIELD))
    request.state.console_form = form
    return form


async def _form(request: Request) -> ConsoleForm:
    return await read_form(request)


FormDep = Annotated[ConsoleForm, Depends(_form)]


def run_form(
    form: ConsoleForm,
    *,
    again: Callable[[str, int], Response],
    action: Callable[[Session], Response],
) -> Response:
    """CSRF check, then `action` in its own unit of work; a refusal goes back to the page."""
    if form.replay is not None:
        return again(form.replay.error, form.replay.status)
    if not form.csrf_ok:
        return _refuse(form, again, csrf_message(), 403)
    try:
        with unit_of_work() as db:
            response = action(db)
    except FieldErrors as exc:
        return _refuse(form, again, fields_message(exc.fields), exc.status_code, exc.fields)
    except Refused as exc:
        return _refuse(form, again, exc.message, exc.status_code)
    except LoaxaError as exc:
        return _refuse(form, again, describe_error(exc), exc.status_code)
    _forget(form)
    return response


def run_form_task(
    form: ConsoleForm,
    *,
    again: Callable[[str, int], Response],
    task: Callable[[], Response],
) -> Response:
    """As `run_form`, for services that open their own units of work (audio ingest, TTS).

    They hold no transaction while they decode or synthesise, so they must not run inside
    one: on SQLite a write transaction held here would block their own.
    """
    if form.replay is not None:
        return again(form.replay.error, form.replay.status)
    if not form.csrf_ok:
        return _refuse(form, again, csrf_message(), 403)
    try:
        response = task()
    except FieldErrors as exc:
        return _refuse(form, again, fields_message(exc.fields), exc.status_code, exc.fields)
    except Refused as exc:
        return _refuse(form, again, exc.message, exc.status_code)
    except LoaxaError as exc:
        return _refuse(form, again, describe_error(exc), exc.status_code)
    _forget(form)
    return response


def csrf_message() -> str:
    """What a refused form says (403)."""
    return _(
        "Biểu mẫu đã hết hạn hoặc không phải gửi từ trang này, nên chưa được lưu. "
        "Nội dung bạn nhập vẫn còn bên dưới: hãy bấm gửi lại."
    )


def fields_message(fields: dict[str, str]) -> str:
    """What a form with refused fields says above them: each reason once (the fields are
    marked too, but a hidden one, such as the page's version, has no place to show it)."""
    reasons = " ".join(dict.fromkeys(fields.values()))
    return _("Chưa lưu, hãy sửa các ô được đánh dấu:") + " " + reasons


def files_message(names: list[str]) -> str:
    """Said when a refused form had files: a browser never sends a file again by itself."""
    return _(
        "Tệp đã chọn (%(names)s) không giữ lại được sau khi trang tải lại: hãy chọn lại tệp."
    ) % {"names": ", ".join(names)}


# --- keeping a refused form for its page ----------------------------------------------------


def _session_key(request: Request) -> str:
    sid = console_session.current(request).sid
    return hashlib.sha256(sid.encode()).hexdigest()


def page_of(request: Request, form: ConsoleForm) -> str:
    """The page a form was on: its own `_page` field, else the nearest page above the
    address it posted to (/segments/5/audio → /segments/5)."""
    named = safe_next(form.get(PAGE_FIELD), default="")
    if named and not named.startswith(("/api/", "/static/")) and len(named) <= 500:
        return named
    from app.console.routing import console_route  # routing imports the pages, and they this

    path = request.url.path
    while path:
        if console_route(path, "GET") is not None:
            return path
        path = path.rsplit("/", 1)[0]
    return "/"


def _refuse(
    form: ConsoleForm,
    again: Callable[[str, int], Response],
    message: str,
    status: int,
    fields: dict[str, str] | None = None,
) -> Response:
    """Keep what was typed and the reason for the page, and send the browser back there."""
    request = form.request
    user = getattr(request.state, "console_user", None) if request is not None else None
    if request is None or user is None:  # nothing to key it by: answer in place
        return again(message, status)
    dropped = [f.filename or name for name, f in form.files.items()]
    if dropped:
        message = f"{message} {files_message(dropped)}"
    page = page_of(request, form)
    now = clock.now()
    key = _session_key(request)
    with unit_of_work() as db:
        db.execute(delete(KeptForm).where(KeptForm.expires_at < now))
        db.execute(delete(KeptForm).where(KeptForm.session_key == key, KeptForm.page == page))
        kept_ids = db.scalars(
            select(KeptForm.id).where(KeptForm.user_id == user.id).order_by(KeptForm.id.desc())
        ).all()
        if len(kept_ids) >= MAX_KEPT_PER_USER:
            db.execute(delete(KeptForm).where(KeptForm.id.in_(kept_ids[MAX_KEPT_PER_USER - 1 :])))
        db.add(
            KeptForm(
                session_key=key,
                user_id=user.id,
                page=page,
                action=form.action or request.url.path,
                values={k: v for k, v in form.values.items() if k not in _RAW},
                files=dropped,
                error=message,
                fields=fields or {},
                status=status,
                created_at=now,
                expires_at=now + timedelta(minutes=get_settings().console_session_minutes),
            )
        )
    return redirect(page + "#error")


# Fields a page fills in by itself: a kept form holding only these holds nothing typed.
_NOT_TYPED = frozenset({PAGE_FIELD, "version", "replace", "engine", "audio_id", "op"})


def _forget(form: ConsoleForm) -> None:
    """A form that succeeded no longer needs what was kept of it on its page; nor does the
    page keep another form's refusal that held nothing typed (a refused file, a stale
    button), so the page no longer says what is over. Typed text stays until its own form
    succeeds."""
    request = form.request
    if request is None or getattr(request.state, "console_user", None) is None:
        return
    page = page_of(request, form)
    action = form.action or request.url.path
    with unit_of_work() as db:
        for kept in db.scalars(
            select(KeptForm).where(
                KeptForm.session_key == _session_key(request), KeptForm.page == page
            )
        ):
            typed = any(v and any(x.strip() for x in v) for k, v in kept.values.items()
                        if k not in _NOT_TYPED)
            if kept.action == action or not typed:
                db.delete(kept)


@dataclass(frozen=True)
class Kept:
    """A refused form kept for the page being asked for."""

    action: str
    form: ConsoleForm


def kept_for(request: Request, page: str) -> Kept | None:
    """The refused form kept for `page` in this session, if any (and not expired). The
    refusal's status answers the first showing (right after the redirect); later showings
    (a reload, coming back) answer 200 with the same words and what was typed."""
    session = console_session.current(request)
    if session.uid is None:
        return None
    with unit_of_work(write=False) as db:
        row = db.scalars(
            select(KeptForm).where(
                KeptForm.session_key == _session_key(request),
                KeptForm.page == page,
                KeptForm.user_id == session.uid,
                KeptForm.expires_at >= clock.now(),
            )
        ).first()
        if row is None:
            return None
        status = row.status
        form = ConsoleForm(
            values={str(k): [str(x) for x in v] for k, v in row.values.items()},
            csrf_ok=False,
            request=request,
            replay=Refusal(row.error, status, {str(k): str(v) for k, v in row.fields.items()}),
        )
        kept = Kept(action=row.action, form=form)
    if status != 200:  # shown once with its status: later showings are plain pages
        with unit_of_work() as db:
            db.execute(update(KeptForm).where(KeptForm.id == row.id).values(status=200))
    return kept
