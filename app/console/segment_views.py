"""What the Tin bài pages show and accept, in the console's terms.

The pages call app.segments.service (the same functions as the API); this module turns a
posted form into the service's arguments, and service data into what templates need:
the station's programmes and villages for the form, the list's filters, the read-aloud
text, and the segment's history from the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User, display_name
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.console.auth import can
from app.console.forms import ConsoleForm, FieldErrors
from app.console.i18n import N_, _
from app.console.labels import SEGMENT_ACTIONS
from app.errors import LoaxaError
from app.segments import service as segments
from app.segments.models import Segment, SegmentStatus, Topic
from app.segments.schemas import SegmentCreate, SegmentOut
from app.stations import service as stations
from app.stations.models import Programme, Village
from app.tts import service as tts

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
HISTORY_LIMIT = 50

# The form's fields, by the service's names (message ids for labels in history lines).
FIELD_LABELS = {
    "title": N_("Tiêu đề"),
    "topic": N_("Chủ đề"),
    "script": N_("Nội dung"),
    "target_month": N_("Tháng phát"),
    "programme_id": N_("Chuyên mục"),
    "village_ids": N_("Thôn"),
    "priority": N_("Mức ưu tiên"),
    "audio_id": N_("Tệp âm thanh"),
    "status": N_("Trạng thái"),
}


@dataclass(frozen=True)
class Filters:
    status: SegmentStatus | None = None
    month: str | None = None
    topic: Topic | None = None
    programme: str | None = None
    q: str | None = None

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (for pagination links)."""
        pairs = {
            "q": self.q or "",
            "status": self.status.value if self.status else "",
            "month": self.month or "",
            "topic": self.topic.value if self.topic else "",
            "programme": self.programme or "",
        }
        return {k: v for k, v in pairs.items() if v}


def parse_filters(
    status: str | None,
    month: str | None,
    topic: str | None,
    programme: str | None,
    q: str | None = None,
) -> Filters:
    """Filters from the query string; an unknown value is ignored, not an error page."""
    words = " ".join((q or "").split())[:200]
    return Filters(
        q=words or None,
        status=SegmentStatus(status) if status and status in SegmentStatus.__members__ else None,
        month=month if month and MONTH.match(month) else None,
        topic=Topic(topic) if topic in {t.value for t in Topic} else None,
        programme=programme if programme and len(programme) <= 40 else None,
    )


@dataclass(frozen=True)
class Choices:
    """The station's programmes and villages, for the form's selects and checkboxes."""

    station_id: int | None
    programmes: list[Programme]
    villages: list[Village]


def choices(session: Session, *, user: User) -> Choices:
    visible = stations.list_stations(session, user=user)
    station = next((s for s in visible if s.id == user.station_id), None)
    if station is None and len(visible) == 1:
        station = visible[0]
    if station is None:
        return Choices(None, [], [])
    return Choices(
        station.id,
        stations.list_programmes(session, station_id=station.id),
        stations.list_villages(session, station_id=station.id),
    )


def form_values(segment: SegmentOut | None) -> dict[str, Any]:
    """What the form shows for a saved segment (or an empty one)."""
    if segment is None:
        return {"programme": "cchc", "topic": Topic.progress.value, "village_ids": []}
    return {
        "title": segment.title,
        "topic": segment.topic.value,
        "programme": segment.programme,
        "target_month": segment.target_month or "",
        "script": segment.script or "",
        "village_ids": [str(v) for v in segment.village_ids],
        "version": str(segment.version),
    }


def typed_values(form: ConsoleForm) -> dict[str, Any]:
    """What the form shows after a refused post: exactly what was typed."""
    values: dict[str, Any] = form.typed()
    values["village_ids"] = form.getlist("village_ids")
    return values


def changes_from(form: ConsoleForm) -> dict[str, Any]:
    """The service's arguments from the form, checked by the API's own SegmentCreate: what
    it refuses comes back beside the field, in words."""
    villages = form.int_list("village_ids", _("Danh sách thôn không hợp lệ."))
    if not form.get("title"):
        raise FieldErrors({"title": _("Hãy nhập tiêu đề.")})
    body = form.model(
        SegmentCreate,
        {
            "title": form.get("title"),
            "topic": form.get("topic"),
            "programme": form.get("programme") or "cchc",
            "target_month": form.get("target_month") or None,
            "script": form.get("script") or None,
            "village_ids": villages,
        },
    )
    return {
        "title": body.title,
        "topic": body.topic.value,
        "programme": body.programme,
        "target_month": body.target_month,
        "script": body.script,
        "village_ids": body.village_ids,
    }


def version_of(form: ConsoleForm) -> int | None:
    """The version the page was showing (hidden field); a malformed one is refused."""
    return form.int_value("version", _("Trang này đã cũ: hãy tải lại trang rồi làm lại."))


NEEDS_AUDIO_LIMIT = 20


def needing_audio(session: Session, *, user: User) -> list[Segment]:
    """Approved segments with no audio yet (their text approved before recording): they
    cannot air until someone records or reads them. Empty for viewers."""
    if not can(user, "editor"):
        return []
    stmt = segments.list_query(user=user, status=SegmentStatus.approved)
    return list(session.scalars(stmt.where(Segment.audio_id.is_(None)).limit(NEEDS_AUDIO_LIMIT)))


def read_aloud(session: Session, segment: Segment) -> tuple[str | None, str | None]:
    """(the script as it will be read aloud, or why it cannot be)."""
    if not segment.script or not segment.script.strip():
        return None, None
    try:
        extra = tts.station_dictionary(session, segment.station_id)
        return tts.preview(segment.script, extra), None
    except LoaxaError as exc:
        return None, exc.message


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    actor: str
    action: str  # message id
    fields: list[str]  # message ids of the fields an edit changed


def history(session: Session, segment_id: int) -> list[HistoryLine]:
    """The segment's audit events, newest first, in words, people by their names."""
    events = list(
        session.scalars(audit.query(entity="segment", entity_id=segment_id).limit(HISTORY_LIMIT))
    )
    names = people(session, {e.actor_user_id for e in events if e.actor_user_id})
    return [_line(e, names.get(e.actor_user_id or 0, e.actor)) for e in events]


def people(session: Session, user_ids: set[int]) -> dict[int, str]:
    """Users' names as pages show them ("Họ và tên", else the login name), by id."""
    if not user_ids:
        return {}
    rows = session.scalars(select(User).where(User.id.in_(user_ids)))
    return {u.id: display_name(u) for u in rows}


def _line(event: AuditEvent, actor: str) -> HistoryLine:
    changed: list[str] = []
    if event.action == "segment.update" and event.before and event.after:
        changed = [
            FIELD_LABELS[k]
            for k in FIELD_LABELS
            if k != "status" and event.before.get(k) != event.after.get(k)
        ]
    return HistoryLine(
        at=event.created_at,
        actor=actor,
        action=SEGMENT_ACTIONS.get(event.action, event.action),
        fields=changed,
    )
