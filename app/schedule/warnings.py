"""The scheduler's findings, grouped so that the one that matters does not drown.

Rules:

* One warning per kind, station and local month (a group): "Tháng 3/2024: 12 buổi phát
  thôn chưa báo đã phát, Thôn 1 (4), Thôn 3 (8)". Its items are what it is about
  (broadcasts, or the month itself for a month without its CCHC broadcast); its count
  follows them as they arrive and go.
* A group resolves itself when its cause goes away (no item is left: a late as-run
  arrived, the month got its broadcast, the rundown got its material); it opens again,
  unacknowledged, when a cause comes back.
* Staff acknowledge a group (who and when, and the count they saw): a group that has
  grown since needs a look again.
* The webhook gets one message per change of a group (raised, grew, shrank, changed,
  escalated, resolved, reopened), never one per broadcast. A detail that changes inside
  an item (minutes still missing) updates the message without a new post.
* The jobs (app.schedule.jobs) decide which items a group holds; this module stores,
  compares and tells.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.config import get_settings
from app.db import add_unique
from app.errors import NotFound
from app.pagination import PageParams, paginate
from app.schedule import status
from app.schedule.cadence import parse_month
from app.schedule.models import ScheduleWarning
from app.schedule.schemas import VillageCountOut, WarningItemOut, WarningOut, WarningsPage
from app.stations import service as stations
from app.stations.models import Station

log = logging.getLogger("loaxa.scheduler")

STAGES = ("T-7", "T-1")  # from less to more urgent

# What a group's items are, as its message says it (nouns and predicates in Vietnamese,
# for the staff who read them; kinds and fields stay ASCII for programs).
_PREDICATE = {
    "missed": "chưa báo đã phát",
    "underfilled": "thiếu nội dung đã duyệt",
    "cchc-unassembled": "chưa dựng thành bản phát",
    "cchc-outside-window": "ngoài khung thời lượng",
    "relay-not-received": "tiếp sóng không nhận được tín hiệu",
}
STATION_PLACE = "Đài xã"


def group_key(kind: str, station_id: int, month: str) -> str:
    return f"{kind}:s{station_id}:{month}"


def month_label(month: str) -> str:
    """ "2024-03" as staff write it: "Tháng 3/2024"."""
    year, mon = parse_month(month)
    return f"Tháng {mon}/{year}"


def broadcast_item(
    *,
    broadcast_id: int,
    starts_at: datetime,
    village_id: int | None,
    village: str | None,
    detail: str | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    """One broadcast in a group, as stored and shown."""
    return {
        "key": f"b{broadcast_id}",
        "broadcast_id": broadcast_id,
        "starts_at": starts_at.isoformat(),
        "village_id": village_id,
        "village": village,
        "detail": detail,
        "stage": stage,
    }


def by_village(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many of the items are the station's own (village None) and each village's."""
    counts = Counter((i.get("village_id"), i.get("village")) for i in items if "broadcast_id" in i)
    return [
        {"village_id": vid, "village": name, "count": n}
        for (vid, name), n in sorted(counts.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1] or ""))
    ]


def describe(kind: str, month: str, items: Sequence[dict[str, Any]], stage: str | None) -> str:
    """Pure: the group's message, e.g. "Tháng 3/2024: 12 buổi phát thôn chưa báo đã phát,
    Thôn 1 (4), Thôn 3 (8)"."""
    head = f"{stage}: " if stage else ""
    head += month_label(month)
    if kind == "cchc-missing":
        return f"{head}: chưa có buổi phát chuyên mục CCHC"
    places = by_village(items)
    all_villages = all(p["village_id"] is not None for p in places)
    noun = "buổi phát thôn" if all_villages else "buổi phát"
    where = ", ".join(f"{p['village'] or STATION_PLACE} ({p['count']})" for p in places)
    text = f"{head}: {len(items)} {noun} {_PREDICATE.get(kind, kind)}, {where}"
    details = [f"buổi {i['broadcast_id']}: {i['detail']}" for i in items[:3] if i.get("detail")]
    return text + ("; " + "; ".join(details) if details else "")


@dataclass(frozen=True)
class Change:
    """What happened to a group in one sync: raised, grew, shrank, changed, escalated,
    resolved or reopened."""

    warning: ScheduleWarning
    change: str


def most_urgent(stages: Collection[str | None]) -> str | None:
    known = [s for s in stages if s in STAGES]
    return max(known, key=STAGES.index) if known else None


def _lock(session: Session, key: str) -> ScheduleWarning | None:
    return session.scalars(
        select(ScheduleWarning).where(ScheduleWarning.dedupe_key == key).with_for_update()
    ).one_or_none()


