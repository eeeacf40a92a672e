"""Each village's reach in an ``ip`` station: its own cluster's events, the month's rule
applied to it alone (see app.reports.service for the rules)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from app.playout.aired import MasterHistory
from app.reports.judging import Event, Outcome, judge, month_result
from app.reports.schemas import MonthResult, Network, VillageReach
from app.schedule.models import Broadcast
from app.stations.models import Station
from app.stations.network import network_on


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
                result=month_result(
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
