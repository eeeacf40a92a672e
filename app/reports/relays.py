"""Relay programmes in the report: each month's slots planned and relayed, minutes heard.

The rules (app.playout.aired.is_relayed, one with as-run intake):

* a device heard a slot for the sum of `relayed_ms` of its events of that slot (an
  emergency splits a relay into parts), failed events left out;
* a slot is relayed when a device that carries it heard it for at least
  LOAXA_RELAY_MIN_PERCENT (90 %) of its window; its minutes are the best device's;
* dropouts are that device's (count and total);
* in an ``ip`` station each village's cluster is counted on its own (relayed slots,
  minutes, dropouts), as for the CCHC column's reach;
* a slot not relayed whose window is over says why when the hub knew (the upstream
  never answered, app.streams.hub) or when its devices said (their as-run note).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.playout.aired import is_relayed
from app.reports.judging import Event
from app.reports.schemas import RelayRow, RelayVillage
from app.schedule.models import Broadcast
from app.stations.models import Programme
from app.streams.models import RelaySlot


@dataclass(frozen=True)
class Heard:
    """What one device heard of one slot."""

    relayed_ms: int = 0
    dropouts: int = 0
    dropout_ms: int = 0


def heard_by_device(events: Sequence[Event]) -> dict[int, Heard]:
    """Each device's total for one slot, its failed events left out."""
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        if e.sha256 is not None:
            continue
        if e.status == "failed":
            continue
        t = totals[e.device_id]
        t[0] += e.relayed_ms or 0
        t[1] += e.dropout_count or 0
        t[2] += e.dropout_ms or 0
    return {d: Heard(*t) for d, t in totals.items()}


def relay_rows(
    session: Session,
    *,
    broadcasts: Sequence[Broadcast],
    programmes: Sequence[Programme],
    events: dict[int, list[Event]],
    months: Sequence[str],
    now_due: set[int],
    ip_villages: dict[int, str],
    min_percent: float,
) -> list[RelayRow]:
    """The relay rows of the report (see the module's docstring)."""
    relays = [p for p in programmes if p.is_relay]
    if not relays:
        return []
    ids = [b.id for b in broadcasts if b.programme_id in {p.id for p in relays}]
    reasons: dict[int, str | None] = {}
    if ids:  # the hub's record of why a slot came in empty
        reasons = dict(
            session.execute(
                select(RelaySlot.broadcast_id, RelaySlot.reason).where(
                    RelaySlot.broadcast_id.in_(ids), RelaySlot.reason.is_not(None)
                )
            )
            .tuples()
            .all()
        )
    rows = []
    for programme in relays:
        window = programme.max_duration_ms
        for month in months:
            items = [
                b for b in broadcasts if b.programme_id == programme.id and b.local_month == month
            ]
            relayed = relayed_ms = dropouts = dropout_ms = 0
            missing: list[str] = []
            village: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
            for b in items:
                heard = heard_by_device(events.get(b.id, []))
                best = max(heard.values(), key=lambda h: h.relayed_ms, default=Heard())
                relayed_ms += best.relayed_ms
                dropouts += best.dropouts
                dropout_ms += best.dropout_ms
                if is_relayed("played", best.relayed_ms, window, min_percent):
                    relayed += 1
                elif b.id in now_due:
                    when = b.starts_at.strftime("%d/%m")
                    missing.append(f"{when}: {reasons.get(b.id) or 'không đủ thời lượng'}")
                by_village = {
                    e.village_id: heard.get(e.device_id, Heard())
                    for e in events.get(b.id, [])
                    if e.village_id is not None and e.sha256 is None
                }
                for vid, h in by_village.items():
                    v = village[vid]
                    v[0] += int(is_relayed("played", h.relayed_ms, window, min_percent))
                    v[1] += h.relayed_ms
                    v[2] += h.dropouts
            rows.append(
                RelayRow(
                    month=month,
                    programme=programme.code,
                    programme_name=programme.name,
                    planned=len(items),
                    due=sum(1 for b in items if b.id in now_due),
                    relayed=relayed,
                    planned_ms=len(items) * window,
                    relayed_ms=relayed_ms,
                    dropouts=dropouts,
                    dropout_ms=dropout_ms,
                    not_relayed=missing[:10],
                    villages=[
                        RelayVillage(
                            id=vid,
                            name=name,
                            relayed=village[vid][0],
                            relayed_ms=village[vid][1],
                            dropouts=village[vid][2],
                        )
                        for vid, name in sorted(ip_villages.items(), key=lambda kv: kv[1])
                    ],
                )
            )
    return rows
