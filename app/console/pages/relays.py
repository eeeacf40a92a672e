"""Quản trị, "Tiếp sóng" (admins): a station's relays of national and provincial radio.

Thin handlers over app.stations.service (create_programme, update_programme_rules: the
API's own checks, so the console refuses what the API refuses) and the probe ("Nghe thử",
a GET: it changes nothing, and a reload only listens again).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.console import ops_views as views
from app.console import relay_views
from app.console.auth import AdminPage
from app.console.forms import ConsoleForm, FormDep, run_form
from app.console.i18n import N_, _
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.errors import Invalid
from app.stations import service as stations
from app.stations.schemas import ProgrammeCode, StreamUrl
from app.streams import probe as streams_probe

router = APIRouter(prefix="/admin/relays", route_class=ConsoleRoute, include_in_schema=False)

_URL: TypeAdapter[str] = TypeAdapter(StreamUrl)
_CODE: TypeAdapter[str] = TypeAdapter(ProgrammeCode)


def _url(form: ConsoleForm) -> str:
    try:
        return _URL.validate_python(form.get("url").strip())
    except ValidationError as exc:
        raise Invalid(_("Địa chỉ luồng phải bắt đầu bằng http:// hoặc https://.")) from exc


def _daily(form: ConsoleForm) -> dict[str, Any]:
    return {"kind": "daily", "time": form.get("time").strip()}


def _page(
    request: Request,
    user: User,
    station_id: int | None,
    *,
    typed: ConsoleForm | None = None,
    error: str | None = None,
    error_at: str | None = None,
    heard: tuple[str, str] | None = None,
    heard_url: str = "",
    status: int = 200,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        station = views.station_for(db, user, station_id)
        programmes = stations.list_programmes(db, station_id=station.id) if station else []
        return render(
            request,
            "admin/relays.html",
            {
                "title": N_("Tiếp sóng"),
                "section": "relays",
                "station": station,
                "relays": relay_views.relays(programmes),
                "typed": typed.typed() if typed else {},
                "error": error,
                "error_at": error_at,
                "heard": heard,
                "heard_url": heard_url,
            },
            status=status,
        )


@router.get("", response_class=HTMLResponse)
def relays_page(request: Request, user: AdminPage, station: DbId | None = None) -> HTMLResponse:
    """The station's relays, each editable, and the form that adds one."""
    return _page(request, user, station)


@router.get("/probe", response_class=HTMLResponse)
def probe_page(
    request: Request, user: AdminPage, url: str = "", station: DbId | None = None
) -> HTMLResponse:
    """ "Nghe thử": the server listens to the URL for a few seconds and says what it heard."""
    try:
        checked = _URL.validate_python(url.strip())
    except ValidationError:
        heard = (_("Địa chỉ luồng phải bắt đầu bằng http:// hoặc https://."), "bad")
    else:
        heard = relay_views.probe_words(streams_probe.probe(checked))
    return _page(request, user, station, heard=heard, heard_url=url)


def _change(
    request: Request, admin: User, station_id: int, form: ConsoleForm, where: str, change: Any
) -> Response:
    def again(message: str, status: int) -> Response:
        return _page(
            request, admin, station_id, typed=form, error=message, error_at=where, status=status
        )

    def action(db: Session) -> Response:
        station = stations.get_station(db, station_id, user=admin)
        change(db, station)
        return redirect(f"/admin/relays?station={station_id}#{where}", notice="saved")

    return run_form(form, again=again, action=action)


@router.post("/{station_id}")
def add_relay(request: Request, user: AdminPage, station_id: DbId, form: FormDep) -> Response:
    """ "Tiếp sóng": a new relay of a stream, every day at one time, for an exact length."""

    def change(db: Session, station: Any) -> None:
        name = form.get("name").strip()
        if not name:
            raise Invalid(_("Hãy nhập tên chương trình tiếp sóng."))
        try:
            code = _CODE.validate_python(form.get("code").strip())
        except ValidationError as exc:
            raise Invalid(
                _("Mã chỉ gồm chữ thường không dấu, chữ số và dấu -, ví dụ: vov1.")
            ) from exc
        length = views.minutes_ms(form, "length")
        stations.create_programme(
            db,
            station=station,
            code=code,
            name=name,
            scope="station",
            cadence=_daily(form),
            min_duration_ms=length,
            max_duration_ms=length,
            source={"kind": "relay", "url": _url(form)},
            actor=user,
        )

    return _change(request, user, station_id, form, "add", change)


@router.post("/{station_id}/{code}")
def edit_relay(
    request: Request, user: AdminPage, station_id: DbId, code: str, form: FormDep
) -> Response:
    """A relay's name, stream, time and length."""

    def change(db: Session, station: Any) -> None:
        programme = stations.get_programme(db, station_id=station.id, code=code)
        if not programme.is_relay:
            raise Invalid(_("Chuyên mục này không phải tiếp sóng."))
        length = views.minutes_ms(form, "length")
        name = form.get("name").strip()
        stations.update_programme_rules(
            db,
            programme=programme,
            cadence=_daily(form),
            min_duration_ms=length,
            max_duration_ms=length,
            name=name or None,
            source={"kind": "relay", "url": _url(form)},
            actor=user,
        )

    return _change(request, user, station_id, form, f"relay-{code}", change)
