"""Users: create, list, change (role, disabled, password) and authenticate.

Every change is audited. loaxa never ends up without an active admin: demoting or
disabling the last one is refused (409), whoever asks. A disabled user cannot sign in,
and their existing tokens and console sessions stop working at their next request (both
check the account on every request).
"""

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
    full_name: str | None = None,
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
        full_name=full_name or None,
    )
    if not add_unique(session, user):  # a concurrent request took the name first
        raise Conflict(f"user {username!r} already exists")
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=user.id,
        after={
            "username": username,
            "role": role.value,
            "station_id": station_id,
            "full_name": user.full_name,
        },
    )
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The user when name and password match and the account is active, else None."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        return None
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, user_id: int, *, for_update: bool = False) -> User:
    stmt = select(User).where(User.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    user = session.scalar(stmt)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _snapshot(user: User) -> dict[str, object]:
    return {"role": user.role, "is_active": user.is_active, "full_name": user.full_name}


def update_user(
    session: Session,
    *,
    user: User,
    role: Role | None = None,
    disabled: bool | None = None,
    actor: User | None = None,
    full_name: str | None = None,
) -> User:
    """Change a user's role or disable / enable them; 409 when no active admin would be left."""
    before = _snapshot(user)
    new_role = role.value if role is not None else user.role
    active = (not disabled) if disabled is not None else user.is_active
    if user.is_active and user.role == Role.admin and not (active and new_role == Role.admin):
        # Lock the admins' rows so two admins cannot demote each other at the same moment.
        others = session.scalars(
            select(User.id)
            .where(User.role == Role.admin.value, User.is_active, User.id != user.id)
            .with_for_update()
        ).all()
        if not others:
            raise Conflict(f"{user.username!r} is the last active admin: appoint another first")
    if new_role != Role.admin and user.station_id is None:
        user.station_id = _only_station(session, Role(new_role))
    user.role, user.is_active = new_role, active
    if full_name is not None:
        user.full_name = full_name or None
    session.flush()
    after = _snapshot(user)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="user.update",
            entity="user",
            entity_id=user.id,
            before=before,
            after=after,
        )
    return user


def _only_station(session: Session, role: Role) -> int:
    only = session.scalars(select(Station.id).limit(2)).all()
    if len(only) != 1:
        raise Invalid(f"role {role.value} needs a station: staff belong to a station")
    return only[0]


def set_password(session: Session, *, user: User, password: str, actor: User | None = None) -> User:
    """A new password (reset by an admin); the user's console sessions end with it."""
    user.password_hash = hash_password(password)
    session.flush()
    audit.record(session, actor=actor, action="user.password", entity="user", entity_id=user.id)
    return user
