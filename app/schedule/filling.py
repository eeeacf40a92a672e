"""Fill a broadcast's rundown from approved segments: one rule for the scheduler and people.

`propose` is the rule: approved segments with audio for the broadcast's programme and month
(and village), not placed in another live broadcast of the programme, by priority then oldest
approval, taken in that order while the total stays within the window's maximum. The fill
job (`fill_rundown`) saves the proposal when nobody set the rundown by hand; the console's
"Tự động xếp" shows the same proposal to a person before anything is saved.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.audio.models import AudioAsset
from app.schedule import service
from app.schedule.assembly import gap_ms, planned_items, total_ms
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.segments.models import Segment, SegmentStatus, SegmentVillage
from app.stations.models import Programme

PRIORITY_RANK = {"emergency": 0, "priority": 1, "normal": 2}


@dataclass(frozen=True)
class Candidate:
    segment_id: int
    duration_ms: int
    priority: str
    approved_order: tuple[float, int]


@dataclass
class FillResult:
    segment_ids: list[int]
    total_ms: int
    missing_ms: int  # > 0 when the approved material cannot reach the window's minimum
    offered: int = 0  # approved segments there were to choose from (see `propose`)


def candidates(session: Session, broadcast: Broadcast) -> list[Candidate]:
    """Approved segments with audio for this broadcast's programme, month (and village),
    not already placed in another live broadcast of the same programme (and village);
    by priority, then oldest approval first."""
    used = (
        select(RundownItem.segment_id)
        .join(Broadcast, Broadcast.id == RundownItem.broadcast_id)
        .where(
            Broadcast.id != broadcast.id,
            Broadcast.programme_id == broadcast.programme_id,
            Broadcast.status != BroadcastStatus.cancelled.value,
        )
    )
    if broadcast.village_id is not None:
        used = used.where(Broadcast.village_id == broadcast.village_id)
    stmt = (
        select(Segment.id, AudioAsset.duration_ms, Segment.priority, Segment.approved_at)
        .join(AudioAsset, AudioAsset.id == Segment.audio_id)
        .where(
            Segment.station_id == broadcast.station_id,
            Segment.programme_id == broadcast.programme_id,
            Segment.status == SegmentStatus.approved.value,
            Segment.target_month == broadcast.local_month,
            Segment.id.not_in(used),
        )
    )
    if broadcast.village_id is not None:
        targeted = select(SegmentVillage.segment_id).where(
            SegmentVillage.village_id == broadcast.village_id
        )
        anywhere = select(SegmentVillage.segment_id)
        # Meant for this village, or for no village in particular.
        stmt = stmt.where(or_(Segment.id.in_(targeted), Segment.id.not_in(anywhere)))
    rows = session.execute(stmt).all()
    found = [
        Candidate(sid, dur, prio, (approved.timestamp() if approved else 0.0, sid))
        for sid, dur, prio, approved in rows
    ]
    return sorted(found, key=lambda c: (PRIORITY_RANK.get(c.priority, 9), c.approved_order))


def choose(
    fixed_ms: int,
    items: list[Candidate],
    *,
    gap_ms: int,
    window: tuple[int, int],
    have_items: int,
) -> FillResult:
    """Pure: take candidates in order while the total stays within the window's maximum."""
    low, high = window
    total, chosen, count = fixed_ms, [], have_items
    for c in items:
        extra = c.duration_ms + (gap_ms if count else 0)
        if total + extra <= high:
            chosen.append(c.segment_id)
            total += extra
            count += 1
    return FillResult(chosen, total, max(0, low - total))


def propose(session: Session, broadcast: Broadcast) -> FillResult:
    """The rundown the fill would choose for this broadcast now (nothing is saved)."""
    programme = session.get_one(Programme, broadcast.programme_id)
    fixed = [i for i in planned_items(session, broadcast, programme) if i.kind != "segment"]
    found = candidates(session, broadcast)
    result = choose(
        total_ms(fixed),
        found,
        gap_ms=gap_ms(),
        window=(programme.min_duration_ms, programme.max_duration_ms),
        have_items=len(fixed),
    )
    result.offered = len(found)
    return result


def fill_rundown(session: Session, broadcast: Broadcast) -> FillResult | None:
    """Fill the rundown when nobody set it by hand; None when a person owns it."""
    if broadcast.rundown_set_by_id is not None:
        return None
    if broadcast.status not in service.ACTIVE:
        return None
    if session.get_one(Programme, broadcast.programme_id).is_relay:
        return None  # a relay has no rundown: it is ready as soon as it is planned
    result = propose(session, broadcast)
    current = service.rundown_segment_ids(session, broadcast.id)
    if result.segment_ids != current:
        service.set_rundown(
            session, broadcast=broadcast, segment_ids=result.segment_ids, actor=None
        )
    return result
