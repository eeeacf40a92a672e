"""Users: create and authenticate."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.accounts.security import hash_password, verify_password
from app.audit import service as audit
from app.db import add_unique
from app.errors import Conflict, Invalid, NotFound
from app.stations.models import Station


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    station_id: int | None = None,
    actor: User | None = None,
) -> User:
    """A new user; 409 when the name is taken."""
    if station_id is not None and session.get(Station, station_id) is None:
        raise NotFound(f"station {station_id} does not exist")
    if station_id is None and role != Role.admin:
        # Staff work for one commune: the only one, or the one named.
        only = session.scalars(select(Station.id).limit(2)).all()
        if len(only) != 1:
            raise Invalid(
                f"station_id is required for role {role.value}: staff belong to a station"
            )
        station_id = only[0]
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        station_id=station_id,
    )
    if not add_unique(session, user):  # a concurrent request took the name first
        raise Conflict(f"user {username!r} already exists")
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=user.id,
        after={"username": username, "role": role.value, "station_id": station_id},
    )
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The user when name and password match and the account is active, else None."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        return None
    return user
