"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app import metrics
from app.db import get_engine
from app.errors import DATABASE_RETRY_AFTER_SECONDS
from app.migrations import schema_problem

router = APIRouter(tags=["health"])
log = logging.getLogger("loaxa.health")


class NotReady(BaseModel):
    status: str
    detail: str


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"model": NotReady, "description": "the database does not answer"}},
)
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def prometheus_metrics() -> Response:
    """Prometheus text format: the numbers of every worker and of the scheduler (app.metrics).

    Open like /healthz: keep it on the operator's network (the reverse proxy's job).
    """
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, media_type=content_type)
