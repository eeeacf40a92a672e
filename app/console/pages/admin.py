"""Quản trị (admins): users, the station's details, its villages, programmes and cadence.

Thin handlers over the same services as the API: app.accounts.service (create, update,
set_password: the last active admin is never demoted nor disabled), app.stations.service
(update_station, create_village, set_village_cadence, update_programme_rules). Inputs are
checked with the API's own types (Username, Password, Name, Phone) so the rules are one.
A refused post shows the page again with what was typed and the reason beside the form
it came from (`error_at`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts.models import Role, User
from app.accounts.schemas import PasswordSet, UserCreate, UserUpdate
from app.console import ops_views as views
from app.console.auth import AdminPage
from app.console.forms import ConsoleForm, FieldErrors, FormDep, run_form
from app.console.i18n import N_, _
from app.console.render import NOTICES, redirect, render
from app.console.routing import ConsoleRoute
from app.db import DbId, unit_of_work
from app.errors import Invalid
from app.schedule import network as schedule_network
from app.stations import document
from app.stations import service as stations
from app.stations.models import Station
from app.stations.network import network_state
from app.stations.schemas import (
    NumberPattern,
    Phone,
    ProgrammeRules,
    Recipient,
    SignerName,
    SignerTitle,
    StationUpdate,
    VillageCadence,
    VillageCreate,
)
from app.text import Name

router = APIRouter(prefix="/admin", route_class=ConsoleRoute, include_in_schema=False)
NOTICES.update(
    {
        "user-created": N_("Đã thêm người dùng."),
        "user-disabled": N_("Đã khóa tài khoản."),
        "user-enabled": N_("Đã mở lại tài khoản."),
        "password-reset": N_("Đã đặt lại mật khẩu."),
    }
)


ROLES = [r.value for r in Role]


def _checked(adapter: TypeAdapter[Any], value: str, message: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise Invalid(message) from exc


_NAME: TypeAdapter[str] = TypeAdapter(Name)
_PHONE: TypeAdapter[str] = TypeAdapter(Phone)


def _user_words(fields: dict[str, str]) -> dict[str, str]:
    """Plainer words than the model's for the fields a person gets wrong most."""
    words = {
        "username": _("Tên đăng nhập gồm 2–64 chữ cái không dấu, chữ số hoặc . _ @ -"),
        "password": _("Mật khẩu cần ít nhất 8 ký tự."),
        "role": _("Hãy chọn một vai trò."),
    }
    return {name: words[name] for name in fields if name in words}


def _password(form: ConsoleForm) -> str:
    """The new password, checked by the API's PasswordSet."""
    try:
        return form.model(PasswordSet, {"password": form.get("password")}).password
    except FieldErrors as exc:
        raise FieldErrors(_user_words(exc.fields)) from exc


def _role(form: ConsoleForm) -> Role:
    """The role, checked by the API's UserUpdate."""
    try:
        role = form.model(UserUpdate, {"role": form.get("role") or None}).role
    except FieldErrors as exc:
        raise FieldErrors(_user_words(exc.fields)) from exc
    if role is None:
        raise FieldErrors({"role": _("Hãy chọn một vai trò.")})
    return role


# --- users ---------------------------------------------------------------------------------


