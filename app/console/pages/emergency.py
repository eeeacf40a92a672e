"""Phát khẩn cấp: an approver puts an approved segment on air at once, in two steps.

1. GET /emergency: choose the segment (approved, with audio) and where (the whole
   commune or some villages). 2. POST /emergency/confirm: the page says what will happen
   (what plays, where, on how many devices, until when) and asks again; only POST
   /emergency (with the token) creates it. Then /emergency/{id} shows each device in
   scope: picked up (its poll returned the emergency), started (its as-run says so), or
   waiting; it refreshes itself every 5 s while on air. "Hủy" asks once more, then stops it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audio.models import AudioAsset
from app.console import ops_views as views
from app.console.auth import ApproverPage
from app.console.forms import ConsoleForm, FormDep, parse_int, run_form
from app.console.i18n import N_, _
from app.console.render import NOTICES, redirect, render, station_zone
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.errors import Invalid, NotFound
from app.pagination import PageParams, paginate
from app.playout import emergencies
from app.segments import service as segments
from app.segments.models import Segment, SegmentStatus
from app.urls import base_url

router = APIRouter(prefix="/emergency", route_class=ConsoleRoute, include_in_schema=False)
NOTICES.update(
    {
        "emergency-started": N_("Đã phát lệnh khẩn cấp: các máy sẽ phát trong vòng 30 giây."),
        "emergency-cancelled": N_("Đã hủy phát khẩn cấp."),
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
) -> HTMLResponse:
    now = clock.now()
    with unit_of_work(write=False) as db:
        station = views.station_for(db, user)
        choices: list[Segment] = []
        recent = []
        villages: dict[int, str] = {}
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
        return render(
            request,
            "emergency/choose.html",
            {
                "title": N_("Phát khẩn cấp"),
                "station": station,
                "choices": choices,
                "villages": villages,
                "recent": recent,
                "chosen_segment": form.get_int("segment_id") if form else None,
                "chosen_scope": form.get("scope") if form else "station",
                "chosen_villages": {
                    v for v in (parse_int(x) for x in form.getlist("village_ids")) if v
                }
                if form
                else set(),
                "error": error,
            },
            status=status,
        )


@router.get("", response_class=HTMLResponse)
def choose_page(request: Request, user: ApproverPage) -> HTMLResponse:
    return _choose_page(request, user)


def _plan(db: Session, user: User, form: ConsoleForm) -> dict[str, object]:
    """What the chosen emergency would do, checked as create_emergency will check it."""
    station = views.station_for(db, user)
    if station is None:
        raise Invalid(_("Tài khoản của bạn chưa gắn với đài nào."))
    choice = views.emergency_choice(form, station.id)
    segment = segments.get_segment(db, choice.segment_id, user=user)
    if segment.station_id != station.id:
        raise NotFound(f"segment {segment.id} does not exist in station {station.id}")
    if segment.status != SegmentStatus.approved.value or segment.audio_id is None:
        raise Invalid(_("Chỉ phát khẩn cấp được tin bài đã duyệt và có âm thanh."))
    names = views.village_names(db, station.id)
    unknown = [v for v in choice.village_ids or [] if v not in names]
    if unknown:
        raise NotFound(f"village {unknown[0]} does not exist in station {station.id}")
    asset = db.get_one(AudioAsset, segment.audio_id)
    return {
        "station": station,
        "segment": segment,
        "duration_ms": asset.duration_ms,
        "village_ids": choice.village_ids,
        "village_list": [names[v] for v in choice.village_ids or []],
        "devices": views.devices_in_scope(
            db, station_id=station.id, village_ids=choice.village_ids
        ),
        "until": clock.now() + emergencies.emergency_lifetime(asset.duration_ms),
    }


@router.get("/confirm")
def confirm_again(user: ApproverPage) -> Response:
    """The confirmation is the answer to a post (a language switch there comes back here)."""
    return redirect("/emergency")


@router.post("/confirm", response_class=HTMLResponse)
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


@router.post("")
def start(request: Request, user: ApproverPage, form: FormDep) -> Response:
    """On air: every device in scope plays it at its next poll."""

    def again(message: str, status: int) -> Response:
        return _choose_page(request, user, form=form, error=message, status=status)

    def action(db: Session) -> Response:
        plan = _plan(db, user, form)
        emergency = emergencies.create_emergency(
            db,
            station_id=plan["station"].id,  # type: ignore[attr-defined]
            segment_id=plan["segment"].id,  # type: ignore[attr-defined]
            village_ids=plan["village_ids"],  # type: ignore[arg-type]
            actor=user,
        )
        return redirect(f"/emergency/{emergency.id}", notice="emergency-started")

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
