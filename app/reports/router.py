"""Compliance reports, the schedule calendar and the podcast feed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse

from app.accounts.deps import ApproverUser, ViewerUser
from app.db import DbId, SessionDep
from app.errors import responses
from app.reports import calendar, formats, issue, pdf, podcast
from app.reports.period import FORMATS as REPORT_FORMATS
from app.reports.period import parse_format, parse_period
from app.reports.schemas import ComplianceReport, IssuedReportOut, IssueRequest
from app.urls import base_url, from_public_setting

router = APIRouter(prefix="/api/v1", tags=["reports"])

YEAR = r"^(20\d\d|2100)$"
MONTH = r"^(0?[1-9]|1[0-2]|(20\d\d|2100)-(0[1-9]|1[0-2]))$"
FORMATS = list(REPORT_FORMATS)
VIEWS = list(formats.VIEWS)

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


@router.get(
    "/reports/compliance",
    response_model=ComplianceReport,
    responses={
        200: {"content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()}},
        **responses(503),
    },
)
def compliance(
    session: SessionDep,
    user: ViewerUser,
    station_id: DbId,
    # Read by the service (its messages name the parameter); the schema says what it takes.
    year: Annotated[
        str | None,
        Query(description="local year, e.g. 2024", json_schema_extra={"pattern": YEAR}),
    ] = None,
    month: Annotated[
        str | None,
        Query(description='1 to 12, or "2024-03"', json_schema_extra={"pattern": MONTH}),
    ] = None,
    fmt: Annotated[
        str | None,
        Query(alias="format", description="|".join(FORMATS), json_schema_extra={"enum": FORMATS}),
    ] = None,
    view: Annotated[
        str | None,
        Query(description="CSV only: " + "|".join(VIEWS), json_schema_extra={"enum": VIEWS}),
    ] = None,
    issued_id: Annotated[
        DbId | None, Query(description="an issued copy, as it was issued (with its number)")
    ] = None,
) -> Any:
    """Planned versus aired for a local year or month, as JSON, CSV, XLSX or PDF.

    Never allocates a number: unissued, the number shows as "…/BC-UBND"; `issued_id`
    reads an issued copy, number and all.
    """
    period = issue.requested_period(year=year, month=month, issued_id=issued_id)
    chosen = parse_format(fmt)
    csv_view = formats.parse_view(view)
    report = issue.read_report(
        session, station_id=station_id, period=period, issued_id=issued_id, user=user
    )
    if chosen == "json":
        return report
    if chosen == "csv":
        body = formats.to_csv(report, view=csv_view)
    elif chosen == "xlsx":
        body = formats.to_xlsx(report)
    else:
        body = pdf.to_pdf(report)
    return Response(
        body,
        media_type=MEDIA_TYPES[chosen],
        headers={
            "Content-Disposition": formats.content_disposition(
                formats.report_filename(report, chosen)
            ),
            "Cache-Control": "private, no-store",
        },
    )


@router.post(
    "/reports/compliance/issue",
    response_model=IssuedReportOut,
    status_code=status.HTTP_201_CREATED,
)
def issue_compliance_report(
    session: SessionDep, user: ApproverUser, body: IssueRequest
) -> IssuedReportOut:
    """Record a numbered copy of the report: the number given, or the next in the register."""
    period = parse_period(
        year=str(body.year), month=None if body.month is None else str(body.month)
    )
    row = issue.issue_report(
        session, station_id=body.station_id, period=period, user=user, number=body.number
    )
    return IssuedReportOut.model_validate(row)


@router.get("/reports/compliance/issued", response_model=list[IssuedReportOut])
def list_issued_reports(
    session: SessionDep, user: ViewerUser, station_id: DbId
) -> list[IssuedReportOut]:
    """The station's register of issued reports, newest first."""
    return [
        IssuedReportOut.model_validate(r)
        for r in issue.list_issued(session, station_id=station_id, user=user)
    ]


