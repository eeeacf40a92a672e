"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app import clock, metrics
from app.db import get_engine, get_sessionmaker
from app.errors import DATABASE_RETRY_AFTER_SECONDS
from app.migrations import schema_problem
from app.schedule import status

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
    """Ready when the database answers and is at the revision this code expects. The body
    also says whether a scheduler is running; that never makes this fail: an API that can
    serve is ready, and taking it out of a load balancer would not bring the scheduler back
    (see app.schedule.status). Likewise the push broker (``push_broker``: ok, unreachable
    with a warning, or off): devices poll while it is away."""
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
    with get_sessionmaker()() as session:
        body: dict[str, Any] = {"status": "ok", "database": "ok", **_scheduler(session)}
    body.update(_push_broker())
    return JSONResponse(body)


def _push_broker() -> dict[str, Any]:
    """Whether the push broker answers: a warning, never a failure (devices poll without it)."""
    from app.config import get_settings
    from app.push import broker, publisher

    if not get_settings().mqtt_enabled:
        return {"push_broker": "off"}
    running = publisher.current()
    if running is not None:
        up = running.connected
    else:
        t = broker.target()
        up = broker.can_log_in(t.host, t.port, t.username, t.password, timeout=1.0)
    if up:
        return {"push_broker": "ok"}
    return {
        "push_broker": "unreachable",
        "warnings": ["the push broker does not answer: devices poll until it is back"],
    }


def _scheduler(session: Session) -> dict[str, Any]:
    try:
        seen = status.last_seen(session)
    except SQLAlchemyError:  # the database answers, the rest is unknown
        return {"scheduler": "unknown"}
    down = seen is None or clock.now() - seen >= status.DOWN_AFTER
    return {
        "scheduler": status.down_message(seen) if down else "running",
        "scheduler_last_seen_at": seen.isoformat() if seen else None,
    }


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
