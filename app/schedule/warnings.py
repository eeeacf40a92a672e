"""The scheduler's findings: stored once each, listed by the API, optionally posted to a webhook."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from app import clock
from app.accounts.models import User
from app.config import get_settings
from app.db import add_unique
from app.schedule.models import ScheduleWarning
from app.stations import service as stations
from app.stations.models import Station

log = logging.getLogger("loaxa.scheduler")


def raise_warning(
    session: Session,
    *,
    kind: str,
    message: str,
    dedupe_key: str,
    station_id: int | None = None,
    broadcast_id: int | None = None,
) -> ScheduleWarning | None:
    """Store a warning; the same finding (dedupe_key) is stored once. Returns it when new."""
    warning = ScheduleWarning(
        station_id=station_id,
        broadcast_id=broadcast_id,
        kind=kind,
        message=message,
        dedupe_key=dedupe_key[:200],
        created_at=clock.now(),
    )
    if not add_unique(session, warning):
        return None
    log.warning("%s: %s", kind, message)
    return warning


def list_query(
    *, user: User, station_id: int | None = None, kind: str | None = None
) -> Select[tuple[ScheduleWarning]]:
    """Warnings of the stations the user can see (one station's, when given), newest first."""
    visible = stations.scope_to_user(select(Station.id), Station.id, user)
    stmt = (
        select(ScheduleWarning)
        .where(ScheduleWarning.station_id.in_(visible.scalar_subquery()))
        .order_by(ScheduleWarning.id.desc())
    )
    if station_id is not None:
        stmt = stmt.where(ScheduleWarning.station_id == station_id)
    if kind:
        stmt = stmt.where(ScheduleWarning.kind == kind)
    return stmt


def payload(warning: ScheduleWarning) -> dict[str, Any]:
    return {
        "id": warning.id,
        "kind": warning.kind,
        "message": warning.message,
        "station_id": warning.station_id,
        "broadcast_id": warning.broadcast_id,
        "created_at": warning.created_at.isoformat(),
    }


def notify_webhook(payloads: list[dict[str, Any]]) -> None:
    """POST new warnings to the configured webhook (after they are committed); never raises."""
    url = get_settings().warnings_webhook_url
    if not url or not payloads:
        return
    try:
        _post(url, {"warnings": payloads})
    except Exception as exc:  # the warning is stored either way; the webhook is a courtesy
        log.error("warnings webhook %s failed: %s", url, exc)


@retry(
    retry=retry_if_exception_type(httpx.HTTPError),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)
def _post(url: str, body: dict[str, Any]) -> None:
    response = httpx.post(url, json=body, timeout=5.0)
    response.raise_for_status()