@router.get("/stations/{station_id}/schedule.ics", response_class=Response)
def schedule_ics(
    session: SessionDep,
    user: ViewerUser,
    station_id: DbId,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Response:
    """The station's broadcasts as iCalendar; cancelled ones carry STATUS:CANCELLED."""
    station, body = calendar.schedule_calendar(session, station_id=station_id, user=user, year=year)
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


@router.get("/stations/{station_id}/podcast.xml", response_class=Response)
def podcast_feed(session: SessionDep, request: Request, station_id: DbId) -> Response:
    """RSS 2.0 feed of the aired CCHC columns, newest first. Public: no token needed."""
    body = podcast.podcast_feed(session, station_id=station_id, base_url=base_url(request))
    # Links from the request (no LOAXA_PUBLIC_BASE_URL): for this reader only, never kept
    # by a shared cache for the next one.
    cache = "public, max-age=300" if from_public_setting() else "private, max-age=300"
    return Response(
        body,
        media_type="application/rss+xml; charset=utf-8",
        headers={"Cache-Control": cache, "Vary": "Host"},
    )


EPISODE_PATH = "/stations/{station_id}/podcast/{broadcast_id}.mp3"
EPISODE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}}},
    206: {
        "description": "the part of the file a Range asked for",
        "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}},
    },
    416: {"description": "the Range lies outside the file"},
}


# HEAD too, as an operation of its own: podcast apps ask for the size before they download.
@router.head(
    EPISODE_PATH,
    response_class=FileResponse,
    responses=EPISODE_RESPONSES,
    operation_id="podcast_episode_head",
)
@router.get(
    EPISODE_PATH,
    response_class=FileResponse,
    responses=EPISODE_RESPONSES,
    operation_id="podcast_episode",
)
def podcast_episode(session: SessionDep, station_id: DbId, broadcast_id: DbId) -> FileResponse:
    """The master of an aired CCHC column (Range supported). Public: no token needed."""
    path, sha256 = podcast.episode_file(session, station_id=station_id, broadcast_id=broadcast_id)
    return FileResponse(
        path,
        media_type="audio/mpeg",
        filename=f"cchc-{station_id}-{broadcast_id}.mp3",
        content_disposition_type="inline",
        headers={"ETag": f'"{sha256}"', "Cache-Control": "public, max-age=86400"},
    )


LISTEN_EPISODE_PATH = "/stations/{station_id}/podcast/{broadcast_id}.m4a"
LISTEN_EPISODE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/mp4": {"schema": {"type": "string", "format": "binary"}}}},
    206: {
        "description": "the part of the file a Range asked for",
        "content": {"audio/mp4": {"schema": {"type": "string", "format": "binary"}}},
    },
    416: {"description": "the Range lies outside the file"},
}


@router.head(
    LISTEN_EPISODE_PATH,
    response_class=FileResponse,
    responses=LISTEN_EPISODE_RESPONSES,
    operation_id="podcast_episode_listen_head",
)
@router.get(
    LISTEN_EPISODE_PATH,
    response_class=FileResponse,
    responses=LISTEN_EPISODE_RESPONSES,
    operation_id="podcast_episode_listen",
)
def podcast_episode_listen(
    session: SessionDep, station_id: DbId, broadcast_id: DbId
) -> FileResponse:
    """The light listening copy (AAC in MP4) of an aired CCHC column, what the feed offers
    once it is made (Range supported). Public: no token needed."""
    path, sha256 = podcast.episode_listen_file(
        session, station_id=station_id, broadcast_id=broadcast_id
    )
    return FileResponse(
        path,
        media_type="audio/mp4",
        filename=f"cchc-{station_id}-{broadcast_id}.m4a",
        content_disposition_type="inline",
        headers={"ETag": f'"{sha256}"', "Cache-Control": "public, max-age=86400"},
    )
