"""Thiết bị: each playout PC's health for approvers and admins; an admin adds one and sees
its token once (the page answers the post directly: the token is never stored, never in a
cookie nor a redirect, and no later page can show it again)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.console import ops_views as views
from app.console.auth import AdminPage, ApproverPage
from app.console.forms import ConsoleForm, FieldErrors, FormDep, parse_int, run_form
from app.console.i18n import N_, _
from app.console.render import redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.devices import service as devices
from app.devices.models import Device
from app.devices.schemas import DeviceCreate
from app.errors import NotFound
from app.stations import service as stations

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _page(
    request: Request,
    user: User,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    row_error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = clock.now()
    with unit_of_work(write=False) as db:
        station_list = stations.list_stations(db, user=user)
        names = {s.id: s.name for s in station_list}
        villages = {s.id: views.village_names(db, s.id) for s in station_list}
        found = [
            d for d in devices.list_devices(db, station_id=user.station_id) if d.station_id in names
        ]
        rows = [
            {
                "device": d,
                "state": views.connection(d, now),
                "station": names.get(d.station_id, ""),
                "village": villages.get(d.station_id, {}).get(d.village_id or 0),
                "disk": views.disk(d.free_disk_bytes),
            }
            for d in found
        ]
        return render(
            request,
            "devices/list.html",
            {
                "title": N_("Thiết bị"),
                "rows": rows,
                "summary": views.device_summary(found, now),
                "stations": station_list,
                "villages": villages,
                "values": values or {},
                "error": error,
                "row_error": row_error,
            },
            status=status,
        )


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, user: ApproverPage) -> HTMLResponse:
    """Every device of the user's station (an admin: of every station), with its health."""
    return _page(request, user)


def _place(form: ConsoleForm) -> dict[str, int | None]:
    """"Nơi đặt": "<station id>" or "<station id>:<village id>", ids read strictly."""
    station, sep, village = form.get("place").partition(":")
    station_id = parse_int(station)
    village_id = parse_int(village) if sep else None
    if station_id is None or (sep and village_id is None):
        raise FieldErrors({"place": _("Hãy chọn nơi đặt thiết bị.")})
    return {"station_id": station_id, "village_id": village_id}


@router.post("/devices/new")
def add_device(request: Request, user: AdminPage, form: FormDep) -> Response:
    """Register a device; the answer is the one page that ever shows its token."""

    def again(message: str, status: int) -> Response:
        return _page(request, user, values=form.typed(), error=message, status=status)

    def action(db: Session) -> Response:
        body = form.model(DeviceCreate, {"name": form.get("name"), **_place(form)})
        device, token = devices.create_device(
            db,
            name=body.name,
            station_id=body.station_id,
            village_id=body.village_id,
            actor=user,
        )
        place = views.village_names(db, device.station_id).get(device.village_id or 0)
        return render(
            request,
            "devices/token.html",
            {"title": N_("Mã của thiết bị mới"), "device": device, "token": token, "place": place},
            status=201,
        )

    return run_form(form, again=again, action=action)


def _device_of(db: Session, user: User, device_id: int) -> Device:
    """A device the admin's station list shows (404 otherwise)."""
    device = devices.get_device(db, device_id, for_update=True)
    if user.station_id is not None and device.station_id != user.station_id:
        raise NotFound(f"device {device_id} does not exist")
    return device


@router.post("/devices/{device_id}/revoke")
def revoke(request: Request, user: AdminPage, device_id: DbId, form: FormDep) -> Response:
    """ "Thu hồi": a page that says what will happen, then (confirmed) the token is dead."""

    def again(message: str, status: int) -> Response:
        return _page(request, user, row_error=message, status=status)

    def action(db: Session) -> Response:
        device = _device_of(db, user, device_id)
        if form.get("confirm") != "yes":
            page = {"title": N_("Thu hồi mã thiết bị"), "device": device}
            return render(request, "devices/revoke.html", page)
        devices.revoke_device(db, device=device, actor=user)
        return redirect("/devices", notice="device-revoked")

    return run_form(form, again=again, action=action)


@router.post("/devices/{device_id}/token")
def renew_token(request: Request, user: AdminPage, device_id: DbId, form: FormDep) -> Response:
    """ "Cấp mã mới": the answer is the one page that ever shows the new token."""

    def again(message: str, status: int) -> Response:
        return _page(request, user, row_error=message, status=status)

    def action(db: Session) -> Response:
        device = _device_of(db, user, device_id)
        token = devices.issue_token(db, device=device, actor=user)
        place = views.village_names(db, device.station_id).get(device.village_id or 0)
        return render(
            request,
            "devices/token.html",
            {
                "title": N_("Mã mới của thiết bị"),
                "device": device,
                "token": token,
                "place": place,
                "renewed": True,
            },
        )

    return run_form(form, again=again, action=action)
