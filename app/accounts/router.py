"""Token and user endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from app.accounts import service, throttle
from app.accounts.deps import AdminUser, CurrentUser
from app.accounts.schemas import PasswordSet, Token, UserCreate, UserOut, UserUpdate
from app.accounts.security import create_access_token
from app.db import DbId, SessionDep
from app.errors import Unauthorized, responses

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.post("/auth/token", response_model=Token, responses=responses(401, 429))
def issue_token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """OAuth2 password flow: a signed, expiring bearer token.

    Throttled per client address and per username (app.accounts.throttle): 429 with
    Retry-After.
    """
    address = request.client.host if request.client else "unknown"
    throttle.check_sign_in(address=address, username=form.username)
    user = service.authenticate(session, username=form.username, password=form.password)
    if user is None:
        throttle.record_failure(username=form.username)
        raise Unauthorized("incorrect username or password")
    token, lifetime = create_access_token(
        user_id=user.id, role=user.role, password_hash=user.password_hash
    )
    return Token(access_token=token, expires_in=lifetime)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(session: SessionDep, admin: AdminUser, body: UserCreate) -> UserOut:
    user = service.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        station_id=body.station_id,
        actor=admin,
        full_name=body.full_name,
    )
    return UserOut.model_validate(user)


@router.get("/users/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.get("/users", response_model=list[UserOut])
def list_users(session: SessionDep, admin: AdminUser) -> list[UserOut]:
    """Every user, by name."""
    return [UserOut.model_validate(u) for u in service.list_users(session)]


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(session: SessionDep, admin: AdminUser, user_id: DbId, body: UserUpdate) -> UserOut:
    """Change a role, the full name, or disable a user; 409 when it would leave no active
    admin."""
    user = service.get_user(session, user_id, for_update=True)
    service.update_user(
        session,
        user=user,
        role=body.role,
        disabled=body.disabled,
        actor=admin,
        full_name=body.full_name,
    )
    return UserOut.model_validate(user)


@router.post("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def set_password(session: SessionDep, admin: AdminUser, user_id: DbId, body: PasswordSet) -> None:
    """Reset a user's password."""
    user = service.get_user(session, user_id, for_update=True)
    service.set_password(session, user=user, password=body.password, actor=admin)
