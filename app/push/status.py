"""What the console, /readyz and /metrics say about push."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import unit_of_work
from app.devices.models import Device
from app.push.models import PushOutbox

STATES = ("connected", "polling", "off")


def parse_state(value: str | None) -> str | None:
    """An agent's X-Loaxa-Push header: one of STATES, else None (ignored)."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in STATES else None


def push_states() -> dict[str, int]:
    """Active devices by reported push state ("unknown": an agent that never said)."""
    with unit_of_work(write=False) as session:
        rows = session.execute(
            select(Device.push_state, func.count(Device.id))
            .where(Device.is_active)
            .group_by(Device.push_state)
        ).all()
    out = {state: 0 for state in (*STATES, "unknown")}
    for state, count in rows:
        out[state if state in STATES else "unknown"] += count
    return out


def outbox_pending() -> int:
    with unit_of_work(write=False) as session:
        return int(
            session.scalar(select(func.count(PushOutbox.id)).where(PushOutbox.sent_at.is_(None)))
            or 0
        )
