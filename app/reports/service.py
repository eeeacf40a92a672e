"""Compliance: what the programmes' rules asked for against what the as-run logs prove.

The rules, per broadcast (cancelled broadcasts are left out of every count):

* aired: a device that carries it (``app.playout.scope``: the station's programmes on the
  station PC, a village broadcast on that village's PC) reported a ``played`` event for it
  (played to the end). Its airtime is ``ended_at - started_at`` of its longest played
  event: a replay or a second report counts once.
* interrupted: not aired, but at least one ``interrupted`` event (it went on air and was cut,
  say by an emergency); ``failed`` events beside it do not change that.
* missed: not aired, not interrupted, and either its status is ``missed`` or its slot is
  more than ``missed_grace_minutes`` in the past. A ``failed`` event alone is a miss.
* pending: none of these yet (its slot is still to come).

So planned = aired + interrupted + missed + pending, for each month and each village.

A month is compliant when exactly as many broadcasts aired in it as the programme's cadence
asks (one for the monthly CCHC column) and each airing's duration is inside the programme's
window, both ends allowed. Months in scope for the summary are those that are over, plus
the current month once something aired in it (a month still running is not failed for what
it may yet do).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.config import get_settings
from app.devices.models import Device
from app.errors import Invalid
from app.playout.models import AsRunEvent
from app.playout.scope import carries_broadcast
from app.reports.schemas import (
    BroadcastLine,
    BroadcastState,
    ComplianceReport,
    MonthResult,
    MonthRow,
    StationRef,
    Summary,
    TopicCount,
    VillageMonth,
    VillageRow,
)
from app.schedule.cadence import month_bounds_utc, occurrences, parse_month
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.segments.models import Segment, Topic
from app.stations import service as stations
from app.stations.cadence import parse_cadence
from app.stations.models import Programme, Village

FORMATS = ("json", "csv", "xlsx", "pdf")
MIN_YEAR, MAX_YEAR = 2000, 2100

# The plan's own words for each topic (sections 2.2 to 2.4).
TOPIC_LABELS: dict[str, str] = {
    Topic.progress: "Tình hình, kết quả thực hiện CCHC",
    Topic.discipline: "Kỷ luật, kỷ cương hành chính",
    Topic.commendation: "Biểu dương điển hình làm tốt",
    Topic.criticism: "Phê bình, rút kinh nghiệm",
    Topic.negative_conduct: "Tiêu cực, nhũng nhiễu, phiền hà",
    Topic.citizen_feedback: "Phản ánh, kiến nghị của người dân",
    Topic.policy: "Chủ trương, chính sách, pháp luật về CCHC",
    Topic.one_stop_desk: "Bộ phận tiếp nhận và trả kết quả",
    Topic.procedures: "Thủ tục hành chính",
    Topic.disclosure: "Nội dung công khai với nhân dân",
    Topic.indices: "Chỉ số PAR INDEX, PAPI, SIPAS, PCI",
    Topic.emergency: "Thiên tai, dịch bệnh (khẩn cấp)",
    Topic.other: "Nội dung khác",
}

RESULT_LABELS: dict[str, str] = {
    "compliant": "Đạt",
    "not-aired": "Không phát",
    "interrupted": "Bị ngắt",
    "too-short": "Thiếu thời lượng",
    "too-long": "Vượt thời lượng",
    "aired-too-often": "Phát quá số lần",
    "too-few": "Phát chưa đủ số lần",
    "pending": "Chưa đến hạn",
}


@dataclass(frozen=True)
class Period:
    """A local year, or one month of it."""

    year: int
    month: int | None = None

    @property
    def months(self) -> list[str]:
        """The "YYYY-MM" keys the period covers."""
        numbers = [self.month] if self.month else range(1, 13)
        return [f"{self.year:04d}-{m:02d}" for m in numbers]

    @property
    def month_key(self) -> str | None:
        return f"{self.year:04d}-{self.month:02d}" if self.month else None


def parse_period(*, year: str | None, month: str | None) -> Period:
    """Read the `year` and `month` query values ("3", "03" or "2024-03"); 422 naming the bad one."""
    parsed_year: int | None = None
    if year is not None and year.strip() != "":
        text = year.strip()
        if not text.isdigit() or not MIN_YEAR <= int(text) <= MAX_YEAR:
            raise Invalid(f"year: must be a year from {MIN_YEAR} to {MAX_YEAR}, not {year!r}")
        parsed_year = int(text)
    if month is None or month.strip() == "":
        if parsed_year is None:
            raise Invalid("year: required, e.g. year=2024")
        return Period(parsed_year)
    text = month.strip()
    month_year: int | None = None
    if len(text) == 7 and text[4] == "-" and text[:4].isdigit():
        month_year, text = int(text[:4]), text[5:]
    if not text.isdigit() or not 1 <= int(text) <= 12:
        raise Invalid(f"month: must be 1 to 12 or YYYY-MM, not {month!r}")
    if month_year is not None:
        if parsed_year is not None and parsed_year != month_year:
            raise Invalid(f"month: {month!r} is not in year {parsed_year}")
        if not MIN_YEAR <= month_year <= MAX_YEAR:
            raise Invalid(f"month: the year must be from {MIN_YEAR} to {MAX_YEAR}, not {month!r}")
        parsed_year = month_year
    if parsed_year is None:
        raise Invalid("year: required with a month number, e.g. year=2024&month=3")
    return Period(parsed_year, int(text))


def parse_format(value: str | None) -> str:
    """The report format; 422 naming the ones there are."""
    fmt = (value or "json").strip().lower()
    if fmt not in FORMATS:
        raise Invalid(f"format: must be one of {', '.join(FORMATS)}, not {value!r}")
    return fmt


@dataclass(frozen=True)
class Outcome:
    """What the as-run log says of one broadcast."""

    state: BroadcastState
    aired_ms: int = 0
    aired_at: datetime | None = None


def _ms(delta: timedelta) -> int:
    return max(0, delta // timedelta(milliseconds=1))


def judge(
    broadcast: Broadcast,
    events: Iterable[tuple[str, datetime, datetime]],
    *,
    now: datetime,
    grace: timedelta,
) -> Outcome:
    """The broadcast's state from its (status, started_at, ended_at) events of the right devices."""
    played = [(_ms(end - start), start) for status, start, end in events if status == "played"]
    if played:
        aired_ms, aired_at = max(played, key=lambda p: (p[0], p[1]))
        return Outcome("aired", aired_ms, aired_at)
    statuses = {status for status, _start, _end in events}
    if "interrupted" in statuses:
        return Outcome("interrupted")
    if broadcast.status == BroadcastStatus.missed.value or broadcast.starts_at + grace <= now:
        return Outcome("missed")
    return Outcome("pending")


