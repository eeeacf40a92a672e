"""Báo cáo: the compliance report as a page, and its downloads (CSV, Excel, PDF, ICS).

The page and the downloads call app.reports (the same services as the API's
/reports/compliance and schedule.ics), for the signed-in person's station, authorised by
the session cookie like app/console/pages/files.py. The podcast feed is public already.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.console import dashboard
from app.console import report_views as views
from app.console.auth import ViewerPage
from app.console.i18n import N_, _
from app.console.render import render
from app.console.routing import ConsoleRoute
from app.console.schedule_views import local_month
from app.db import unit_of_work
from app.errors import NotFound
from app.reports import calendar, formats, pdf, podcast, service
from app.reports.chart import airtime_chart
from app.reports.router import MEDIA_TYPES
from app.stations.models import Station

router = APIRouter(prefix="/reports", route_class=ConsoleRoute, include_in_schema=False)

Year = Annotated[int | None, Query(ge=2000, le=2100)]
MonthNumber = Annotated[int | None, Query(ge=1, le=12)]


def _station(db: Session, user: User) -> Station:
    station = dashboard.user_station(db, user)
    if station is None:
        raise NotFound("no station for this account")
    return station


def _period(year: int | None, month: int | None, station: Station | None) -> service.Period:
    if year is None:
        year = int(local_month(clock.now(), station)[:4])
    return service.Period(year, month)


def _heading(period: service.Period) -> str:
    if period.month:
        month = f"{period.month:02d}/{period.year}"
        return _("Kết quả tuyên truyền CCHC tháng %(month)s") % {"month": month}
    return _("Kết quả tuyên truyền CCHC năm %(year)s") % {"year": period.year}


@router.get("", response_class=HTMLResponse)
def report_page(
    request: Request, user: ViewerPage, year: Year = None, month: MonthNumber = None
) -> HTMLResponse:
    """The report of a local year (or one month of it), with its chart and download links."""
    with unit_of_work(write=False) as db:
        station = dashboard.user_station(db, user)
        period = _period(year, month, station)
        if station is None:
            return render(request, "reports/report.html", {"title": N_("Báo cáo"), "report": None})
        report = service.compliance_report(
            db, station_id=station.id, period=period, user=user, now=clock.now()
        )
    query = f"year={period.year}" + (f"&month={period.month}" if period.month else "")
    figure = airtime_chart(report)
    return render(
        request,
        "reports/report.html",
        {
            "title": N_("Báo cáo"),
            "report": report,
            "period": period,
            "query": query,
            "chart": views.chart_svg(figure),
            "legend": views.chart_legend(figure),
            "reach": any(m.network == "ip" for m in report.months),
            "results": views.RESULTS,
            "extra": views.optional_fields(report),
            "podcast": podcast.feed_path(report.station.id),
            "heading": _heading(period),
        },
    )


@router.get("/compliance.{fmt}")
def download(user: ViewerPage, fmt: str, year: Year = None, month: MonthNumber = None) -> Response:
    """ "Tải CSV", "Tải Excel", "Tải PDF": the same files as the API's, for this station."""
    if fmt not in MEDIA_TYPES:
        raise NotFound(f"no report format {fmt!r}")
    with unit_of_work(write=False) as db:
        station = _station(db, user)
        report = service.compliance_report(
            db, station_id=station.id, period=_period(year, month, station), user=user
        )
    body = {"csv": formats.to_csv, "xlsx": formats.to_xlsx, "pdf": pdf.to_pdf}[fmt](report)
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": formats.content_disposition(
                formats.report_filename(report, fmt)
            ),
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/schedule.ics")
def schedule_ics(user: ViewerPage, year: Year = None) -> Response:
    """The station's broadcasts as iCalendar (as the API's schedule.ics)."""
    with unit_of_work(write=False) as db:
        station = _station(db, user)
        station, body = calendar.schedule_calendar(
            db, station_id=station.id, user=user, year=year
        )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": formats.content_disposition(
                f"Lịch phát sóng {station.name}.ics", disposition="inline"
            ),
            "Cache-Control": "private, no-cache",
        },
    )