def _users_page(
    request: Request,
    user: User,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        station_list = stations.list_stations(db, user=user)
        return render(
            request,
            "admin/users.html",
            {
                "title": N_("Quản trị"),
                "section": "users",
                "users": accounts.list_users(db),
                "stations": {s.id: s.name for s in station_list},
                "roles": ROLES,
                "values": values or {"role": "editor"},
                "error": error,
            },
            status=status,
        )


@router.get("", response_class=HTMLResponse)
def users_page(request: Request, user: AdminPage) -> HTMLResponse:
    """Every user, and the form that adds one."""
    return _users_page(request, user)


@router.post("/users/new")
def add_user(request: Request, user: AdminPage, form: FormDep) -> Response:
    def again(message: str, status: int) -> Response:
        return _users_page(request, user, values=form.typed(), error=message, status=status)

    def action(db: Session) -> Response:
        station_id = form.int_value("station_id", _("Hãy chọn một đài."))
        try:
            body = form.model(
                UserCreate,
                {
                    "username": form.get("username").strip(),
                    "password": form.get("password"),
                    "role": form.get("role"),
                    "station_id": station_id,
                    "full_name": form.get("full_name") or None,
                },
            )
        except FieldErrors as exc:
            raise FieldErrors({**exc.fields, **_user_words(exc.fields)}) from exc
        created = accounts.create_user(
            db,
            username=body.username,
            password=body.password,
            role=body.role,
            station_id=body.station_id,
            actor=user,
            full_name=body.full_name,
        )
        return redirect(f"/admin/users/{created.id}", notice="user-created")

    return run_form(form, again=again, action=action)


def _user_page(
    request: Request,
    admin: User,
    user_id: int,
    *,
    typed: ConsoleForm | None = None,
    error: str | None = None,
    error_at: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        target = accounts.get_user(db, user_id)
        station = db.get(Station, target.station_id) if target.station_id else None
        return render(
            request,
            "admin/user.html",
            {
                "page_title": target.full_name or target.username,  # a name, not a message
                "section": "users",
                "target": target,
                "station": station,
                "roles": ROLES,
                "myself": target.id == admin.id,
                "typed": typed.typed() if typed is not None else {},
                "error": error,
                "error_at": error_at,
            },
            status=status,
        )


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user: AdminPage, user_id: DbId) -> HTMLResponse:
    return _user_page(request, user, user_id)


def _user_change(
    request: Request, admin: User, user_id: int, form: ConsoleForm, where: str, change: Any
) -> Response:
    def again(message: str, status: int) -> Response:
        return _user_page(
            request, admin, user_id, typed=form, error=message, error_at=where, status=status
        )

    def action(db: Session) -> Response:
        target = accounts.get_user(db, user_id, for_update=True)
        notice = change(db, target)
        return redirect(f"/admin/users/{user_id}", notice=notice)

    return run_form(form, again=again, action=action)


@router.post("/users/{user_id}/name")
def change_name(request: Request, user: AdminPage, user_id: DbId, form: FormDep) -> Response:
    """ "Họ và tên": how pages name the person (checked as the API's UserUpdate)."""

    def change(db: Session, target: User) -> str:
        body = form.model(UserUpdate, {"full_name": form.get("full_name")})
        accounts.update_user(db, user=target, full_name=body.full_name or "", actor=user)
        return "saved"

    return _user_change(request, user, user_id, form, "name", change)


@router.post("/users/{user_id}/role")
def change_role(request: Request, user: AdminPage, user_id: DbId, form: FormDep) -> Response:
    def change(db: Session, target: User) -> str:
        accounts.update_user(db, user=target, role=_role(form), actor=user)
        return "saved"

    return _user_change(request, user, user_id, form, "role", change)


@router.post("/users/{user_id}/active")
def change_active(request: Request, user: AdminPage, user_id: DbId, form: FormDep) -> Response:
    """Disable (or enable again) an account: its sessions and tokens stop at once."""
    disable = form.get("disabled") == "1"

    def change(db: Session, target: User) -> str:
        accounts.update_user(db, user=target, disabled=disable, actor=user)
        return "user-disabled" if disable else "user-enabled"

    return _user_change(request, user, user_id, form, "active", change)


@router.post("/users/{user_id}/password")
def reset_password(request: Request, user: AdminPage, user_id: DbId, form: FormDep) -> Response:
    def change(db: Session, target: User) -> str:
        accounts.set_password(db, user=target, password=_password(form), actor=user)
        return "password-reset"

    return _user_change(request, user, user_id, form, "password", change)


# --- the station, its villages and programmes ----------------------------------------------


def _station_page(
    request: Request,
    user: User,
    station_id: int | None,
    *,
    typed: ConsoleForm | None = None,
    error: str | None = None,
    error_at: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with unit_of_work(write=False) as db:
        station = views.station_for(db, user, station_id)
        villages = stations.list_villages(db, station_id=station.id) if station else []
        programmes = stations.list_programmes(db, station_id=station.id) if station else []
        return render(
            request,
            "admin/station.html",
            {
                "title": N_("Thông tin đài"),
                "section": "station",
                "station": station,
                "all_stations": stations.list_stations(db, user=user),
                "villages": villages,
                "programmes": programmes,
                "network": network_state(station) if station else None,
                "cadence_text": views.cadence_text,
                "weekdays": views.WEEKDAYS,
                "weeks": views.WEEKS,
                "typed": typed.typed() if typed else {},
                "typed_days": typed.getlist("weekdays") if typed else None,
                "error": error,
                "error_at": error_at,
            },
            status=status,
        )


@router.get("/station", response_class=HTMLResponse)
def station_page(request: Request, user: AdminPage, station: DbId | None = None) -> HTMLResponse:
    return _station_page(request, user, station)


def _station_change(
    request: Request, admin: User, station_id: int, form: ConsoleForm, where: str, change: Any
) -> Response:
    def again(message: str, status: int) -> Response:
        return _station_page(
            request, admin, station_id, typed=form, error=message, error_at=where, status=status
        )

    def action(db: Session) -> Response:
        station = stations.get_station(db, station_id, user=admin)
        change(db, station)
        return redirect(f"/admin/station?station={station_id}#{where}", notice="saved")

    return run_form(form, again=again, action=action)


@router.post("/station/{station_id}")
def save_station(request: Request, user: AdminPage, station_id: DbId, form: FormDep) -> Response:
    """The station's details, its network kind and how its report is signed: the same
    changes as PATCH /api/v1/stations/{id}, checked by the same types."""

    def change(db: Session, station: Station) -> None:
        name = _checked(_NAME, form.get("name"), _("Hãy nhập tên đài."))
        hotline = form.get("hotline").strip()
        if hotline:
            hotline = _checked(
                _PHONE, hotline, _("Số điện thoại chỉ gồm chữ số, dấu cách, . + ( ) -")
            )
        changes: dict[str, Any] = {"name": name, "hotline": hotline or None}
        changes.update(_report_fields(form))
        network = form.get("network")
        if network not in ("", "ip", "fm"):
            raise Invalid(_("Hãy chọn hệ thống loa: IP hoặc FM."))
        state = network_state(station)
        if network and network != (state.pending or state.today):
            changes["network"] = network  # from the next local day (schedule.set_network)
        checked = form.model(StationUpdate, changes)  # the API's PATCH model, all at once
        changes = checked.model_dump(include=set(changes))
        schedule_network.update_station(db, station=station, changes=changes, actor=user)

    return _station_change(request, user, station_id, form, "details", change)


_NUMBER_PATTERN: TypeAdapter[str] = TypeAdapter(NumberPattern)
_SIGNER_NAME: TypeAdapter[str] = TypeAdapter(SignerName)
_SIGNER_TITLE: TypeAdapter[str] = TypeAdapter(SignerTitle)
_RECIPIENT: TypeAdapter[str] = TypeAdapter(Recipient)


def _report_fields(form: ConsoleForm) -> dict[str, Any]:
    """The report's signing fields the form holds (a form without them, say a page loaded
    before they existed, changes none); an emptied one restores its default."""

    def field(name: str, adapter: TypeAdapter[str], message: str) -> str | None:
        value = form.get(name).strip()
        return str(_checked(adapter, value, message)) if value else None

    lines = [line.strip() for line in form.get("report_recipients").splitlines()]
    recipients = [line for line in lines if line]
    if len(recipients) > document.MAX_RECIPIENTS:
        raise Invalid(_("Nơi nhận: nhiều nhất %(n)s dòng.") % {"n": document.MAX_RECIPIENTS})
    too_long = _("Mỗi nơi nhận tối đa %(n)s ký tự.") % {"n": document.MAX_RECIPIENT}
    fields = {
        "report_number_pattern": field(
            "report_number_pattern",
            _NUMBER_PATTERN,
            _("Số hiệu văn bản cần có {n} đúng một lần (có thể thêm {year}), tối đa %(n)s ký tự.")
            % {"n": document.MAX_PATTERN},
        ),
        "report_signer_name": field(
            "report_signer_name",
            _SIGNER_NAME,
            _("Tên người ký: một dòng, tối đa %(n)s ký tự.") % {"n": document.MAX_SIGNER_NAME},
        ),
        "report_signer_title": field(
            "report_signer_title",
            _SIGNER_TITLE,
            _("Chức vụ người ký: tối đa %(n)s ký tự, cho vừa chỗ ký.") % {"n": document.MAX_TITLE},
        ),
        "report_recipients": [_checked(_RECIPIENT, line, too_long) for line in recipients] or None,
    }
    return {name: value for name, value in fields.items() if name in form.values}


@router.post("/station/{station_id}/villages")
def add_village(request: Request, user: AdminPage, station_id: DbId, form: FormDep) -> Response:
    def change(db: Session, station: Station) -> None:
        name = _checked(_NAME, form.get("village_name"), _("Hãy nhập tên thôn."))
        body = form.model(VillageCreate, {"name": name})
        stations.create_village(db, station=station, name=body.name, actor=user)

    return _station_change(request, user, station_id, form, "villages", change)


@router.post("/station/{station_id}/villages/{village_id}/cadence")
def village_cadence(
    request: Request, user: AdminPage, station_id: DbId, village_id: DbId, form: FormDep
) -> Response:
    """A village's own weekly slots, or back to the programme's ("clear")."""

    def change(db: Session, station: Station) -> None:
        village = stations.get_village(db, station_id=station.id, village_id=village_id)
        cadence = None if form.get("clear") == "1" else views.weekly_from(form)
        body = form.model(VillageCadence, {"cadence": cadence})
        stations.set_village_cadence(db, village=village, cadence=body.cadence, actor=user)

    return _station_change(request, user, station_id, form, f"village-{village_id}", change)


@router.post("/station/{station_id}/programmes/{code}")
def programme_rules(
    request: Request, user: AdminPage, station_id: DbId, code: str, form: FormDep
) -> Response:
    """A programme's slot and its duration window (mm:ss)."""

    def change(db: Session, station: Station) -> None:
        programme = stations.get_programme(db, station_id=station.id, code=code)
        weekly = programme.cadence.get("kind") == "weekly"
        body = form.model(
            ProgrammeRules,
            {
                "cadence": views.weekly_from(form) if weekly else views.monthly_from(form),
                "min_duration_ms": views.minutes_ms(form, "min"),
                "max_duration_ms": views.minutes_ms(form, "max"),
            },
            names={"min_duration_ms": "min", "max_duration_ms": "max"},
        )
        stations.update_programme_rules(
            db,
            programme=programme,
            cadence=body.cadence,
            min_duration_ms=body.min_duration_ms,
            max_duration_ms=body.max_duration_ms,
            actor=user,
        )

    return _station_change(request, user, station_id, form, f"programme-{code}", change)
