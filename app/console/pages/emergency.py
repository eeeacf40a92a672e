"""Phát khẩn cấp: an approver puts an approved segment on air at once, in two steps.

1. GET /emergency: choose the segment (approved, with audio) and where (the whole
   commune or some villages). 2. POST /emergency/confirm: the page says what will happen
   (what plays, where, on how many devices, until when) and asks again; only POST
   /emergency (with the token) creates it. Then /emergency/{id} shows each device in
   scope: picked up (its poll returned the emergency), started (its as-run says so), or
   waiting; it refreshes itself every 5 s while on air. "Hủy" asks once more, then stops it.
"""

from __future__ import annotations

import base64
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.console import ops_views as views
from app.console.auth import ApproverPage
from app.console.forms import (
    ConsoleForm,
    FieldErrors,
    FormDep,
    Refused,
    parse_int,
    run_form,
    run_form_task,
)
from app.console.i18n import N_, _
from app.console.render import NOTICES, redirect, render, station_zone
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.devices import service as device_service
from app.errors import Conflict, Invalid, NotFound
from app.middleware import takes_upload
from app.pagination import PageParams, paginate
from app.playout import emergencies, spoken
from app.playout import live as live_sessions
from app.playout.schemas import LiveCreate
from app.segments import service as segments
from app.segments.models import Segment, SegmentStatus
from app.tts import service as tts
from app.urls import base_url

router = APIRouter(prefix="/emergency", route_class=ConsoleRoute, include_in_schema=False)
NOTICES.update(
    {
        "emergency-started": N_("Đã phát lệnh khẩn cấp: các máy sẽ phát trong vòng 30 giây."),
        "emergency-cancelled": N_("Đã hủy phát khẩn cấp."),
        "live-ended": N_("Đã kết thúc phát trực tiếp: các loa trở lại lịch phát."),
    }
)


REFRESH_SECONDS = 5
CHOICES = 100  # the newest approved segments offered


def _choose_page(
    request: Request,
    user: User,
    *,
    form: ConsoleForm | None = None,
    error: str | None = None,
    status: int = 200,
    heard: dict[str, str] | None = None,
) -> HTMLResponse:
    now = clock.now()
    with unit_of_work(write=False) as db:
        station = views.station_for(db, user)
        choices: list[Segment] = []
        recent = []
        villages: dict[int, str] = {}
        live = None
        if station is not None:
            stmt = segments.list_query(
                user=user, status=SegmentStatus.approved, station_id=station.id
            ).where(Segment.audio_id.is_not(None))
            choices, _total = paginate(db, stmt, PageParams(limit=CHOICES, offset=0))
            villages = views.village_names(db, station.id)
            stmt_e = emergencies.list_query(user=user, station_id=station.id)
            rows, _total = paginate(db, stmt_e, PageParams(limit=10, offset=0))
            recent = [
                {"e": e, "state": views.emergency_state(e, now)}
                for e in emergencies.emergencies_out(db, rows, base_url=base_url(request))
            ]
            live = live_sessions.open_session(db, station.id)
        return render(
            request,
            "emergency/choose.html",
            {
                "title": N_("Phát khẩn cấp"),
                "station": station,
                "choices": choices,
                "villages": villages,
                "recent": recent,
                "live": live,
                "text": form.get("text") if form else "",
                "repeat": (form.get_int("repeat", high=5) if form else None) or REPEAT,
                "repeats": range(1, spoken.MAX_REPEAT + 1),
                "chosen_segment": form.get_int("segment_id") if form else None,
                "chosen_scope": form.get("scope") if form else "station",
                "chosen_villages": {
                    v for v in (parse_int(x) for x in form.getlist("village_ids")) if v
                }
                if form
                else set(),
                "heard": heard,
                "error": error,
            },
            status=status,
        )


@router.get("", response_class=HTMLResponse)
def choose_page(request: Request, user: ApproverPage) -> HTMLResponse:
    return _choose_page(request, user)


REPEAT = spoken.DEFAULT_REPEAT
HELD = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(webm|ogg|mp3|wav|m4a|mp4|flac|aac)$")


def _held_dir() -> Path:
    folder = audio.work_dir() / "emergency-held"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _hold(upload: UploadFile) -> str:
    """Keep a recording between the two steps; its name (the confirmation posts it back)."""
    ext = Path(upload.filename or "").suffix.lower().lstrip(".")
    if ext not in ("webm", "ogg", "mp3", "wav", "m4a", "mp4", "flac", "aac"):
        ext = "webm"
    name = f"{secrets.token_urlsafe(18)}.{ext}"
    with open(_held_dir() / name, "wb") as out:
        shutil.copyfileobj(upload.file, out)
    return name


