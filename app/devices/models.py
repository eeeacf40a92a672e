"""A playout device (the PC at the station or in a village) and its health columns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class Device(Base):
    """A playout PC at the station or in a village; authenticates with a hashed token."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    village_id: Mapped[int | None] = mapped_column(
        ForeignKey("villages.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime | None]
    last_playlist_at: Mapped[datetime | None]
    last_played_at: Mapped[datetime | None]
    agent_version: Mapped[str | None] = mapped_column(String(40))
    free_disk_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # What the agent last said of its push connection (X-Loaxa-Push): connected, polling, off.
    push_state: Mapped[str | None] = mapped_column(String(20))
