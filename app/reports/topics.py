"""What the aired columns were about: their segments counted by topic."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.reports.labels import TOPIC_LABELS
from app.reports.schemas import TopicCount
from app.schedule.models import RundownItem
from app.segments.models import Segment, Topic


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
