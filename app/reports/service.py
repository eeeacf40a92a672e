"""Compliance: what the programmes' rules asked for against what the as-run logs prove.

The rules, per broadcast (cancelled broadcasts are left out of every count):

* aired: a device that carries it (``app.playout.scope``) reported a ``played`` event for
  it (played to the end) of the master the broadcast had when the event began
  (``app.playout.aired``, the rule playout marks broadcasts aired by). Its airtime is
  ``ended_at - started_at`` of its longest such event: a replay or a second report counts
  once.
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

Reach per village (the CCHC column in an ``ip`` station, where every village cluster is a
device that plays the commune's programmes): a village is in service for a broadcast when
it had an active cluster device created before the broadcast began. Each village is judged
on its own cluster's events by the rules above, and the month's rule applies to it alone
(as many airings as the cadence asks, each inside the window). An ``ip`` month is compliant
when the month is, and every village in service is too; else its result is
``villages-missing`` (or the first village's own shortfall, e.g. ``too-short``). The kind is
the one the month's broadcasts were published under: past months keep the rule they aired
by. In an ``fm`` station the villages hear the station PC through the transmitter: its
airing counts, as it always did, and no village reach is reported.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.config import get_settings
from app.devices.models import Device
from app.errors import Invalid
from app.playout.aired import MasterHistory, is_aired, master_histories
from app.playout.models import AsRunEvent
from app.playout.scope import carries_broadcast
from app.reports.schemas import (
    BroadcastLine,
    BroadcastState,
    ComplianceReport,
    DocumentInfo,
    MonthResult,
    MonthRow,
    Network,
    StationRef,
    Summary,
    TopicCount,
    VillageMonth,
    VillageReach,
    VillageRow,
)
from app.schedule.cadence import month_bounds_utc, occurrences, parse_month
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.segments.models import Segment, Topic
from app.stations import document
from app.stations import service as stations
from app.stations.cadence import parse_cadence
from app.stations.models import Programme, Station, Village
from app.stations.network import network_on

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
    "villages-missing": "Chưa phát đủ các thôn",
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
    """What the as-run log says of one broadcast (on all its devices, or one village's)."""

    state: BroadcastState
    aired_ms: int = 0
    aired_at: datetime | None = None


class Event(NamedTuple):
    """One as-run event of a device that carries the broadcast."""

    status: str
    started_at: datetime
    ended_at: datetime
    sha256: str
    village_id: int | None  # the reporting device's village; None: the station's PC


def _ms(delta: timedelta) -> int:
    return max(0, delta // timedelta(milliseconds=1))


def judge(
    broadcast: Broadcast,
    events: Iterable[Event],
    *,
    history: MasterHistory,
    now: datetime,
    grace: timedelta,
) -> Outcome:
    """The broadcast's state from the events of devices that carry it."""
    events = list(events)
    played = [
        (_ms(e.ended_at - e.started_at), e.started_at)
        for e in events
        if is_aired(e.status, e.sha256, e.started_at, history)
    ]
    if played:
        aired_ms, aired_at = max(played, key=lambda p: (p[0], p[1]))
        return Outcome("aired", aired_ms, aired_at)
    if any(e.status == "interrupted" for e in events):
        return Outcome("interrupted")
    if broadcast.status == BroadcastStatus.missed.value or broadcast.starts_at + grace <= now:
        return Outcome("missed")
    return Outcome("pending")


def _events_by_broadcast(
    session: Session, broadcasts: Sequence[Broadcast]
) -> dict[int, list[Event]]:
    """Each broadcast's events, only from the devices that carry it (scope.carries_broadcast)."""
    if not broadcasts:
        return {}
    rows = session.execute(
        select(
            AsRunEvent.broadcast_id,
            AsRunEvent.status,
            AsRunEvent.started_at,
            AsRunEvent.ended_at,
            AsRunEvent.sha256,
            Device.village_id,
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
    out: dict[int, list[Event]] = defaultdict(list)
    for broadcast_id, *event in rows:
        out[broadcast_id].append(Event(*event))
    return out


def network_of(broadcast: Broadcast) -> Network:
    """The network kind the broadcast was published under (it says who carries it)."""
    return "ip" if broadcast.network == "ip" else "fm"


def station_network(station: Station, day: date) -> Network:
    """The station's kind on a local day (for a month with no broadcast to say it)."""
    return "ip" if network_on(station, day) == "ip" else "fm"


def villages_in_service(clusters: Sequence[tuple[int, datetime]], starts_at: datetime) -> set[int]:
    """Villages with an active cluster device created before `starts_at`.

    `clusters` are the (village_id, created_at) of the station's active village devices.
    """
    return {village for village, created in clusters if created < starts_at}


def village_outcomes(
    broadcast: Broadcast,
    events: Sequence[Event],
    *,
    villages: Iterable[int],
    history: MasterHistory,
    now: datetime,
    grace: timedelta,
) -> dict[int, Outcome]:
    """Each village's outcome of a commune broadcast: judged on its own cluster's events."""
    return {
        v: judge(
            broadcast,
            [e for e in events if e.village_id == v],
            history=history,
            now=now,
            grace=grace,
        )
        for v in villages
    }


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


def month_reach(
    items: Sequence[Broadcast],
    outcomes: dict[int, dict[int, Outcome]],
    *,
    names: dict[int, str],
    expected: int,
    window: tuple[int, int],
    closed: bool,
    in_service_without_broadcast: Iterable[int] = (),
) -> list[VillageReach]:
    """Each village in service in a month, with the month's rule applied to it alone.

    `outcomes` holds, per broadcast, the outcome of each village in service for it; a
    month with no broadcast has its villages in `in_service_without_broadcast` (none aired).
    """
    villages = {v for b in items for v in outcomes.get(b.id, {})}
    if not items:
        villages = set(in_service_without_broadcast)
    rows = []
    for v in sorted(villages, key=lambda v: (names.get(v, ""), v)):
        mine = [outcomes[b.id][v] for b in items if v in outcomes.get(b.id, {})]
        aired = [o for o in mine if o.state == "aired"]
        rows.append(
            VillageReach(
                id=v,
                name=names.get(v, str(v)),
                aired=len(aired),
                aired_ms=sum(o.aired_ms for o in aired),
                result=_month_result(
                    aired=aired,
                    expected=expected,
                    window=window,
                    interrupted=sum(1 for o in mine if o.state == "interrupted"),
                    missed=sum(1 for o in mine if o.state == "missed"),
                    closed=closed,
                ),
            )
        )
    return rows


def ip_month_result(month: MonthResult, reach: Sequence[VillageReach]) -> MonthResult:
    """An ip month: compliant when the month is and every village in service is too."""
    if month != "compliant":
        return month
    results = [r.result for r in reach]
    if all(r == "compliant" for r in results):
        return "compliant"
    if any(r in ("not-aired", "interrupted") for r in results):
        return "villages-missing"
    if "pending" in results:
        return "pending"
    return next(r for r in results if r != "compliant")


def reach_text(
    aired: Sequence[VillageReach],
    in_service: Sequence[VillageReach],
    missing: Sequence[VillageReach],
) -> str:
    """ "aired in 7 of 8 villages; not in Thôn 3"."""
    text = f"aired in {len(aired)} of {len(in_service)} villages"
    if missing:
        text += "; not in " + ", ".join(v.name for v in missing)
    return text


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
    """The compliance report of a station for a local year or month (404 for others' staff).

    Never numbered: `document.number` holds the pattern with "…" (issue.py numbers copies).
    """
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
    histories = master_histories(
        session, [bid for bid, evs in events.items() if any(e.status == "played" for e in evs)]
    )
    outcomes = {
        b.id: judge(b, events.get(b.id, ()), history=histories[b.id], now=now, grace=grace)
        for b in broadcasts
    }
    villages = list(
        session.scalars(
            select(Village).where(Village.station_id == station.id).order_by(Village.id)
        )
    )
    clusters = [
        (village_id, created_at)
        for village_id, created_at in session.execute(
            select(Device.village_id, Device.created_at).where(
                Device.station_id == station.id,
                Device.village_id.is_not(None),
                Device.is_active.is_(True),
            )
        )
        if village_id is not None
    ]
    reach: dict[int, dict[int, Outcome]] = {
        b.id: village_outcomes(
            b,
            events.get(b.id, []),
            villages=villages_in_service(clusters, b.starts_at),
            history=histories[b.id],
            now=now,
            grace=grace,
        )
        for b in broadcasts
        if b.programme_id == cchc.id and b.village_id is None and network_of(b) == "ip"
    }
    month_rows = _cchc_months(
        broadcasts,
        outcomes,
        programme=cchc,
        months=months,
        tz=tz,
        now=now,
        reach=reach,
        station=station,
        clusters=clusters,
        names={v.id: v.name for v in villages},
    )
    village_programmes = [p for p in programmes.values() if p.scope == "village"]
    village_rows = _village_rows(
        broadcasts, outcomes, programmes=village_programmes, villages=villages, months=months
    )
    aired_ids = [b.id for b in broadcasts if outcomes[b.id].state == "aired"]
    topics = topic_counts(session, broadcast_ids=aired_ids)
    summary = _summary(cchc, month_rows, village_rows, topics)
    return ComplianceReport(
        station=StationRef(
            id=station.id,
            name=station.name,
            timezone=station.timezone,
            network=station_network(station, now.astimezone(tz).date()),
        ),
        document=document_info(station, year=now.astimezone(tz).year),
        year=period.year,
        month=period.month_key,
        generated_at=now.astimezone(tz),
        months=month_rows,
        villages=village_rows,
        topics=topics,
        summary=summary,
    )


def document_info(station: Station, *, year: int) -> DocumentInfo:
    """The station's document settings, unnumbered (a number comes only from issuing)."""
    pattern = station.report_number_pattern or document.DEFAULT_NUMBER_PATTERN
    title = station.report_signer_title or document.DEFAULT_SIGNER_TITLE
    return DocumentInfo(
        number=document.unnumbered(pattern, year=year),
        number_pattern=pattern,
        signer_name=station.report_signer_name,
        signer_title=title,
        signs_for=document.signs_for(title),
        recipients=list(station.report_recipients or document.DEFAULT_RECIPIENTS),
    )


def _cchc_months(
    broadcasts: Sequence[Broadcast],
    outcomes: dict[int, Outcome],
    *,
    programme: Programme,
    months: Sequence[str],
    tz: ZoneInfo,
    now: datetime,
    reach: dict[int, dict[int, Outcome]],
    station: Station,
    clusters: Sequence[tuple[int, datetime]],
    names: dict[int, str],
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
        start, end = month_bounds_utc(month, tz)
        closed = now >= end
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
        if items:
            network: Network = "ip" if any(network_of(b) == "ip" for b in items) else "fm"
        else:
            network = station_network(station, start.astimezone(tz).date())
        in_service: list[VillageReach] = []
        aired_in: list[VillageReach] = []
        missing: list[VillageReach] = []
        text = None
        if network == "ip":
            in_service = month_reach(
                [b for b in items if b.id in reach],
                reach,
                names=names,
                expected=expected,
                window=window,
                closed=closed,
                # No broadcast: the villages that had a cluster by the month's end missed it.
                in_service_without_broadcast=villages_in_service(clusters, min(end, now)),
            )
            aired_in = [v for v in in_service if v.aired]
            missing = [v for v in in_service if not v.aired and v.result != "pending"]
            result = ip_month_result(result, in_service)
            text = reach_text(aired_in, in_service, missing)
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
                network=network,
                villages_in_service=in_service,
                villages_aired=aired_in,
                villages_missing=missing,
                reach=text,
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
