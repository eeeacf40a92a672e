"""Lịch phát: the year's calendar, a broadcast's rundown, and "Ghép buổi phát".

Thin handlers over app.schedule.service and app.schedule.assembly (the same functions as
the API's PUT rundown and POST assemble). The rundown form works without JavaScript: its
buttons (up, down, remove, add, save) each post the whole order plus one operation; the
page's script only adds drag and keyboard reordering with a live total.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from app import clock
from app.accounts.models import User
from app.audio import listen
from app.console import dashboard
from app.console import schedule_views as views
from app.console.auth import ApproverPage, ViewerPage
from app.console.forms import ConsoleForm, FormDep, run_form_task
from app.console.i18n import N_, _
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.errors import LoaxaError
from app.playout.aired import master_histories
from app.schedule import assembly
from app.schedule import service as schedule
from app.schedule.models import Broadcast, BroadcastStatus
from app.schedule.schemas import RundownSet
from app.segments.models import Segment

router = APIRouter(prefix="/schedule", route_class=ConsoleRoute, include_in_schema=False)

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


@router.get("", response_class=HTMLResponse)
def calendar_page(
    request: Request,
    user: ViewerPage,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
) -> Response:
    """The year month by month; `month` opens that month's village slots one by one.

    Without a year or month it opens at this month: a redirect to this year's page at this
    month's anchor, so a phone does not start at January (no script needed).
    """
    with unit_of_work(write=False) as db:
        station = dashboard.user_station(db, user)
        if month is not None:
            year = int(month[:4])
        if year is None:
            now_month = views.local_month(clock.now(), station)
            return RedirectResponse(
                f"/schedule?year={now_month[:4]}#m-{now_month}", status_code=302
            )
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
    autofill: bool = False,
    confirm: list[int] | None = None,
) -> HTMLResponse:
    """The broadcast's page; with `autofill`, the fill's proposal; with `confirm`, the
    order that was refused because some of its segments already aired elsewhere."""
    with unit_of_work(write=False) as db:
        page = views.broadcast_page(db, user=user, broadcast_id=broadcast_id)
        if error is None and status == 200 and page.status in ("planned", views.FILLED):
            hint = views.window_message(page.rundown)
        else:
            hint = None
        proposal = problem = None
        if autofill and page.editable:
            proposal = views.proposal(db, user=user, broadcast_id=broadcast_id)
            problem = views.proposal_problem(proposal, page.broadcast.local_month)
        aired: dict[int, list[Broadcast]] = {}
        titles: dict[int, str] = {}
        if confirm is not None:
            aired = schedule.aired_elsewhere(
                db, broadcast=page.broadcast, segment_ids=confirm
            )
            titles = dict(
                db.execute(select(Segment.id, Segment.title).where(Segment.id.in_(aired)))
                .tuples()
                .all()
            )
        return render(
            request,
            "schedule/broadcast.html",
            {
                "title": N_("Buổi phát"),
                "page": page,
                "rundown": page.rundown,
                "error": None if aired else error,
                "hint": hint,
                "proposal": proposal,
                "proposal_problem": problem,
                "confirm": (
                    {"order": confirm, "aired": [(titles.get(i), bs) for i, bs in aired.items()]}
                    if aired
                    else None
                ),
            },
            status=status,
        )


@router.get("/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(request: Request, user: ViewerPage, broadcast_id: DbId) -> HTMLResponse:
    return _broadcast(request, user, broadcast_id)


@router.get("/{broadcast_id}/autofill", response_class=HTMLResponse)
def autofill_page(request: Request, user: ApproverPage, broadcast_id: DbId) -> HTMLResponse:
    """ "Tự động xếp": the rundown the scheduler's fill would choose, shown, not saved."""
    return _broadcast(request, user, broadcast_id, autofill=True)


def _ids(form: ConsoleForm, name: str = "segment_id") -> list[int]:
    """Ids read strictly (the order itself is checked by RundownSet)."""
    return form.int_list(name, _("Thứ tự phát không hợp lệ: hãy tải lại trang."))


def _order(form: ConsoleForm) -> list[int]:
    return views.reordered(_ids(form), form.get("op") or "save", _ids(form, "add"))


def _shown_order(form: ConsoleForm) -> list[int]:
    """The order a refused form asked for, read leniently (only to ask about it again)."""
    ids = [int(v) for v in form.getlist("segment_id") if v.isdigit() and len(v) <= 9]
    add = [int(v) for v in form.getlist("add") if v.isdigit() and len(v) <= 9]
    return views.reordered(ids, form.get("op") or "save", add)


@router.post("/{broadcast_id}/rundown")
def set_rundown(
    request: Request, user: ApproverPage, broadcast_id: DbId, form: FormDep
) -> Response:
    """One rundown button: the order as shown, changed by the button, saved as a whole.

    A segment that aired in another broadcast is asked about first (409 and a question;
    "confirm_aired" sends the same order again). An assembled broadcast whose rundown
    changed gets its master made again at once when the new rundown fits the window; the
    notice says what happened to the master either way.
    """

    def again(message: str, status: int) -> Response:
        asked = status == 409 and form.get("confirm_aired") != "1"
        confirm = _shown_order(form) if asked else None
        return _broadcast(
            request, user, broadcast_id, error=message, status=status, confirm=confirm
        )

    def task() -> Response:
        with unit_of_work() as db:
            broadcast = schedule.get_broadcast(db, broadcast_id, user=user, for_update=True)
            # Assembled now, or assembled once and dropped by an earlier change (its audit
            # trail says so): either way the column is meant to have a master.
            was_assembled = broadcast.status == BroadcastStatus.assembled.value or (
                master_histories(db, [broadcast.id])[broadcast.id].known
            )
            body = form.model(
                RundownSet,
                {"segment_ids": _order(form), "confirm_aired": form.get("confirm_aired") == "1"},
            )
            schedule.set_rundown(
                db,
                broadcast=broadcast,
                segment_ids=body.segment_ids,
                actor=user,
                confirm_aired=body.confirm_aired,
            )
            dropped = was_assembled and broadcast.master_sha256 is None
            fits = dropped and assembly.rundown_view(db, broadcast).compliant
        if not dropped:
            return redirect(f"/schedule/{broadcast_id}#rundown", notice="rundown")
        if not fits:
            return redirect(f"/schedule/{broadcast_id}#rundown", notice="rundown-unassembled")
        try:
            assembly.assemble_broadcast(broadcast_id, actor_id=user.id)
        except LoaxaError:
            return redirect(f"/schedule/{broadcast_id}#master", notice="rundown-remake-failed")
        return redirect(f"/schedule/{broadcast_id}#master", notice="rundown-remade")

    return run_form_task(form, again=again, task=task)


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
