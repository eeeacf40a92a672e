"""Tin bài: the list and search, the form, audio (file, browser recording, text-to-speech,
an earlier one restored), workflow (submit, withdraw, approve, send back, delete a draft).

Thin handlers: parse the form, call app.segments / app.audio / app.tts services (the same
functions as the API), shape the page. Every post answers with a redirect: on success to
what changed (`#audio`, `#flow`, `#content`), on refusal back to the page, which shows the
reason beside what was typed (see app/console/forms.py).

No traps: replacing audio asks first (`replace`), and the audio replaced stays restorable
("Khôi phục"); "Trả lại" and "Xóa bản nháp" are steps of their own, so "Duyệt" drops
nothing typed and nothing is deleted by one tap.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import listen
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.console import segment_views as views
from app.console.auth import ApproverPage, EditorPage, ViewerPage, can
from app.console.forms import (
    PAGE_FIELD,
    ConsoleForm,
    FieldErrors,
    FormDep,
    Refused,
    run_form,
    run_form_task,
)
from app.console.i18n import N_, _
from app.console.render import NOTICES, redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.errors import Conflict, Forbidden, Invalid, LoaxaError
from app.middleware import takes_upload
from app.pagination import PageParams, paginate
from app.segments import audio as segment_audio
from app.segments import service as segments
from app.segments.models import Segment, SegmentStatus, Topic
from app.segments.schemas import RejectBody, RestoreAudioBody
from app.tts import service as tts
from app.tts.schemas import TTSRequest

router = APIRouter(prefix="/segments", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 25
TTS_ENGINES = {
    "auto": N_("Tự động (giọng Google khi có mạng, không thì giọng đọc máy)"),
    "espeak": N_("Giọng đọc máy (không cần mạng)"),
    "gtts": N_("Giọng Google (cần mạng)"),
}
NOTICES.update(
    {
        "submitted-no-audio": N_(
            "Đã gửi duyệt. Tin bài chưa có âm thanh nên chưa phát được cho đến khi có bản ghi "
            "hoặc giọng đọc máy."
        ),
        "withdrawn": N_("Đã rút lại: tin bài trở về bản nháp."),
        "deleted": N_("Đã xóa bản nháp."),
        "restored": N_("Đã khôi phục âm thanh cũ."),
    }
)


@router.get("", response_class=HTMLResponse)
def list_page(
    request: Request,
    user: ViewerPage,
    status: str | None = None,
    month: str | None = None,
    topic: str | None = None,
    programme: str | None = None,
    q: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Segments, newest first, filtered by status, month, topic and programme, and found by
    words of their title or script ("Tìm", whatever the case and diacritics)."""
    filters = views.parse_filters(status, month, topic, programme, q)
    page = max(page, 1)
    with unit_of_work(write=False) as db:
        stmt = segments.list_query(
            user=user,
            status=filters.status,
            month=filters.month,
            topic=filters.topic,
            programme=filters.programme,
            q=filters.q,
        )
        rows, total = paginate(db, stmt, PageParams(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE))
        return render(
            request,
            "segments/list.html",
            {
                "title": N_("Tin bài"),
                "items": segments.to_out_many(db, rows),
                "total": total,
                "page": page,
                "pages": max(1, -(-total // PAGE_SIZE)),
                "filters": filters,
                "choices": views.choices(db, user=user),
                "topics": list(Topic),
                "statuses": list(SegmentStatus),
            },
        )


def _new_page(
    request: Request,
    user: User,
    values: dict[str, Any],
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        return render(
            request,
            "segments/new.html",
            {
                "title": N_("Thêm tin bài"),
                "values": values,
                "error": error,
                "choices": views.choices(db, user=user),
                "topics": list(Topic),
            },
            status=status,
        )


@router.get("/new", response_class=HTMLResponse)
def new_page(
    request: Request,
    user: EditorPage,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
) -> HTMLResponse:
    """The new segment form; `month` (from Trang chủ's column) fills "Tháng phát"."""
    return _new_page(request, user, {**views.form_values(None), "target_month": month or ""})



@router.post("/new")
@takes_upload
def create(request: Request, user: EditorPage, form: FormDep) -> Response:
    """A new draft; with a file, its audio too (a refused file leaves the draft saved, and
    the answer goes to the draft's page, which says why: a reload creates nothing twice)."""

    def again(message: str, status: int) -> Response:
        return _new_page(request, user, views.typed_values(form), message, status)

    def action(db: Session) -> Response:
        fields = views.changes_from(form)
        segment = segments.create_segment(db, user=user, **fields)
        request.state.created_id = segment.id
        return redirect(f"/segments/{segment.id}", notice="created")

    response = run_form(form, again=again, action=action)
    created = getattr(request.state, "created_id", None)
    if created is None or "file" not in form.files:
        return response
    # The file's refusal belongs to the new draft's page, where the audio is attached.
    # What was typed is saved in the draft: only the file's refusal is kept for its page.
    form.values = {PAGE_FIELD: [f"/segments/{created}"]}
    form.action = f"/segments/{created}/audio"
    return _attach_file(
        request,
        user,
        created,
        form,
        expected_version=lambda: None,
        notice="created",
        check_replace=False,
    )


def _detail(
    request: Request,
    user: User,
    segment_id: int,
    *,
    typed: ConsoleForm | None = None,
    error: str | None = None,
    error_at: str | None = None,
    status: int = 200,
    template: str = "segments/detail.html",
) -> HTMLResponse:
    """The segment's page (or one of its steps); after a refused post, with what was typed
    and why beside it."""
    with unit_of_work(write=False) as db:
        segment = segments.get_segment(db, segment_id, user=user)
        out = segments.to_out(db, segment)
        asset = db.get(AudioAsset, segment.audio_id) if segment.audio_id else None
        read_aloud, read_aloud_problem = views.read_aloud(db, segment)
        values = views.form_values(out)
        if typed is not None and error_at == "form":
            values = {**views.typed_values(typed), "version": values["version"]}
        audio_ok = segment.status == SegmentStatus.draft or (
            segment.status == SegmentStatus.approved and asset is None
        )
        return render(
            request,
            template,
            {
                "page_title": out.title,  # the person's words: not a message to translate
                "segment": out,
                "asset": asset,
                "meets_standard": not audio.audio_warnings(asset),
                "values": values,
                "typed": typed.typed() if typed is not None else {},
                "error": error,
                "error_at": error_at,
                "read_aloud": read_aloud,
                "read_aloud_problem": read_aloud_problem,
                "history": views.history(db, segment_id),
                "audio_history": [
                    h for h in segment_audio.audio_history(db, segment=segment) if not h.current
                ],
                "choices": views.choices(db, user=user),
                "topics": list(Topic),
                "engines": TTS_ENGINES,
                "editable": out.status == SegmentStatus.draft,
                "audio_editable": audio_ok,
                "mine": segment.created_by_id == user.id or can(user, "admin"),
            },
            status=status,
        )


@router.get("/{segment_id}", response_class=HTMLResponse)
def detail_page(request: Request, user: ViewerPage, segment_id: DbId) -> HTMLResponse:
    return _detail(request, user, segment_id)


def _again(
    request: Request,
    user: User,
    segment_id: int,
    form: ConsoleForm,
    where: str,
    template: str = "segments/detail.html",
) -> Any:
    def again(message: str, status: int) -> Response:
        return _detail(
            request,
            user,
            segment_id,
            typed=form,
            error=message,
            error_at=where,
            status=status,
            template=template,
        )

    return again


@router.post("/{segment_id}")
def save(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Lưu": change a draft, from the version the person saw (a stale save is refused)."""

    def action(db: Session) -> Response:
        segment = segments.get_segment(db, segment_id, user=user, for_update=True)
        segments.update_segment(
            db,
            user=user,
            segment=segment,
            changes=views.changes_from(form),
            expected_version=views.version_of(form),
        )
        return redirect(f"/segments/{segment_id}#content", notice="saved")

    return run_form(form, again=_again(request, user, segment_id, form, "form"), action=action)


def _check_replace(segment_id: int, user: User, form: ConsoleForm) -> None:
    """Audio that would replace the segment's audio needs the person's yes (`replace`)."""
    with unit_of_work(write=False) as db:
        segment = segments.get_segment(db, segment_id, user=user)
        has_audio = segment.audio_id is not None
    if has_audio and form.get("replace") != "1":
        raise FieldErrors(
            {
                "replace": _(
                    "Tin bài đã có âm thanh: hãy đánh dấu “Thay âm thanh hiện có” nếu muốn "
                    "thay (bản cũ vẫn khôi phục được)."
                )
            }
        )


def _attach_file(
    request: Request,
    user: User,
    segment_id: int,
    form: ConsoleForm,
    *,
    expected_version: Callable[[], int | None],
    notice: str = "audio",
    check_replace: bool = True,
) -> Response:
    upload = form.files.get("file")

    def task() -> Response:
        if upload is None:
            raise FieldErrors({"file": _("Hãy chọn một tệp âm thanh.")})
        if check_replace:
            _check_replace(segment_id, user, form)
        fd, name = tempfile.mkstemp(dir=audio.work_dir(), prefix="console-", suffix=".part")
        path = Path(name)
        try:
            with open(fd, "wb") as out:
                shutil.copyfileobj(upload.file, out)
            attached = segment_audio.upload_audio(
                segment_id=segment_id,
                user=user,
                upload=path,
                filename=upload.filename,
                expected_version=expected_version(),
            )
        finally:
            path.unlink(missing_ok=True)
        answer = redirect(f"/segments/{segment_id}#audio", notice=notice)
        return listen.made_after(answer, attached.audio_sha256)

    return run_form_task(form, again=_again(request, user, segment_id, form, "audio"), task=task)


@router.post("/{segment_id}/audio")
@takes_upload
def upload_audio(
    request: Request, user: EditorPage, segment_id: DbId, form: FormDep
) -> Response:
    """A file chosen, or recorded in the browser: through the same pipeline as the API."""
    return _attach_file(
        request, user, segment_id, form, expected_version=lambda: views.version_of(form)
    )


@router.post("/{segment_id}/tts")
def draft_tts(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Đọc thử": draft the audio from the script with text-to-speech (the choice checked by
    the API's TTSRequest)."""

    def task() -> Response:
        body = form.model(
            TTSRequest,
            {"engine": form.get("engine") or "auto", "version": views.version_of(form)},
        )
        _check_replace(segment_id, user, form)
        out = tts.draft_segment_audio(
            segment_id=segment_id,
            user=user,
            engine=body.engine,
            expected_version=body.version,
        )
        answer = redirect(f"/segments/{segment_id}#audio", notice="tts")
        return listen.made_after(answer, out.audio_sha256)

    return run_form_task(form, again=_again(request, user, segment_id, form, "tts"), task=task)


@router.post("/{segment_id}/audio/restore")
def restore_audio(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Khôi phục": an audio the segment had before becomes its audio again."""

    def action(db: Session) -> Response:
        choose = _("Hãy chọn bản âm thanh cần khôi phục.")
        body = form.model(
            RestoreAudioBody,
            {"audio_id": form.int_value("audio_id", choose), "version": views.version_of(form)},
        )
        segment = segments.get_segment(db, segment_id, user=user, for_update=True)
        with in_words("restore_audio"):
            segment_audio.restore_audio(
                db,
                segment=segment,
                user=user,
                audio_id=body.audio_id,
                expected_version=body.version,
            )
        return redirect(f"/segments/{segment_id}#audio", notice="restored")

    return run_form(form, again=_again(request, user, segment_id, form, "audio"), action=action)


def _refusals() -> dict[str, dict[type[LoaxaError], str]]:
    """What each step says when the segment's state or its owner refuses it."""
    not_waiting = _("Tin bài này không còn chờ duyệt (có thể đã được duyệt hoặc đã rút lại).")
    return {
        "submit_segment": {
            Conflict: _("Tin bài này không còn là bản nháp, nên không gửi duyệt lại được."),
            Invalid: _("Hãy viết nội dung hoặc gắn âm thanh trước khi gửi duyệt."),
        },
        "withdraw_segment": {
            Conflict: _("Chỉ rút lại được tin bài đang chờ duyệt; tin bài đã duyệt thì không."),
            Forbidden: _("Chỉ người tạo tin bài mới rút lại được."),
        },
        "approve_segment": {Conflict: not_waiting},
        "reject_segment": {Conflict: not_waiting},
        "delete_segment": {
            Conflict: _("Chỉ xóa được bản nháp; tin bài này đã gửi duyệt hoặc đã duyệt."),
            Forbidden: _("Chỉ người tạo bản nháp mới xóa được nó."),
        },
        "restore_audio": {
            Conflict: _("Chỉ đổi âm thanh được khi tin bài là bản nháp, hoặc bản này đang dùng."),
        },
    }


@contextmanager
def in_words(step: str) -> Iterator[None]:
    """The service's refusal of `step` said in the person's words (stale versions keep
    their own message: what to do about them differs)."""
    try:
        yield
    except (Conflict, Forbidden, Invalid) as exc:
        if "changed by someone else" in exc.message or isinstance(exc, FieldErrors):
            raise
        for kind, words in _refusals().get(step, {}).items():
            if isinstance(exc, kind):
                raise Refused(words, status=exc.status_code) from exc
        raise


def _workflow(
    request: Request,
    user: User,
    segment_id: int,
    form: ConsoleForm,
    step: Callable[..., Any],
    notice: str | Callable[[Segment], str],
    *,
    template: str = "segments/detail.html",
    where: str = "workflow",
    **extra: Callable[[], Any],
) -> Response:
    def action(db: Session) -> Response:
        segment = segments.get_segment(db, segment_id, user=user, for_update=True)
        arguments = {name: make() for name, make in extra.items()}
        with in_words(step.__name__):
            step(db, user=user, segment=segment, expected_version=views.version_of(form),
                 **arguments)
        said = notice(segment) if callable(notice) else notice
        return redirect(f"/segments/{segment_id}#flow", notice=said)

    again = _again(request, user, segment_id, form, where, template)
    return run_form(form, again=again, action=action)


@router.post("/{segment_id}/submit")
def submit(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Gửi duyệt"; without audio it is said plainly that it cannot air until it has some."""

    def said(segment: Segment) -> str:
        return "submitted" if segment.audio_id is not None else "submitted-no-audio"

    return _workflow(request, user, segment_id, form, segments.submit_segment, said)


@router.post("/{segment_id}/withdraw")
def withdraw(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Rút lại": the editor's own submission back to draft."""
    return _workflow(request, user, segment_id, form, segments.withdraw_segment, "withdrawn")


@router.post("/{segment_id}/approve")
def approve(request: Request, user: ApproverPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Duyệt"."""
    return _workflow(request, user, segment_id, form, segments.approve_segment, "approved")


@router.get("/{segment_id}/reject", response_class=HTMLResponse)
def reject_page(request: Request, user: ApproverPage, segment_id: DbId) -> HTMLResponse:
    """ "Trả lại" is a step of its own: the reason is typed here, and nowhere near "Duyệt"."""
    return _detail(request, user, segment_id, template="segments/reject.html")


@router.post("/{segment_id}/reject")
def reject(request: Request, user: ApproverPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Trả lại" with "Lý do" (checked as the API's RejectBody checks it)."""

    def reason() -> str:
        if not form.get("reason"):
            raise FieldErrors({"reason": _("Hãy ghi lý do trả lại.")})
        return form.model(RejectBody, {"reason": form.get("reason")}).reason

    return _workflow(
        request,
        user,
        segment_id,
        form,
        segments.reject_segment,
        "rejected",
        template="segments/reject.html",
        where="reject",
        reason=reason,
    )


@router.get("/{segment_id}/delete", response_class=HTMLResponse)
def delete_page(request: Request, user: EditorPage, segment_id: DbId) -> HTMLResponse:
    """ "Xóa bản nháp" asks once more, on a page of its own."""
    return _detail(request, user, segment_id, template="segments/delete.html")


@router.post("/{segment_id}/delete")
def delete(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """Delete the editor's own draft (another's is refused in words)."""

    def action(db: Session) -> Response:
        segment = segments.get_segment(db, segment_id, user=user, for_update=True)
        with in_words("delete_segment"):
            segments.delete_segment(
                db, user=user, segment=segment, expected_version=views.version_of(form)
            )
        return redirect("/segments", notice="deleted")

    again = _again(request, user, segment_id, form, "delete", "segments/delete.html")
    return run_form(form, again=again, action=action)
