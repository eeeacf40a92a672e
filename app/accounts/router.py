"""Token and user endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from app.accounts import service
from app.accounts.deps import AdminUser, CurrentUser
from app.accounts.schemas import Token, UserCreate, UserOut
from app.accounts.security import create_access_token
from app.db import SessionDep
from app.errors import Unauthorized

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.post("/auth/token", response_model=Token)
def issue_token(
    session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """OAuth2 password flow: a signed, expiring bearer token."""
    user = service.authenticate(session, username=form.username, password=form.password)
    if user is None:
        raise Unauthorized("incorrect username or password")
    token, lifetime = create_access_token(user_id=user.id, role=user.role)
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
    )
    return UserOut.model_validate(user)


@router.get("/users/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
