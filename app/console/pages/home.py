"""Trang chủ, and the pages the second half of the console will fill."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app import clock
from app.console import dashboard, segment_views
from app.console.auth import safe_next, signed_in_user
from app.console.i18n import N_
from app.console.pages.auth import sign_in_page
from app.console.render import render
from app.console.routing import ConsoleRoute
from app.db import unit_of_work

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, next: str = "/", expired: bool = False) -> HTMLResponse:
    """Signed out: the sign-in page. Signed in: this month at a glance and the to-do list."""
    user = signed_in_user(request)
    if user is None:
        return sign_in_page(request, next_path=safe_next(next), expired=expired)
    with unit_of_work(write=False) as db:
        summary = dashboard.home(db, user=user, now=clock.now())
        needs_audio = segment_views.needing_audio(db, user=user)
        return render(
            request,
            "home.html",
            {"title": N_("Trang chủ"), "home": summary, "needs_audio": needs_audio},
        )
