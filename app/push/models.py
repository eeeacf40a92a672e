"""What the push publisher keeps in the database: the outbox and the broker logins made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class PushOutbox(Base):
    """One thing to tell the broker, written in the transaction that made the change.

    ``kind`` ``publish``: a message for ``topic`` (``payload``, ``retain``); ``logout``: drop
    the broker login of ``device_id``. A publisher claims a row (``claimed_until``) before it
    sends it and marks it ``sent_at``; a failure puts it back with ``not_before`` later."""

    __tablename__ = "push_outbox"
    __table_args__ = (Index("ix_push_outbox_pending", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[str | None] = mapped_column(Text)
    retain: Mapped[bool] = mapped_column(default=False)
    device_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class PushLogin(Base):
    """A device's broker login as loaxa made it: for which token (its hash) and scope."""

    __tablename__ = "push_logins"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    station_id: Mapped[int]
    village_id: Mapped[int | None]
    made_at: Mapped[datetime] = mapped_column(default=clock.now)
