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

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.config import get_settings
from app.devices.models import Device
from app.playout.aired import master_histories
from app.reports.judging import (
    Outcome,
    count_outcomes,
    events_by_broadcast,
    expected_per_month,
    judge,
    month_result,
    pct,
)
from app.reports.live import live_rows
from app.reports.period import Period, parse_period
from app.reports.reach import (
    ip_month_result,
    month_reach,
    network_of,
    reach_text,
    station_network,
    village_outcomes,
    villages_in_service,
)
from app.reports.relays import relay_rows
from app.reports.schemas import (
    BroadcastLine,
    ComplianceReport,
    DocumentInfo,
    MonthRow,
    Network,
    StationRef,
    Summary,
    TopicCount,
    VillageMonth,
    VillageReach,
    VillageRow,
)
from app.reports.topics import topic_counts
from app.schedule.cadence import month_bounds_utc
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations import document
from app.stations import service as stations
from app.stations.models import Programme, Station, Village

__all__ = ["Period", "compliance_report", "document_info", "parse_period"]


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
    events = events_by_broadcast(session, broadcasts)
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
    village_programmes = [
        p for p in programmes.values() if p.scope == "village" and not p.is_relay
    ]
    village_rows = _village_rows(
        broadcasts, outcomes, programmes=village_programmes, villages=villages, months=months
    )
    relays = relay_rows(
        session,
        broadcasts=broadcasts,
        programmes=list(programmes.values()),
        events=events,
        months=months,
        now_due={
            b.id
            for b in broadcasts
            if b.starts_at + timedelta(milliseconds=programmes[b.programme_id].max_duration_ms)
            <= now
        },
        ip_villages={v.id: v.name for v in villages}
        if station_network(station, now.astimezone(tz).date()) == "ip"
        else {},
        min_percent=get_settings().relay_min_percent,
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
        relays=relays,
        live=live_rows(
            session,
            station_id=station.id,
            since=month_bounds_utc(months[0], tz)[0],
            until=month_bounds_utc(months[-1], tz)[1],
            tz=tz,
        ),
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
        counts = count_outcomes(outcomes[b.id] for b in items)
        start, end = month_bounds_utc(month, tz)
        closed = now >= end
        # The rule is data: the cadence says how many airings the month asks for.
        expected = expected_per_month(programme, month, tz)
        result = month_result(
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
                c = count_outcomes(items)
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
            total = count_outcomes(every)
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
                    coverage_pct=pct(total["aired"], due),
                    months=month_counts,
                )
            )
    return rows


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
        compliance_pct=pct(compliant, len(in_scope)),
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
        village_coverage_pct=pct(village_aired, village_due),
        segments_aired=sum(t.segments for t in topics.values()),
        segment_airings=sum(t.airings for t in topics.values()),
    )
