"""Users and their roles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class Role(enum.StrEnum):
    viewer = "viewer"
    editor = "editor"
    approver = "approver"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def at_least(self, other: Role) -> bool:
        """Roles are ordered: each one can do what the ones below it can."""
        return self.rank >= other.rank


ROLE_ORDER = [Role.viewer, Role.editor, Role.approver, Role.admin]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # "Họ và tên": how pages name the person (the login name when there is none).
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Staff of one commune see and write that commune's data; admins may have none.
    station_id: Mapped[int | None] = mapped_column(
        ForeignKey("stations.id", ondelete="SET NULL"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


def display_name(user: User | None) -> str:
    """The person's name as pages show it: "Họ và tên", else the login name."""
    if user is None:
        return ""
    return user.full_name or user.username
