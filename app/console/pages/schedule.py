"""Lịch phát: the year's calendar, a broadcast's rundown, and "Ghép buổi phát".

Thin handlers over app.schedule.service and app.schedule.assembly (the same functions as
the API's PUT rundown and POST assemble). The rundown form works without JavaScript: its
buttons (up, down, remove, add, save) each post the whole order plus one operation; the
page's script only adds drag and keyboard reordering with a live total.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audio import listen
from app.console import dashboard
from app.console import schedule_views as views
from app.console.auth import ApproverPage, ViewerPage
from app.console.forms import ConsoleForm, FormDep, run_form, run_form_task
from app.console.i18n import N_, _
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.schedule import assembly
from app.schedule import service as schedule
from app.schedule.schemas import RundownSet

router = APIRouter(prefix="/schedule", route_class=ConsoleRoute, include_in_schema=False)

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


@router.get("", response_class=HTMLResponse)
def calendar_page(
    request: Request,
    user: ViewerPage,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
) -> HTMLResponse:
    """The year month by month; `month` opens that month's village slots one by one."""
    with unit_of_work(write=False) as db:
        station = dashboard.user_station(db, user)
        if month is not None:
            year = int(month[:4])
        if year is None:
            year = views.local_year(clock.now(), station)
        months = (
            views.year_calendar(db, user=user, station=station, year=year, opened=month)
            if station is not None
            else []
        )
        return render(
            request,
            "schedule/calendar.html",
            {
                "title": N_("Lịch phát"),
                "station": station,
                "year": year,
                "opened": month,
                "months": months,
                "this_month": views.local_month(clock.now(), station),
            },
        )


def _broadcast(
    request: Request,
    user: User,
    broadcast_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        page = views.broadcast_page(db, user=user, broadcast_id=broadcast_id)
        if error is None and status == 200 and page.status in ("planned", views.FILLED):
            hint = views.window_message(page.rundown)
        else:
            hint = None
        return render(
            request,
            "schedule/broadcast.html",
            {
                "title": N_("Buổi phát"),
                "page": page,
                "rundown": page.rundown,
                "error": error,
                "hint": hint,
            },
            status=status,
        )


@router.get("/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(request: Request, user: ViewerPage, broadcast_id: DbId) -> HTMLResponse:
    return _broadcast(request, user, broadcast_id)


def _ids(form: ConsoleForm) -> list[int]:
    """The rundown as shown, ids read strictly (the order itself is checked by RundownSet)."""
    return form.int_list("segment_id", _("Thứ tự phát không hợp lệ: hãy tải lại trang."))


@router.post("/{broadcast_id}/rundown")
def set_rundown(
    request: Request, user: ApproverPage, broadcast_id: DbId, form: FormDep
) -> Response:
    """One rundown button: the order as shown, changed by the button, saved as a whole."""

    def again(message: str, status: int) -> Response:
        return _broadcast(request, user, broadcast_id, error=message, status=status)

    def action(db: Session) -> Response:
        add = form.int_value("add", _("Hãy chọn một tin bài đã duyệt."))
        order = views.reordered(_ids(form), form.get("op") or "save", add)
        order = form.model(RundownSet, {"segment_ids": order}).segment_ids
        broadcast = schedule.get_broadcast(db, broadcast_id, user=user, for_update=True)
        schedule.set_rundown(db, broadcast=broadcast, segment_ids=order, actor=user)
        return redirect(f"/schedule/{broadcast_id}#rundown", notice="rundown")

    return run_form(form, again=again, action=action)


@router.post("/{broadcast_id}/assemble")
def assemble(request: Request, user: ApproverPage, broadcast_id: DbId, form: FormDep) -> Response:
    """ "Ghép buổi phát"; outside the window, the refusal in words beside the bar (422)."""

    def again(message: str, status: int) -> Response:
        if status == 422:
            with unit_of_work(write=False) as db:
                broadcast = schedule.get_broadcast(db, broadcast_id, user=user)
                message = views.window_message(assembly.rundown_view(db, broadcast)) or message
        return _broadcast(request, user, broadcast_id, error=message, status=status)

    def task() -> Response:
        view = assembly.assemble_broadcast(broadcast_id, actor_id=user.id)
        answer = redirect(f"/schedule/{broadcast_id}#master", notice="assembled")
        return listen.made_after(answer, view.master_sha256)

    return run_form_task(form, again=again, task=task)
