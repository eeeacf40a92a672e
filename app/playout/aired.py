"""When a broadcast counts as aired: the one rule as-run intake and the reports share.

The rule: a broadcast aired when a device that carries it (``scope``) reported a
``played`` event (played to the end) of the master that was the broadcast's master when
the event began.

Why this rule: what a commune proves with its report is that the column as it stood when
it went on air was heard, the content that was approved at that moment. So

* a rundown changed *after* the airing (a correction for the podcast, a segment swapped for
  next time) does not undo the airing: the master that played was the broadcast's then;
* a PC that plays an *outdated* master (it cached the playlist before the rundown changed)
  did not air the broadcast: what went out is not what the commune had approved by then.
  Its event is still stored (it is a true record of what played), but it proves nothing.

A relay has no master: it is relayed when a device heard its stream for at least
LOAXA_RELAY_MIN_PERCENT of the window (`is_relayed`).

The masters a broadcast had, and when, are in its audit trail: each ``broadcast.assemble``
sets a master from its time on, and a ``broadcast.rundown`` that changed the segments
clears it (``schedule.service.set_rundown``) until the next assembly. Before the first
recorded master only a PC whose clock runs behind can have played: the first master is
taken as in force then. A broadcast with no recorded master at all (rows written before
the audit trail, or imported) has nothing to check against: its played events count, as
intake already checked their audio against the broadcast.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent

ASSEMBLE, RUNDOWN = "broadcast.assemble", "broadcast.rundown"


@dataclass
class MasterHistory:
    """A broadcast's masters over time: from each change's time on, that master (None: none)."""

    changes: list[tuple[datetime, str | None]] = field(default_factory=list)

    def in_force(self, when: datetime) -> str | None:
        """The master at `when`; before the first recorded one, the first master."""
        times = [t for t, _sha in self.changes]
        i = bisect_right(times, when)
        if i:
            return self.changes[i - 1][1]
        return next((sha for _t, sha in self.changes if sha is not None), None)

    @property
    def known(self) -> bool:
        return any(sha is not None for _t, sha in self.changes)


def is_aired(status: str, sha256: str, started_at: datetime, history: MasterHistory) -> bool:
    """Whether one as-run event of a device that carries the broadcast makes it aired."""
    if status != "played":
        return False
    if not history.known:
        return True
    return history.in_force(started_at) == sha256


def is_relayed(status: str, relayed_ms: int | None, window_ms: int, min_percent: float) -> bool:
    """Whether one as-run event of a relay makes it relayed: the stream was heard for at
    least `min_percent` of the window (LOAXA_RELAY_MIN_PERCENT, 90 by default), dropouts
    left out. An interrupted relay (an emergency cut in) counts by what was heard too."""
    if status == "failed" or relayed_ms is None:
        return False
    return relayed_ms * 100 >= window_ms * min_percent


def master_histories(session: Session, broadcast_ids: Iterable[int]) -> dict[int, MasterHistory]:
    """The master history of each broadcast, from its audit trail (empty when none)."""
    ids = set(broadcast_ids)
    out: dict[int, MasterHistory] = defaultdict(MasterHistory)
    if not ids:
        return out
    rows = session.execute(
        select(AuditEvent.entity_id, AuditEvent.action, AuditEvent.before, AuditEvent.after)
        .add_columns(AuditEvent.created_at)
        .where(
            AuditEvent.entity == "broadcast",
            AuditEvent.entity_id.in_(ids),
            AuditEvent.action.in_((ASSEMBLE, RUNDOWN)),
        )
        .order_by(AuditEvent.created_at, AuditEvent.id)
    )
    for bid, action, before, after, at in rows:
        if bid is None:
            continue
        if action == ASSEMBLE:
            sha = (after or {}).get("master_sha256")
            out[bid].changes.append((at, sha if isinstance(sha, str) else None))
        elif (before or {}).get("segment_ids") != (after or {}).get("segment_ids"):
            # A changed rundown clears the master until it is assembled again.
            out[bid].changes.append((at, None))
    return out