def sync_group(
    session: Session,
    *,
    kind: str,
    station_id: int,
    month: str,
    items: Sequence[dict[str, Any]],
    stage: str | None = None,
    known: ScheduleWarning | bool | None = True,
) -> Change | None:
    """Make the group hold exactly these items (keyed by "key") and this stage.

    Returns the change when there was one worth telling (None: nothing new, or only an
    item's detail changed). `known` is the group as a caller already read it (None: it
    has none) so that an unchanged group costs no locking read; True: read it here.
    """
    items = sorted(items, key=lambda i: str(i["key"]))
    if not isinstance(known, bool) and not _differs(known, items, stage):
        return None
    key = group_key(kind, station_id, month)
    row = _lock(session, key)
    now = clock.now()
    if row is None:
        if not items:
            return None
        row = ScheduleWarning(
            station_id=station_id,
            kind=kind,
            month=month,
            dedupe_key=key,
            message=describe(kind, month, items, stage),
            stage=stage,
            item_count=len(items),
            items=items,
            created_at=now,
            updated_at=now,
        )
        if add_unique(session, row):
            log.warning("%s: %s", kind, row.message)
            return Change(row, "raised")
        row = _lock(session, key)  # another process raised it at the same moment
        assert row is not None
    return _apply(row, items, stage, now)


def update_group(
    session: Session,
    *,
    kind: str,
    station_id: int,
    month: str,
    put: Sequence[dict[str, Any]] = (),
    drop: Collection[str] = (),
) -> Change | None:
    """Add or replace some items of a group and remove others (by key); the group's stage
    is its most urgent item's."""
    row = _lock(session, group_key(kind, station_id, month))
    replaced = {str(i["key"]) for i in put} | set(drop)
    old = [i for i in (row.items or []) if str(i["key"]) not in replaced] if row else []
    items = old + list(put)
    stage = most_urgent([i.get("stage") for i in items])
    return sync_group(
        session,
        kind=kind,
        station_id=station_id,
        month=month,
        items=items,
        stage=stage,
        known=row,
    )


def _keys(items: Sequence[dict[str, Any]] | None) -> list[str]:
    return [str(i["key"]) for i in items or []]


def _differs(
    row: ScheduleWarning | None, items: Sequence[dict[str, Any]], stage: str | None
) -> bool:
    """Whether syncing these items and stage would change the group (as read)."""
    if row is None:
        return bool(items)
    if not items:
        return row.resolved_at is None
    return row.resolved_at is not None or row.items != list(items) or row.stage != stage


def _apply(
    row: ScheduleWarning, items: list[dict[str, Any]], stage: str | None, now: datetime
) -> Change | None:
    before_keys, before_stage, was_open = _keys(row.items), row.stage, row.resolved_at is None
    if not items:
        if not was_open:
            return None
        # Resolved: the items stay as they were last, for the record; the count is 0.
        row.item_count, row.resolved_at, row.updated_at = 0, now, now
        row.message = describe(row.kind, row.month or "", row.items or [], row.stage)
        log.info("%s resolved: %s", row.kind, row.message)
        return Change(row, "resolved")
    if row.items == items and row.stage == stage and was_open:
        return None
    row.items, row.stage, row.item_count = items, stage, len(items)
    row.message = describe(row.kind, row.month or "", items, stage)
    keys = _keys(items)
    if not was_open:
        change = "reopened"
        row.resolved_at = None
        row.acked_at = row.acked_by_id = row.acked_count = None
    elif keys != before_keys:
        change = (
            "grew"
            if len(keys) > len(before_keys)
            else "shrank"
            if len(keys) < len(before_keys)
            else "changed"
        )
    elif stage != before_stage:
        change = "escalated"
    else:
        return None  # only a detail changed: the message follows, nobody is told again
    row.updated_at = now
    log.warning("%s %s: %s", row.kind, change, row.message)
    return Change(row, change)


def open_groups(
    session: Session, kind: str | Collection[str], *, for_update: bool = False
) -> list[ScheduleWarning]:
    """The unresolved groups of a kind (or kinds)."""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    stmt = select(ScheduleWarning).where(
        ScheduleWarning.kind.in_(kinds),
        ScheduleWarning.month.is_not(None),
        ScheduleWarning.resolved_at.is_(None),
    )
    return list(session.scalars(stmt.with_for_update() if for_update else stmt))


def groups_by_key(session: Session, keys: Collection[str]) -> dict[str, ScheduleWarning]:
    """The groups with these keys, read in one query (no lock)."""
    if not keys:
        return {}
    rows = session.scalars(select(ScheduleWarning).where(ScheduleWarning.dedupe_key.in_(keys)))
    return {w.dedupe_key: w for w in rows}


def raise_warning(
    session: Session,
    *,
    kind: str,
    message: str,
    dedupe_key: str,
    station_id: int | None = None,
    broadcast_id: int | None = None,
) -> ScheduleWarning | None:
    """Store a single finding (not a group); the same one (dedupe_key) is stored once."""
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
    *,
    user: User,
    station_id: int | None = None,
    kind: str | None = None,
    open_only: bool | None = None,
) -> Select[tuple[ScheduleWarning]]:
    """Warnings of the stations the user can see (one station's, when given), most
    recently changed first."""
    visible = stations.scope_to_user(select(Station.id), Station.id, user)
    stmt = (
        select(ScheduleWarning)
        .where(ScheduleWarning.station_id.in_(visible.scalar_subquery()))
        .order_by(
            func.coalesce(ScheduleWarning.updated_at, ScheduleWarning.created_at).desc(),
            ScheduleWarning.id.desc(),
        )
    )
    if station_id is not None:
        stmt = stmt.where(ScheduleWarning.station_id == station_id)
    if kind:
        stmt = stmt.where(ScheduleWarning.kind == kind)
    if open_only is True:
        stmt = stmt.where(ScheduleWarning.resolved_at.is_(None))
    elif open_only is False:
        stmt = stmt.where(ScheduleWarning.resolved_at.is_not(None))
    return stmt