def _held(name: str) -> Path:
    if not HELD.fullmatch(name) or not (_held_dir() / name).is_file():
        raise FieldErrors({"recording": _("Bản ghi âm không còn: hãy ghi lại.")})
    return _held_dir() / name


@contextmanager
def _recording_in_words() -> Iterator[None]:
    try:
        yield
    except Invalid as exc:
        words = _("Bản ghi âm không dùng được: quá ngắn, im lặng hoặc dài hơn 3 phút. Hãy ghi lại.")
        raise Refused(words, status=422) from exc


def _source(form: ConsoleForm) -> str:
    """What the official chose to play: "recording", "text" or "segment"."""
    if form.files.get("recording") is not None or form.get("held"):
        return "recording"
    if form.get("text").strip():
        return "text"
    if form.get("segment_id"):
        return "segment"
    raise FieldErrors({"text": _("Hãy soạn nội dung, ghi âm, hoặc chọn một tin bài đã duyệt.")})


def _checked_text(text: str, extra: dict[str, str]) -> str:
    """The message as read aloud; refused beside the field, in words, when it cannot be."""
    if not text.strip():
        raise FieldErrors({"text": _("Hãy soạn nội dung để máy đọc.")})
    try:
        return spoken.check_text(text, extra)
    except Invalid as exc:
        if "longer than" in exc.message:
            words = _("Nội dung quá dài: đọc lên mất hơn 3 phút. Hãy rút gọn.")
        else:
            words = _("Nội dung này không đọc thành lời được.")
        raise FieldErrors({"text": words}) from exc


def _repeat(form: ConsoleForm) -> int:
    repeat = form.int_value("repeat", _("Số lần phát từ 1 đến 5."), high=5) or REPEAT
    return repeat


def _scope(db: Session, form: ConsoleForm, station_id: int) -> tuple[list[int] | None, list[str]]:
    ids: list[int] | None = None
    if form.get("scope") == "villages":
        ids = sorted(set(form.int_list("village_ids", _("Danh sách thôn không hợp lệ."))))
        if not ids:
            raise FieldErrors({"village_ids": _("Hãy chọn ít nhất một thôn, hoặc chọn cả xã.")})
    names = views.village_names(db, station_id)
    unknown = [v for v in ids or [] if v not in names]
    if unknown:
        raise NotFound(f"village {unknown[0]} does not exist in station {station_id}")
    return ids, [names[v] for v in ids or []]


def _reach(
    db: Session, station_id: int, village_ids: list[int] | None, until: datetime
) -> dict[str, object]:
    """Who hears it now, and who is offline and will hear it if back before `until`."""
    now = clock.now()
    found = views.devices_in_scope(db, station_id=station_id, village_ids=village_ids)
    return {
        "devices": found,
        "online": [d for d in found if device_service.is_online(d.last_seen_at, now)],
        "offline": [d for d in found if not device_service.is_online(d.last_seen_at, now)],
        "until": until,
    }


def _plan(db: Session, user: User, form: ConsoleForm) -> dict[str, object]:
    """What the chosen emergency would do, checked as the services will check it."""
    station = views.station_for(db, user)
    if station is None:
        raise Invalid(_("Tài khoản của bạn chưa gắn với đài nào."))
    source = _source(form)
    plan: dict[str, object] = {"station": station, "source": source}
    if source == "segment":
        choice = views.emergency_choice(form, station.id)  # the segment first, then where
        segment = segments.get_segment(db, choice.segment_id, user=user)
        if segment.station_id != station.id:
            raise NotFound(f"segment {segment.id} does not exist in station {station.id}")
        if segment.status != SegmentStatus.approved.value or segment.audio_id is None:
            raise Invalid(_("Chỉ phát khẩn cấp được tin bài đã duyệt và có âm thanh."))
        asset = db.get_one(AudioAsset, segment.audio_id)
        duration_ms = asset.duration_ms
        plan.update(segment=segment, repeat=1)
    else:
        repeat = _repeat(form)
        plan["repeat"] = repeat
        if source == "text":
            read = _checked_text(form.get("text"), tts.station_dictionary(db, station.id))
            once = len(read.split()) * 60_000 // spoken.WORDS_PER_MINUTE
            plan.update(text=form.get("text").strip(), read=read)
        else:
            upload = form.files.get("recording")
            held = _hold(upload) if upload is not None else form.get("held")
            _held(held)
            once = spoken.MAX_SPOKEN_MS
            plan.update(held=held, title=form.get("title").strip())
        duration_ms = once * repeat + spoken.PAUSE_MS * (repeat - 1)
    village_ids, village_list = _scope(db, form, station.id)
    plan.update(village_ids=village_ids, village_list=village_list, duration_ms=duration_ms)
    until = clock.now() + emergencies.emergency_lifetime(duration_ms)
    plan.update(_reach(db, station.id, village_ids, until))
    return plan