def _events_by_broadcast(
    session: Session, broadcasts: Sequence[Broadcast]
) -> dict[int, list[tuple[str, datetime, datetime]]]:
    """Each broadcast's events, only from the devices that carry it (scope.carries_broadcast)."""
    if not broadcasts:
        return {}
    rows = session.execute(
        select(
            AsRunEvent.broadcast_id,
            AsRunEvent.status,
            AsRunEvent.started_at,
            AsRunEvent.ended_at,
        )
        .join(Device, Device.id == AsRunEvent.device_id)
        .join(
            Broadcast,
            and_(
                Broadcast.id == AsRunEvent.broadcast_id,
                carries_broadcast(Device.station_id, Device.village_id),
            ),
        )
        .where(AsRunEvent.broadcast_id.in_([b.id for b in broadcasts]))
    )
    out: dict[int, list[tuple[str, datetime, datetime]]] = defaultdict(list)
    for broadcast_id, status, started_at, ended_at in rows:
        out[broadcast_id].append((status, started_at, ended_at))
    return out


def _month_result(
    *,
    aired: Sequence[Outcome],
    expected: int,
    window: tuple[int, int],
    interrupted: int,
    missed: int,
    closed: bool,
) -> MonthResult:
    if not aired:
        if interrupted:
            return "interrupted"
        return "not-aired" if closed or missed else "pending"
    if len(aired) > expected:
        return "aired-too-often"
    if any(o.aired_ms < window[0] for o in aired):
        return "too-short"
    if any(o.aired_ms > window[1] for o in aired):
        return "too-long"
    if len(aired) < expected:
        return "too-few" if closed else "pending"
    return "compliant"


