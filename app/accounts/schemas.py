"""API shapes for users and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.accounts.models import Role
from app.db import DbId
from app.text import Name

Username = Annotated[
    str, StringConstraints(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    role: Role
    station_id: DbId | None = None
    full_name: Name | None = Field(default=None, description='"Họ và tên", shown on pages')


class UserUpdate(BaseModel):
    """PATCH /users/{id}: the fields given change."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    full_name: Name | None = Field(default=None, description='"Họ và tên"')
    disabled: bool | None = Field(
        default=None, description="true: cannot sign in; existing tokens stop working"
    )


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str | None
    role: Role
    station_id: DbId | None
    is_active: bool
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
