"""What the console keeps on the server between a refused form and the page that shows it.

A refused console form answers with a redirect (POST/redirect/GET), so what was typed must
outlive the request: a 20 000-character script does not fit in a cookie, and a cookie
would carry it on every request. One row per (session, page), in the database that every
worker and replica already shares (the data directory is not shared between replicas):
the fields as typed, the error, and the form's own address, so that the page can be shown
again exactly as the refusal would have shown it (app/console/forms.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class KeptForm(Base):
    """A refused form's fields and error, for its page, until it succeeds or expires."""

    __tablename__ = "console_kept_forms"
    __table_args__ = (
        UniqueConstraint("session_key", "page"),
        Index("ix_console_kept_forms_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 of the session id (the cookie's own value is never stored)
    session_key: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    page: Mapped[str] = mapped_column(String(500))  # path and query the form was on
    action: Mapped[str] = mapped_column(String(500))  # the path the form posted to
    values: Mapped[dict[str, Any]] = mapped_column(JSON)  # name → list of values
    files: Mapped[list[str]] = mapped_column(JSON)  # names of files that could not be kept
    error: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)  # field → its own message
    status: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