def expected_per_month(programme: Programme, month: str, tz: ZoneInfo) -> int:
    """Airings the programme's cadence asks for in a local month (1 for the monthly column)."""
    year, mon = parse_month(month)
    try:
        cadence = parse_cadence(programme.cadence)
    except ValueError:
        return 1
    last = calendar.monthrange(year, mon)[1]
    return len(occurrences(cadence, start=date(year, mon, 1), end=date(year, mon, last), tz=tz))


def _pct(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def _count(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts = {"aired": 0, "interrupted": 0, "missed": 0, "pending": 0, "aired_ms": 0}
    for o in outcomes:
        counts[o.state] += 1
        counts["aired_ms"] += o.aired_ms
    return counts


def station_programme(session: Session, *, station_id: int) -> Programme:
    """The station's CCHC column (the programme the monthly rule is about)."""
    return stations.get_programme(session, station_id=station_id, code=stations.CCHC)


def compliance_report(
    session: Session,
    *,
    station_id: int,
    period: Period,
    user: User | None = None,
    now: datetime | None = None,
) -> ComplianceReport:
    """The compliance report of a station for a local year or month (404 for others' staff)."""
    station = stations.get_station(session, station_id, user=user)
    tz = ZoneInfo(station.timezone)
    now = now or clock.now()
    grace = timedelta(minutes=get_settings().missed_grace_minutes)
    cchc = station_programme(session, station_id=station.id)
    programmes = {p.id: p for p in stations.list_programmes(session, station_id=station.id)}
    months = period.months
    broadcasts = list(
        session.scalars(
            select(Broadcast)
            .where(
                Broadcast.station_id == station.id,
                Broadcast.local_month.in_(months),
                Broadcast.status != BroadcastStatus.cancelled.value,
            )
            .order_by(Broadcast.starts_at, Broadcast.id)
        )
    )
    events = _events_by_broadcast(session, broadcasts)
    outcomes = {b.id: judge(b, events.get(b.id, ()), now=now, grace=grace) for b in broadcasts}
    month_rows = _cchc_months(broadcasts, outcomes, programme=cchc, months=months, tz=tz, now=now)
    village_programmes = [p for p in programmes.values() if p.scope == "village"]
    villages = list(
        session.scalars(
            select(Village).where(Village.station_id == station.id).order_by(Village.id)
        )
    )
    village_rows = _village_rows(
        broadcasts, outcomes, programmes=village_programmes, villages=villages, months=months
    )
    aired_ids = [b.id for b in broadcasts if outcomes[b.id].state == "aired"]
    topics = topic_counts(session, broadcast_ids=aired_ids)
    summary = _summary(cchc, month_rows, village_rows, topics)
    return ComplianceReport(
        station=StationRef(id=station.id, name=station.name, timezone=station.timezone),
        year=period.year,
        month=period.month_key,
        generated_at=now.astimezone(tz),
        months=month_rows,
        villages=village_rows,
        topics=topics,
        summary=summary,
    )


def _cchc_months(
    broadcasts: Sequence[Broadcast],
    outcomes: dict[int, Outcome],
    *,
    programme: Programme,
    months: Sequence[str],
    tz: ZoneInfo,
    now: datetime,
) -> list[MonthRow]:
    window = (programme.min_duration_ms, programme.max_duration_ms)
    by_month: dict[str, list[Broadcast]] = defaultdict(list)
    for b in broadcasts:
        if b.programme_id == programme.id:
            by_month[b.local_month].append(b)
    rows = []
    for month in months:
        items = by_month.get(month, [])
        counts = _count(outcomes[b.id] for b in items)
        closed = now >= month_bounds_utc(month, tz)[1]
        # The rule is data: the cadence says how many airings the month asks for.
        expected = expected_per_month(programme, month, tz)
        result = _month_result(
            aired=[outcomes[b.id] for b in items if outcomes[b.id].state == "aired"],
            expected=expected,
            window=window,
            interrupted=counts["interrupted"],
            missed=counts["missed"],
            closed=closed,
        )
        rows.append(
            MonthRow(
                month=month,
                programme=programme.code,
                planned=len(items),
                aired=counts["aired"],
                aired_ms=counts["aired_ms"],
                compliant=result == "compliant",
                interrupted=counts["interrupted"],
                missed=counts["missed"],
                pending=counts["pending"],
                window_ms=window,
                expected=expected,
                closed=closed,
                in_scope=closed or counts["aired"] > 0,
                result=result,
                broadcasts=[
                    BroadcastLine(
                        id=b.id,
                        starts_at=b.starts_at.astimezone(tz),
                        state=outcomes[b.id].state,
                        aired_at=_local(outcomes[b.id].aired_at, tz),
                        aired_ms=outcomes[b.id].aired_ms,
                    )
                    for b in items
                ],
            )
        )
    return rows


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    return value.astimezone(tz) if value is not None else None


def _village_rows(
    broadcasts: Sequence[Broadcast],
    outcomes: dict[int, Outcome],
    *,
    programmes: Sequence[Programme],
    villages: Sequence[Village],
    months: Sequence[str],
) -> list[VillageRow]:
    cells: dict[tuple[int, int, str], list[Outcome]] = defaultdict(list)
    for b in broadcasts:
        if b.village_id is not None:
            cells[(b.programme_id, b.village_id, b.local_month)].append(outcomes[b.id])
    rows = []
    for programme in programmes:
        for village in villages:
            month_counts = []
            for month in months:
                items = cells.get((programme.id, village.id, month), [])
                c = _count(items)
                month_counts.append(
                    VillageMonth(
                        month=month,
                        planned=len(items),
                        aired=c["aired"],
                        interrupted=c["interrupted"],
                        missed=c["missed"],
                        pending=c["pending"],
                    )
                )
            every = [o for m in months for o in cells.get((programme.id, village.id, m), [])]
            total = _count(every)
            due = len(every) - total["pending"]
            rows.append(
                VillageRow(
                    village_id=village.id,
                    village=village.name,
                    programme=programme.code,
                    planned=len(every),
                    due=due,
                    aired=total["aired"],
                    interrupted=total["interrupted"],
                    missed=total["missed"],
                    pending=total["pending"],
                    aired_ms=total["aired_ms"],
                    coverage_pct=_pct(total["aired"], due),
                    months=month_counts,
                )
            )
    return rows


def topic_counts(session: Session, *, broadcast_ids: Sequence[int]) -> dict[str, TopicCount]:
    """Segments of the given (aired) broadcasts' rundowns by topic: every topic, zeros too."""
    airings: dict[str, int] = defaultdict(int)
    distinct: dict[str, set[int]] = defaultdict(set)
    if broadcast_ids:
        rows = session.execute(
            select(Segment.topic, Segment.id)
            .join(RundownItem, RundownItem.segment_id == Segment.id)
            .where(RundownItem.broadcast_id.in_(list(broadcast_ids)))
        )
        for topic, segment_id in rows:
            airings[topic] += 1
            distinct[topic].add(segment_id)
    codes = [t.value for t in Topic] + sorted(set(airings) - {t.value for t in Topic})
    return {
        code: TopicCount(
            label=TOPIC_LABELS.get(code, code),
            segments=len(distinct.get(code, ())),
            airings=airings.get(code, 0),
        )
        for code in codes
    }


def _summary(
    programme: Programme,
    months: Sequence[MonthRow],
    villages: Sequence[VillageRow],
    topics: dict[str, TopicCount],
) -> Summary:
    in_scope = [m for m in months if m.in_scope]
    compliant = sum(1 for m in in_scope if m.compliant)
    airtime = sum(m.aired_ms for m in months)
    village_due = sum(v.due for v in villages)
    village_aired = sum(v.aired for v in villages)
    return Summary(
        programme=programme.code,
        programme_name=programme.name,
        window_ms=(programme.min_duration_ms, programme.max_duration_ms),
        months_in_scope=len(in_scope),
        months_compliant=compliant,
        compliance_pct=_pct(compliant, len(in_scope)),
        planned=sum(m.planned for m in months),
        aired=sum(m.aired for m in months),
        interrupted=sum(m.interrupted for m in months),
        missed=sum(m.missed for m in months),
        pending=sum(m.pending for m in months),
        cchc_airtime_ms=airtime,
        cchc_airtime_minutes=round(airtime / 60_000, 2),
        village_planned=sum(v.planned for v in villages),
        village_due=village_due,
        village_aired=village_aired,
        village_coverage_pct=_pct(village_aired, village_due),
        segments_aired=sum(t.segments for t in topics.values()),
        segment_airings=sum(t.airings for t in topics.values()),
    )

