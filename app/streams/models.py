"""What the stream hub saw: each relay mount's upstream now, and each relay slot's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class StreamState(Base):
    """A relay programme's mount on the hub: receiving its upstream or not, and since when."""

    __tablename__ = "stream_states"

    programme_id: Mapped[int] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    receiving: Mapped[bool] = mapped_column(default=False)
    since: Mapped[datetime]
    checked_at: Mapped[datetime]
    # The upstream's trouble in words when not receiving (unreachable, refused, ...).
    detail: Mapped[str | None] = mapped_column(String(300))


class RelaySlot(Base):
    """One relay broadcast as the hub saw it: how long its upstream came in, or why not."""

    __tablename__ = "relay_slots"

    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    received_ms: Mapped[int] = mapped_column(Integer, default=0)
    first_received_at: Mapped[datetime | None]
    lost_at: Mapped[datetime | None]
    # Why nothing came in (set when the slot ends without its upstream).
    reason: Mapped[str | None] = mapped_column(String(300))
    closed_at: Mapped[datetime | None]  # the slot ended and was judged
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
