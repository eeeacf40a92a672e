"""GET /api/v1/playout/push: how a device reaches the push broker (DESIGN.md "Contract")."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.accounts.deps import TokenDep
from app.devices.service import device_token_hash
from app.push.logins import push_info
from app.urls import base_url

router = APIRouter(prefix="/api/v1", tags=["playout"])


class PushOut(BaseModel):
    url: str
    username: str
    topics: list[str]


@router.get("/playout/push", response_model=PushOut)
async def get_push(
    request: Request,
    token: TokenDep,
    refresh: Annotated[
        bool, Query(description="make the device's broker login again (after it was refused)")
    ] = False,
) -> Any:
    """How the device reaches the push broker: its URL, the device's login name (its
    password is the device token) and the topics it may subscribe to. 404 when push is off
    (the device polls)."""
    token_hash = device_token_hash(token)
    assert token is not None
    host = urlsplit(base_url(request)).hostname
    return await run_in_threadpool(
        lambda: push_info(token=token, token_hash=token_hash, host=host, refresh=refresh)
    )
