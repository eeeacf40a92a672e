"""Tin bài: the list, the form, audio (file, browser recording, text-to-speech), workflow.

Thin handlers: parse the form, call app.segments / app.audio / app.tts services (the same
functions as the API), shape the page. A refused post shows the page again with what was
typed and the reason beside it (see app/console/forms.py).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.config import get_settings
from app.console import segment_views as views
from app.console.auth import ApproverPage, EditorPage, ViewerPage
from app.console.forms import ConsoleForm, FormDep, read_form, run_form, run_form_task
from app.console.i18n import N_, _
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.errors import Invalid
from app.pagination import PageParams, paginate
from app.segments import audio as segment_audio
from app.segments import service as segments
from app.segments.models import SegmentStatus, Topic
from app.tts import service as tts

router = APIRouter(prefix="/segments", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 25
TTS_ENGINES = {
    "auto": N_("Tự động (Google, không có mạng thì espeak-ng)"),
    "espeak": N_("espeak-ng (không cần mạng)"),
    "gtts": N_("Google (cần mạng)"),
}


@router.get("", response_class=HTMLResponse)
def list_page(
    request: Request,
    user: ViewerPage,
    status: str | None = None,
    month: str | None = None,
    topic: str | None = None,
    programme: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Segments, newest first, filtered by status, month, topic and programme."""
    filters = views.parse_filters(status, month, topic, programme)
    page = max(page, 1)
    with unit_of_work(write=False) as db:
        stmt = segments.list_query(
            user=user,
            status=filters.status,
            month=filters.month,
            topic=filters.topic,
            programme=filters.programme,
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


async def _upload_form(request: Request) -> ConsoleForm:
    return await read_form(request, max_bytes=get_settings().max_upload_bytes)


UploadFormDep = Annotated[ConsoleForm, Depends(_upload_form)]


@router.post("/new")
def create(request: Request, user: EditorPage, form: UploadFormDep) -> Response:
    """A new draft; with a file, its audio too (a refused file leaves the draft saved)."""

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
    return _attach_file(request, user, created, form, expected_version=None, notice="created")


def _detail(
    request: Request,
    user: User,
    segment_id: int,
    *,
    typed: ConsoleForm | None = None,
    error: str | None = None,
    error_at: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The segment's page; after a refused post, with what was typed and why beside it."""
    with unit_of_work(write=False) as db:
        segment = segments.get_segment(db, segment_id, user=user)
        out = segments.to_out(db, segment)
        asset = db.get(AudioAsset, segment.audio_id) if segment.audio_id else None
        read_aloud, read_aloud_problem = views.read_aloud(db, segment)
        values = views.form_values(out)
        if typed is not None and error_at == "form":
            values = {**views.typed_values(typed), "version": values["version"]}
        return render(
            request,
            "segments/detail.html",
            {
                "page_title": out.title,  # the person's words: not a message to translate
                "segment": out,
                "asset": asset,
                "values": values,
                "typed": typed.typed() if typed is not None else {},
                "error": error,
                "error_at": error_at,
                "read_aloud": read_aloud,
                "read_aloud_problem": read_aloud_problem,
                "history": views.history(db, segment_id),
                "choices": views.choices(db, user=user),
                "topics": list(Topic),
                "engines": TTS_ENGINES,
                "editable": out.status == SegmentStatus.draft,
            },
            status=status,
        )


@router.get("/{segment_id}", response_class=HTMLResponse)
def detail_page(request: Request, user: ViewerPage, segment_id: DbId) -> HTMLResponse:
    return _detail(request, user, segment_id)


def _again(request: Request, user: User, segment_id: int, form: ConsoleForm, where: str) -> Any:
    def again(message: str, status: int) -> Response:
        return _detail(
            request, user, segment_id, typed=form, error=message, error_at=where, status=status
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
            expected_version=form.get_int("version"),
        )
        return redirect(f"/segments/{segment_id}", notice="saved")

    return run_form(form, again=_again(request, user, segment_id, form, "form"), action=action)


def _attach_file(
    request: Request,
    user: User,
    segment_id: int,
    form: ConsoleForm,
    *,
    expected_version: int | None,
    notice: str = "audio",
) -> Response:
    upload = form.files.get("file")

    def task() -> Response:
        if upload is None:
            raise Invalid(_("Hãy chọn một tệp âm thanh."))
        fd, name = tempfile.mkstemp(dir=audio.work_dir(), prefix="console-", suffix=".part")
        path = Path(name)
        try:
            with open(fd, "wb") as out:
                shutil.copyfileobj(upload.file, out)
            segment_audio.upload_audio(
                segment_id=segment_id,
                user=user,
                upload=path,
                filename=upload.filename,
                expected_version=expected_version,
            )
        finally:
            path.unlink(missing_ok=True)
        return redirect(f"/segments/{segment_id}", notice=notice)

    return run_form_task(form, again=_again(request, user, segment_id, form, "audio"), task=task)


@router.post("/{segment_id}/audio")
def upload_audio(
    request: Request, user: EditorPage, segment_id: DbId, form: UploadFormDep
) -> Response:
    """A file chosen, or recorded in the browser: through the same pipeline as the API."""
    return _attach_file(request, user, segment_id, form, expected_version=form.get_int("version"))


@router.post("/{segment_id}/tts")
def draft_tts(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Đọc thử": draft the audio from the script with text-to-speech."""
    engine = form.get("engine") or "auto"

    def task() -> Response:
        tts.draft_segment_audio(
            segment_id=segment_id,
            user=user,
            engine=engine if engine in TTS_ENGINES else "auto",
            expected_version=form.get_int("version"),
        )
        return redirect(f"/segments/{segment_id}#audio", notice="tts")

    return run_form_task(form, again=_again(request, user, segment_id, form, "tts"), task=task)


def _workflow(
    request: Request,
    user: User,
    segment_id: int,
    form: ConsoleForm,
    step: Callable[..., Any],
    notice: str,
    **extra: Any,
) -> Response:
    def action(db: Session) -> Response:
        segment = segments.get_segment(db, segment_id, user=user, for_update=True)
        step(db, user=user, segment=segment, expected_version=form.get_int("version"), **extra)
        return redirect(f"/segments/{segment_id}", notice=notice)

    return run_form(form, again=_again(request, user, segment_id, form, "workflow"), action=action)


@router.post("/{segment_id}/submit")
def submit(request: Request, user: EditorPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Gửi duyệt"."""
    return _workflow(request, user, segment_id, form, segments.submit_segment, "submitted")


@router.post("/{segment_id}/approve")
def approve(request: Request, user: ApproverPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Duyệt"."""
    return _workflow(request, user, segment_id, form, segments.approve_segment, "approved")


@router.post("/{segment_id}/reject")
def reject(request: Request, user: ApproverPage, segment_id: DbId, form: FormDep) -> Response:
    """ "Trả lại" with "Lý do"."""
    reason = form.get("reason")
    if form.csrf_ok and not reason:
        return _detail(
            request,
            user,
            segment_id,
            typed=form,
            error=_("Hãy ghi lý do trả lại."),
            error_at="workflow",
            status=422,
        )
    return _workflow(
        request, user, segment_id, form, segments.reject_segment, "rejected", reason=reason
    )
