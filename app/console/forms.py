"""Posted forms: read once, CSRF checked, and a failure shown beside what was typed.

The pattern every console POST follows (see app/console/pages/segments.py):

    @router.post("/segments/{segment_id}")
    def save(request: Request, user: EditorPage, segment_id: int, form: FormDep) -> Response:
        def again(message: str, status: int) -> Response:   # the page, with what was typed
            return render(request, "segments/detail.html", {..., "form": form,
                          "error": message}, status=status)

        def action(db: Session) -> Response:                # the same services as the API
            segments.update_segment(db, user=user, ...)
            return redirect(f"/segments/{segment_id}", notice=N_("Đã lưu."))

        return run_form(form, again=again, action=action)

`run_form` refuses a missing or wrong CSRF token (403) before `action` runs, runs `action`
in its own unit of work (committed when it returns, rolled back when it raises), and turns
a domain error into `again(<Vietnamese message>, <its status>)`: nothing half-done is
committed and nothing typed is lost. `run_form_task` is the same for services that open
their own units of work (audio ingest, text-to-speech).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response, UploadFile
from sqlalchemy.orm import Session

from app.console import session as console_session
from app.console.i18n import _
from app.console.messages import describe_error
from app.db import unit_of_work
from app.errors import LoaxaError
from app.text import nfc

_RAW = frozenset({"password", console_session.CSRF_FIELD})


@dataclass
class ConsoleForm:
    """A posted form: text fields NFC-normalised, files apart, the CSRF verdict."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)
    csrf_ok: bool = False

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def get_int(self, name: str) -> int | None:
        raw = self.get(name).strip()
        return int(raw) if raw.isdigit() and len(raw) <= 18 else None

    def typed(self) -> dict[str, str]:
        """The text fields as typed, without the token: what a re-shown page fills in."""
        return {k: v[0] for k, v in self.values.items() if k != console_session.CSRF_FIELD and v}


async def read_form(request: Request) -> ConsoleForm:
    """Parse the posted form (once per request) and check its CSRF token.

    The body's size and time limits are the middleware's, checked before this reads a byte
    (LOAXA_MAX_BODY_BYTES; LOAXA_MAX_UPLOAD_BYTES on the routes that take audio)."""
    cached = getattr(request.state, "console_form", None)
    if cached is not None:
        return cached
    raw = await request.form(max_files=2, max_fields=200)
    form = ConsoleForm()
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
    """CSRF check, then `action` in its own unit of work; a refusal re-shows the form."""
    if not form.csrf_ok:
        return again(csrf_message(), 403)
    try:
        with unit_of_work() as db:
            return action(db)
    except LoaxaError as exc:
        return again(describe_error(exc), exc.status_code)


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
    if not form.csrf_ok:
        return again(csrf_message(), 403)
    try:
        return task()
    except LoaxaError as exc:
        return again(describe_error(exc), exc.status_code)


def csrf_message() -> str:
    """What a refused form says (403)."""
    return _(
        "Biểu mẫu đã hết hạn hoặc không phải gửi từ trang này, nên chưa được lưu. "
        "Nội dung bạn nhập vẫn còn bên dưới: hãy bấm gửi lại."
    )
