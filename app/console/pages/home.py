"""Trang chủ, and the pages the second half of the console will fill."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.console import dashboard, relay_views, segment_views
from app.console.auth import ApproverPage, safe_next, signed_in_user
from app.console.forms import FormDep, run_form
from app.console.i18n import N_
from app.console.pages.auth import sign_in_page
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.schedule import warnings as schedule_warnings

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, next: str = "/", expired: bool = False, tick_all: bool = False
) -> HTMLResponse:
    """Signed out: the sign-in page. Signed in: this month at a glance and the to-do list
    (`tick_all`: "Chọn tất cả" ticked every segment waiting for approval)."""
    user = signed_in_user(request)
    if user is None:
        return sign_in_page(request, next_path=safe_next(next), expired=expired)
    return home_page(request, user, tick_all=tick_all)


def home_page(
    request: Request,
    user: User,
    *,
    error: str | None = None,
    status: int = 200,
    tick_all: bool = False,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        now = clock.now()
        summary = dashboard.home(db, user=user, now=now)
        needs_audio = segment_views.needing_audio(db, user=user)
        relays = relay_views.today(db, station=summary.station, now=now)
        return render(
            request,
            "home.html",
            {
                "title": N_("Trang chủ"),
                "home": summary,
                "needs_audio": needs_audio,
                "relays_today": relays,
                "tick_all": tick_all,
                "error": error,
            },
            status=status,
        )


@router.post("/warnings/{warning_id}/ack")
def acknowledge_warning(
    request: Request, user: ApproverPage, warning_id: DbId, form: FormDep
) -> Response:
    """ "Đã xem": the warning acknowledged (who, when, at which count), as the API's ack."""

    def again(message: str, status: int) -> Response:
        return home_page(request, user, error=message, status=status)

    def action(db: Session) -> Response:
        schedule_warnings.acknowledge(db, warning_id=warning_id, user=user)
        return redirect("/#warnings", notice="warning-seen")

    return run_form(form, again=again, action=action)