@router.get("/confirm")
def confirm_again(user: ApproverPage) -> Response:
    """The confirmation is the answer to a post (a language switch there comes back here)."""
    return redirect("/emergency")


@router.post("/confirm", response_class=HTMLResponse)
@takes_upload
def confirm_page(request: Request, user: ApproverPage, form: FormDep) -> Response:
    """Step two: what will happen, and the button that does it."""

    def again(message: str, status: int) -> Response:
        return _choose_page(request, user, form=form, error=message, status=status)

    def action(db: Session) -> Response:
        plan = _plan(db, user, form)
        return render(
            request, "emergency/confirm.html", {"title": N_("Xác nhận phát khẩn cấp"), **plan}
        )

    return run_form(form, again=again, action=action)


@router.post("/preview", response_class=HTMLResponse)
def preview(request: Request, user: ApproverPage, form: FormDep) -> Response:
    """ "Nghe thử": the typed message read aloud, as it will play, on the same page."""

    def again(message: str, status: int) -> Response:
        return _choose_page(request, user, form=form, error=message, status=status)

    def task() -> Response:
        with unit_of_work(write=False) as db:
            station = views.station_for(db, user)
            if station is None:
                raise Invalid(_("Tài khoản của bạn chưa gắn với đài nào."))
            extra = tts.station_dictionary(db, station.id)
        read = _checked_text(form.get("text"), extra)
        clip = spoken.preview_mp3(form.get("text"), extra=extra)
        heard = {"read": read, "src": "data:audio/mpeg;base64," + base64.b64encode(clip).decode()}
        return _choose_page(request, user, form=form, heard=heard)

    return run_form_task(form, again=again, task=task)


@router.post("")
def start(request: Request, user: ApproverPage, form: FormDep) -> Response:
    """On air: every device in scope plays it at its next poll."""

    def again(message: str, status: int) -> Response:
        return _choose_page(request, user, form=form, error=message, status=status)

    def task() -> Response:
        with unit_of_work(write=False) as db:
            plan = _plan(db, user, form)
        station_id: int = plan["station"].id  # type: ignore[attr-defined]
        village_ids: list[int] | None = plan["village_ids"]  # type: ignore[assignment]
        repeat: int = plan["repeat"]  # type: ignore[assignment]
        if plan["source"] == "text":
            emergency_id = spoken.emergency_from_text(
                user=user,
                station_id=station_id,
                text=str(plan["text"]),
                village_ids=village_ids,
                repeat=repeat,
            )
        elif plan["source"] == "recording":
            path = _held(str(plan["held"]))
            try:
                with _recording_in_words():
                    emergency_id = spoken.emergency_from_recording(
                        user=user,
                        station_id=station_id,
                        upload=path,
                        title=str(plan.get("title") or ""),
                        village_ids=village_ids,
                        repeat=repeat,
                    )
            finally:
                path.unlink(missing_ok=True)
        else:
            with unit_of_work() as db:
                emergency_id = emergencies.create_emergency(
                    db,
                    station_id=station_id,
                    segment_id=plan["segment"].id,  # type: ignore[attr-defined]
                    village_ids=village_ids,
                    actor=user,
                ).id
        return redirect(f"/emergency/{emergency_id}", notice="emergency-started")

    return run_form_task(form, again=again, task=task)


@router.post("/live")
def open_live(request: Request, user: ApproverPage, form: FormDep) -> Response:
    """ "Nói trực tiếp": open a live session (the API's rules), then its page."""

    def again(message: str, status: int) -> Response:
        return _choose_page(request, user, form=form, error=message, status=status)

    def action(db: Session) -> Response:
        station = views.station_for(db, user)
        if station is None:
            raise Invalid(_("Tài khoản của bạn chưa gắn với đài nào."))
        village_ids, _names = _scope(db, form, station.id)
        body = form.model(
            LiveCreate,
            {
                "station_id": station.id,
                "title": form.get("title"),
                "priority": form.get("priority") or "emergency",
                "village_ids": village_ids,
            },
        )
        try:
            s, _password = live_sessions.create_session(
                db,
                station_id=station.id,
                title=body.title,
                priority=body.priority,
                village_ids=body.village_ids,
                actor=user,
            )
        except Conflict as exc:
            words = _("Đài đang có một phiên phát trực tiếp: hãy kết thúc phiên đó trước.")
            raise Refused(words, status=409) from exc
        return redirect(f"/emergency/live/{s.id}")

    return run_form(form, again=again, action=action)


