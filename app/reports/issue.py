"""Issuing a report: a numbered copy in the station's register, kept as it was issued.

The rules:

* Issuing is its own act (``POST /reports/compliance/issue``, approver). Reading a report
  (``GET /reports/compliance``) never allocates a number: it shows the pattern with "…".
* The number is the one given, or the next in the station's register of the year of issue
  (its local year; Decree 30 numbers from 01 each calendar year): the highest so far + 1.
  A number already in that register is a 409.
* Two concurrent issues never get the same number: (station, register year, number) is
  unique in the database; an allocated number that lost the race is taken again from the
  register, a few times, before giving up with a 409.
* The copy keeps the report's JSON as issued (figures, signer, recipients, number) and its
  sha256; reading it back (``?issued_id=``) renders that copy, not today's figures.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.db import add_unique
from app.errors import Conflict, Invalid, NotFound
from app.reports.models import IssuedReport
from app.reports.period import Period, parse_period
from app.reports.schemas import ComplianceReport, IssueRef
from app.reports.service import compliance_report
from app.stations import document
from app.stations import service as stations

ATTEMPTS = 5


def snapshot_sha256(report: dict[str, Any]) -> str:
    """The sha256 of a report's JSON in one canonical form (sorted keys, UTF-8)."""
    text = json.dumps(report, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def next_number(session: Session, *, station_id: int, register_year: int) -> int:
    """The next number of the station's register of that year (1 for an empty register)."""
    highest = session.scalar(
        select(func.max(IssuedReport.number)).where(
            IssuedReport.station_id == station_id, IssuedReport.register_year == register_year
        )
    )
    return (highest or 0) + 1


def issue_report(
    session: Session,
    *,
    station_id: int,
    period: Period,
    user: User,
    number: int | None = None,
    now: datetime | None = None,
) -> IssuedReport:
    """Record a numbered copy of the station's report for the period (see the module rules)."""
    now = now or clock.now()
    report = compliance_report(session, station_id=station_id, period=period, user=user, now=now)
    station = stations.get_station(session, station_id, user=user)
    register_year = now.astimezone(ZoneInfo(station.timezone)).year
    pattern = report.document.number_pattern
    for _ in range(ATTEMPTS):
        n = (
            number
            if number is not None
            else next_number(session, station_id=station.id, register_year=register_year)
        )
        row = IssuedReport(
            station_id=station.id,
            register_year=register_year,
            number=n,
            document_number=document.document_number(pattern, number=n, year=register_year),
            year=period.year,
            month=period.month_key,
            issued_by_id=user.id,
            issued_by=user.username,
            issued_at=now,
            report={},
            sha256="",
        )
        if add_unique(session, row):
            break
        if number is not None:
            raise Conflict(
                f"number: {n} is already in station {station.id}'s register of {register_year} "
                f"({row.document_number}); leave it out to take the next one"
            )
    else:
        raise Conflict("number: the register kept changing while issuing; try again")
    report.document.number = row.document_number
    report.document.issued = IssueRef(
        id=row.id,
        number=row.number,
        register_year=register_year,
        issued_at=now.astimezone(ZoneInfo(station.timezone)),
        issued_by=row.issued_by,
    )
    row.report = report.model_dump(mode="json")
    row.sha256 = snapshot_sha256(row.report)
    session.flush()
    return row


def requested_period(
    *, year: str | None, month: str | None, issued_id: int | None
) -> Period | None:
    """The period asked for; None for an issued copy read without one (it has its own)."""
    if issued_id is not None and not (year or "").strip() and not (month or "").strip():
        return None
    return parse_period(year=year, month=month)


def read_report(
    session: Session,
    *,
    station_id: int,
    period: Period | None,
    issued_id: int | None,
    user: User | None = None,
) -> ComplianceReport:
    """Today's report of the period, or an issued copy as it was issued (404 when the copy
    is not the station's; 422 when the period given is not the copy's)."""
    if issued_id is None:
        assert period is not None  # requested_period gives one without issued_id
        return compliance_report(session, station_id=station_id, period=period, user=user)
    stations.get_station(session, station_id, user=user)
    row = session.get(IssuedReport, issued_id)
    if row is None or row.station_id != station_id:
        raise NotFound(f"issued report {issued_id} does not exist in station {station_id}")
    if period is not None and (
        period.year != row.year or (period.month_key and period.month_key != row.month)
    ):
        raise Invalid(
            f"year: issued report {issued_id} is for {row.month or row.year}; "
            "leave year and month out to read it"
        )
    return ComplianceReport.model_validate(row.report)


def list_issued(session: Session, *, station_id: int, user: User) -> list[IssuedReport]:
    """The station's register of issued reports, newest first."""
    stations.get_station(session, station_id, user=user)
    return list(
        session.scalars(
            select(IssuedReport)
            .where(IssuedReport.station_id == station_id)
            .order_by(IssuedReport.issued_at.desc(), IssuedReport.id.desc())
        )
    )
