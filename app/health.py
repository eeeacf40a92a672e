"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import get_engine
from app.errors import DATABASE_RETRY_AFTER_SECONDS
from app.migrations import schema_problem

router = APIRouter(tags=["health"])
log = logging.getLogger("loaxa.health")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JSONResponse:
    """The database answers and is at the revision this code expects."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            problem = schema_problem(conn)
    except SQLAlchemyError as exc:
        log.warning("not ready: the database does not answer (%s)", exc.__class__.__name__)
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "unavailable",
                "detail": f"the database does not answer ({exc.__class__.__name__})",
            },
            503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if problem is not None:
        return JSONResponse(
            {"status": "unavailable", "database": "not migrated", "detail": problem}, 503
        )
    return JSONResponse({"status": "ok", "database": "ok"})