def to_out_many(session: Session, rows: Sequence[ScheduleWarning]) -> list[WarningOut]:
    """Warnings as the API shows them (who acknowledged them by name)."""
    ackers = {w.acked_by_id for w in rows if w.acked_by_id is not None}
    names: dict[int, str] = {}
    if ackers:
        found = session.execute(select(User.id, User.username).where(User.id.in_(ackers)))
        names = dict(found.tuples().all())
    return [
        WarningOut(
            id=w.id,
            station_id=w.station_id,
            broadcast_id=w.broadcast_id,
            kind=w.kind,
            month=w.month,
            stage=w.stage,
            count=w.item_count,
            items=[WarningItemOut.model_validate(i) for i in w.items or []],
            by_village=[VillageCountOut.model_validate(v) for v in by_village(w.items or [])],
            message=w.message,
            created_at=w.created_at,
            updated_at=w.updated_at,
            resolved_at=w.resolved_at,
            acked_at=w.acked_at,
            acked_by=names.get(w.acked_by_id) if w.acked_by_id is not None else None,
            acked_count=w.acked_count,
            acknowledged=is_acknowledged(w),
        )
        for w in rows
    ]


def list_page(
    session: Session,
    *,
    user: User,
    page: PageParams,
    station_id: int | None = None,
    kind: str | None = None,
    open_only: bool | None = None,
) -> WarningsPage:
    """One page of warnings; while no scheduler runs, every answer starts with the
    computed "scheduler not running since …" warning (whatever the filters: nothing
    else on the list is being kept up to date meanwhile)."""
    down = status.down_warning(session, now=clock.now())
    stmt = list_query(user=user, station_id=station_id, kind=kind, open_only=open_only)
    first = 1 if down is not None and page.offset == 0 else 0
    shift = 1 if down is not None and page.offset > 0 else 0
    inner = PageParams(limit=page.limit - first, offset=page.offset - shift)
    if inner.limit:
        rows, total = paginate(session, stmt, inner)
    else:  # a page of one: the scheduler's warning only
        rows = []
        counted = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = session.scalar(counted) or 0
    items = ([down] if first and down else []) + to_out_many(session, rows)
    return WarningsPage(
        items=items,
        total=total + (1 if down is not None else 0),
        limit=page.limit,
        offset=page.offset,
        scheduler_running=down is None,
    )


def acknowledge(session: Session, *, warning_id: int, user: User) -> ScheduleWarning:
    """Record who acknowledged the warning, when, and at what count; 404 for a warning
    that does not exist or belongs to a station the user cannot see."""
    warning = session.scalars(
        select(ScheduleWarning).where(ScheduleWarning.id == warning_id).with_for_update()
    ).one_or_none()
    if (
        warning is None
        or warning.station_id is None
        or not stations.can_see_station(user, warning.station_id)
    ):
        raise NotFound(f"warning {warning_id} does not exist")
    warning.acked_at = clock.now()
    warning.acked_by_id = user.id
    warning.acked_count = warning.item_count
    session.flush()
    audit.record(
        session,
        actor=user,
        action="warning.ack",
        entity="warning",
        entity_id=warning.id,
        after={"count": warning.item_count, "kind": warning.kind, "month": warning.month},
    )
    return warning


def is_acknowledged(warning: ScheduleWarning) -> bool:
    """Acknowledged, and not grown since."""
    return warning.acked_at is not None and warning.item_count <= (warning.acked_count or 0)


def payload(warning: ScheduleWarning, change: str | None = None) -> dict[str, Any]:
    """A warning as the webhook posts it."""
    return {
        "id": warning.id,
        "kind": warning.kind,
        "change": change,
        "station_id": warning.station_id,
        "month": warning.month,
        "stage": warning.stage,
        "count": warning.item_count,
        "by_village": by_village(warning.items or []),
        "message": warning.message,
        "broadcast_id": warning.broadcast_id,
        "created_at": warning.created_at.isoformat(),
        "updated_at": warning.updated_at.isoformat() if warning.updated_at else None,
        "resolved_at": warning.resolved_at.isoformat() if warning.resolved_at else None,
    }


def notify(changes: Sequence[Change | ScheduleWarning | None]) -> None:
    """Post each change (after it is committed) as a message of its own; never raises."""
    for c in changes:
        if c is None:
            continue
        body = payload(c.warning, c.change) if isinstance(c, Change) else payload(c, "raised")
        notify_webhook([body])


def notify_webhook(payloads: list[dict[str, Any]]) -> None:
    """POST warnings to the configured webhook (after they are committed); never raises."""
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
