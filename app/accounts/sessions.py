"""Sessions the server can end: console sessions as rows, API tokens by generation.

Why both: a console session ends alone (sign-out on the office PC must not sign the phone
out), so each one is a row (``ConsoleSessionRow``) that sign-out deletes and the cookie's
session id must match. API tokens are signed and stateless (playout-free clients hold them
for hours); they carry the user's ``auth_generation``, which disabling the user or changing
their password moves on, so every token issued before is dead for good (re-enabling does
not move it back). Both end together on those two events (``end_all``).

A console session lasts at most MAX_AGE in all (its row is pruned then), however often it
is used; its idle timeout is the cookie's (LOAXA_CONSOLE_SESSION_MINUTES).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ConsoleSessionRow, User

MAX_AGE = timedelta(days=30)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def start(session: Session, *, sid: str, user_id: int) -> None:
    """Record a new signed-in console session (and forget those past MAX_AGE)."""
    session.execute(
        delete(ConsoleSessionRow).where(ConsoleSessionRow.created_at < clock.now() - MAX_AGE)
    )
    session.add(ConsoleSessionRow(id_hash=_hash(sid), user_id=user_id))
    session.flush()


def is_live(session: Session, *, sid: str, user_id: int) -> bool:
    """Whether the console session `sid` of this user has not been ended."""
    row = session.scalar(
        select(ConsoleSessionRow.created_at).where(
            ConsoleSessionRow.id_hash == _hash(sid), ConsoleSessionRow.user_id == user_id
        )
    )
    return row is not None and row >= clock.now() - MAX_AGE


def end(session: Session, *, sid: str) -> None:
    """End one console session for good (sign-out)."""
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id_hash == _hash(sid)))


def end_all(session: Session, *, user: User) -> None:
    """End every console session and API token of the user for good."""
    user.auth_generation = (user.auth_generation or 0) + 1
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == user.id))
    session.flush()