def _live_page(
    request: Request, user: User, live_id: int, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        s = live_sessions.get_session(db, live_id, user=user)
        names = views.village_names(db, s.station_id)
        return render(
            request,
            "emergency/live.html",
            {
                "page_title": s.title,
                "s": s,
                "village_list": [names.get(v, str(v)) for v in s.village_ids or []],
                "devices": views.devices_in_scope(
                    db, station_id=s.station_id, village_ids=s.village_ids
                ),
                "error": error,
            },
            status=status,
        )


@router.get("/live/{live_id}", response_class=HTMLResponse)
def live_page(request: Request, user: ApproverPage, live_id: DbId) -> HTMLResponse:
    return _live_page(request, user, live_id)


@router.post("/live/{live_id}/end")
def end_live(request: Request, user: ApproverPage, live_id: DbId, form: FormDep) -> Response:
    """ "Kết thúc": the devices go back to their schedule at their next poll."""

    def again(message: str, status: int) -> Response:
        return _live_page(request, user, live_id, error=message, status=status)

    def action(db: Session) -> Response:
        s = live_sessions.get_session(db, live_id, user=user, for_update=True)
        live_sessions.end_session(db, s, actor=user)
        return redirect(f"/emergency/live/{live_id}", notice="live-ended")

    return run_form(form, again=again, action=action)


def _watch(
    request: Request, user: User, emergency_id: int, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    now = clock.now()
    tz = station_zone(request)
    with unit_of_work(write=False) as db:
        emergency = emergencies.get_emergency(db, emergency_id, user=user)
        detail = emergencies.emergency_detail(db, emergency, base_url=base_url(request))
        names = views.village_names(db, emergency.station_id)
        state = views.emergency_state(emergency, now)
        rows = [
            {
                "d": d,
                "state": views.delivery_state(d.picked_up_at, d.started_at),
                "village": names.get(d.village_id or 0),
                "picked": views.clock_time(d.picked_up_at, tz),
                "started": views.clock_time(d.started_at, tz),
            }
            for d in detail.deliveries
        ]
        live = state is views.EMERGENCY_LIVE
        return render(
            request,
            "emergency/watch.html",
            {
                "page_title": detail.title,
                "e": detail,
                "state": state,
                "live": live,
                "refresh": REFRESH_SECONDS if live else None,
                "rows": rows,
                "picked": sum(1 for d in detail.deliveries if d.picked_up_at),
                "started": sum(1 for d in detail.deliveries if d.started_at),
                "village_list": [names.get(v, str(v)) for v in detail.village_ids or []],
                "checked_at": views.clock_time(now, tz),
                "error": error,
            },
            status=status,
        )


@router.get("/{emergency_id}", response_class=HTMLResponse)
def watch_page(request: Request, user: ApproverPage, emergency_id: DbId) -> HTMLResponse:
    return _watch(request, user, emergency_id)


@router.get("/{emergency_id}/cancel", response_class=HTMLResponse)
def cancel_page(request: Request, user: ApproverPage, emergency_id: DbId) -> HTMLResponse:
    """Ask before stopping: a cancelled emergency leaves every device at its next poll."""
    with unit_of_work(write=False) as db:
        emergency = emergencies.get_emergency(db, emergency_id, user=user)
        out = emergencies.emergency_out(db, emergency, base_url=base_url(request))
        return render(
            request, "emergency/cancel.html", {"title": N_("Hủy phát khẩn cấp"), "e": out}
        )


@router.post("/{emergency_id}/cancel")
def cancel(request: Request, user: ApproverPage, emergency_id: DbId, form: FormDep) -> Response:
    def again(message: str, status: int) -> Response:
        return _watch(request, user, emergency_id, error=message, status=status)

    def action(db: Session) -> Response:
        emergency = emergencies.get_emergency(db, emergency_id, user=user, for_update=True)
        emergencies.cancel_emergency(db, emergency=emergency, actor=user)
        return redirect(f"/emergency/{emergency_id}", notice="emergency-cancelled")

    return run_form(form, again=again, action=action)
