"""A station's network kind through time (DESIGN.md "Loudspeaker networks").

The rules:

* A station has one kind (``ip`` or ``fm``) on each of its local days: the row of
  ``station_networks`` with the latest ``effective_from`` on or before that day
  (`network_on`). A new station's first row starts at ``date.min``; a station with no row
  at all (written behind the services' back, or before networks existed) is ``fm``, which
  was the only behaviour then.
* A change applies from the station's NEXT local day on, never today: no device's playlist
  changes in the middle of its day. Asking twice on one day keeps only the last answer.
* Each broadcast records the kind of its own local day (``broadcasts.network``), and that
  record, not the station's current kind, says who carries it (app.playout.scope). A change
  restamps the station's broadcasts from the change's day on (app.schedule.network, since
  broadcasts are the schedule's); earlier ones keep the kind they aired by, so past months
  keep their rule.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app import clock
from app.accounts.models import User
from app.stations.models import Network, Station, StationNetwork

# (effective_from, network) pairs, oldest first.
History = tuple[tuple[date, str], ...]

# Before any row: the behaviour that existed before networks did.
LEGACY = Network.fm.value


def network_at(history: Sequence[tuple[date, str]], local_day: date) -> str:
    """The kind in force on a local day, given a station's history (oldest first)."""
    i = bisect.bisect_right(history, local_day, key=lambda row: row[0])
    return history[i - 1][1] if i else LEGACY


def history_of(station: Station) -> History:
    """The station's (effective_from, network) history, oldest first."""
    return tuple((row.effective_from, row.network) for row in station.networks)


def network_on(station: Station, local_day: date) -> str:
    """The station's network kind on one of its local days: the one rule everything asks."""
    return network_at(history_of(station), local_day)


def local_today(station: Station, now: datetime | None = None) -> date:
    """The station's local date now."""
    return (now or clock.now()).astimezone(ZoneInfo(station.timezone)).date()


def local_midnight(station: Station, day: date) -> datetime:
    """The UTC instant at which the station's local day begins."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(station.timezone)).astimezone(UTC)


def network_for(station: Station, starts_at: datetime) -> str:
    """The kind a broadcast starting at `starts_at` is published under (its local day's)."""
    return network_on(station, starts_at.astimezone(ZoneInfo(station.timezone)).date())


@dataclass(frozen=True)
class NetworkState:
    """What a station's kind is today, and the change waiting for a later day, if any."""

    today: str
    pending: str | None = None
    pending_from: date | None = None


def network_state(station: Station, now: datetime | None = None) -> NetworkState:
    """The kind in force today and the pending change (what the API shows)."""
    today = local_today(station, now)
    history = history_of(station)
    later = [(start, kind) for start, kind in history if start > today]
    current = network_at(history, today)
    if later and later[-1][1] != current:
        return NetworkState(current, later[-1][1], later[-1][0])
    return NetworkState(current)


def start_network(station: Station, network: Network, *, actor: User | None = None) -> None:
    """Give a new station its first kind, from the beginning of time."""
    station.networks.append(
        StationNetwork(
            effective_from=date.min,
            network=network.value,
            created_by_id=actor.id if actor else None,
        )
    )


def change_history(
    station: Station, network: Network, *, actor: User | None = None, now: datetime
) -> date:
    """Make `network` the station's kind from its next local day on; that day.

    Only the history: the broadcasts of those days are restamped by the caller
    (app.schedule.network.set_network), as stations know nothing of broadcasts.
    A change asked for earlier today (or, with a clock set back, for later) is replaced.
    """
    tomorrow = local_today(station, now) + timedelta(days=1)
    for row in [r for r in station.networks if r.effective_from >= tomorrow]:
        station.networks.remove(row)
    if network_on(station, tomorrow) != network.value:
        station.networks.append(
            StationNetwork(
                effective_from=tomorrow,
                network=network.value,
                created_by_id=actor.id if actor else None,
                created_at=now,
            )
        )
    return tomorrow


def snapshot(state: NetworkState) -> dict[str, str | None]:
    """The state as the audit log keeps it."""
    return {
        "network": state.today,
        "pending": state.pending,
        "pending_from": state.pending_from.isoformat() if state.pending_from else None,
    }
