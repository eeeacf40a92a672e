"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app import metrics
from app.db import get_engine

router = APIRouter(tags=["health"])


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
    """The database answers."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc.__class__.__name__)}, 503)
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
