"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import clock
from app.db import get_sessionmaker
from app.schedule import status

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JSONResponse:
    """Ready when the database answers. The body also says whether a scheduler is running;
    that never makes this fail: an API that can serve is ready, and taking it out of a
    load balancer would not bring the scheduler back (see app.schedule.status)."""
    try:
        with get_sessionmaker()() as session:
            session.execute(text("SELECT 1"))
            body: dict[str, Any] = {"status": "ok", "database": "ok", **_scheduler(session)}
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc.__class__.__name__)}, 503)
    return JSONResponse(body)


def _scheduler(session: Session) -> dict[str, Any]:
    try:
        seen = status.last_seen(session)
    except SQLAlchemyError:  # not migrated yet: the database answers, the rest is unknown
        return {"scheduler": "unknown"}
    down = seen is None or clock.now() - seen >= status.DOWN_AFTER
    return {
        "scheduler": status.down_message(seen) if down else "running",
        "scheduler_last_seen_at": seen.isoformat() if seen else None,
    }
