"""Record and read the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit.models import AuditEvent


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> AuditEvent:
    """Add one audit event to the current unit of work."""
    event = AuditEvent(
        actor_user_id=actor.id if actor else None,
        actor=actor.username if actor else (actor_name or "system"),
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def query(*, entity: str | None = None, entity_id: int | None = None) -> Select[tuple[AuditEvent]]:
    """Audit events, newest first, optionally for one entity."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    return stmt
