"""Who is calling: users by signed token, playout PCs by device token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.accounts.security import (
    DEVICE_TOKEN_PREFIX,
    decode_access_token,
    password_fingerprint,
)
from app.db import unit_of_work
from app.devices.models import Device
from app.devices.service import device_token_hash
from app.errors import Forbidden, Unauthorized

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def current_user(token: TokenDep) -> User:
    """The signed-in user; 401 without a valid token."""
    # A short read of its own: the request's unit of work (and on SQLite its write lock)
    # is not opened just to check who is calling.
    with unit_of_work(write=False) as session:
        return _user_for_token(session, token)


def _user_for_token(session: Session, token: str | None) -> User:
    if not token:
        raise Unauthorized("not authenticated: send 'Authorization: Bearer <token>'")
    if token.startswith(DEVICE_TOKEN_PREFIX):
        raise Forbidden("a device token cannot be used here")
    claims = decode_access_token(token)
    if claims is None:
        raise Unauthorized("the token is invalid or has expired")
    user = session.get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise Unauthorized("the token's user no longer exists or is disabled")
    if claims.get("pw") != password_fingerprint(user.password_hash):
        raise Unauthorized("the token was issued before the password changed: sign in again")
    if claims.get("gen", 0) != user.auth_generation:
        raise Unauthorized("the token was revoked (the account was disabled): sign in again")
    session.expunge(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(minimum: Role) -> Callable[[User], User]:
    """A dependency that lets through users with at least `minimum`'s rights."""

    def check(user: CurrentUser) -> User:
        if not Role(user.role).at_least(minimum):
            raise Forbidden(f"this needs the {minimum.value} role; you are {user.role}")
        return user

    return check


ViewerUser = Annotated[User, Depends(require_role(Role.viewer))]
EditorUser = Annotated[User, Depends(require_role(Role.editor))]
ApproverUser = Annotated[User, Depends(require_role(Role.approver))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]


def current_device(token: TokenDep) -> Device:
    """The calling playout PC; 401 without a valid device token."""
    with unit_of_work(write=False) as session:
        return _device_for_token(session, token)


def _device_for_token(session: Session, token: str | None) -> Device:
    token_hash = device_token_hash(token)
    device = session.scalar(select(Device).where(Device.token_hash == token_hash))
    if device is None or not device.is_active:
        raise Unauthorized("unknown or disabled device token")
    session.expunge(device)
    return device


CurrentDevice = Annotated[Device, Depends(current_device)]


def current_principal(token: TokenDep) -> User | Device:
    """Either a staff user or a device (endpoints both may call, such as audio)."""
    if token and token.startswith(DEVICE_TOKEN_PREFIX):
        return current_device(token)
    return current_user(token)


CurrentPrincipal = Annotated[User | Device, Depends(current_principal)]
