"""The audit log, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.accounts.deps import AdminUser
from app.audit import service
from app.db import DbId, SessionDep
from app.pagination import Page, PageDep, paginate

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor: str
    action: str
    entity: str
    entity_id: DbId | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


@router.get("", response_model=Page[AuditEventOut])
def list_audit_events(
    session: SessionDep,
    admin: AdminUser,
    page: PageDep,
    entity: str | None = None,
    entity_id: DbId | None = None,
) -> Page[AuditEventOut]:
    """Who changed what and when, newest first."""
    rows, total = paginate(session, service.query(entity=entity, entity_id=entity_id), page)
    return Page(
        items=[AuditEventOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
