"""Live sessions: an official speaks and the villages hear it within seconds.

A session is a mount of the station's hub, ``/live-<station id>-<random>``, open until
someone ends it ("Kết thúc", DELETE /api/v1/live/{id}) or its source has been gone for
SOURCE_GONE (the hub watches, app.streams.hub). Who may feed it: the session's own source
credentials (shown once, when it opens: any Icecast source client, or `loaxa-agent live`),
or loaxa itself (the console's "Nói trực tiếp": the browser's microphone over a WebSocket,
fed on by ffmpeg with the hub's source password). Icecast asks loaxa about every source
and listener of a live mount (``stream_auth`` and ``listener_add``, app.streams.config), so
a session opens and closes without touching Icecast's configuration.

Devices in scope (the emergency rule, app.playout.scope) learn of it from their emergency
poll, where it is an item of ``kind: "live"`` with its ``stream_url``; they switch to it as
to an emergency: an ``emergency`` session pre-empts everything, a ``normal`` one the
schedule but not an emergency. One open session per station.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audit import service as audit
from app.errors import Conflict, Invalid
from app.playout import signals
from app.playout.models import LiveSession
from app.stations import service as stations
from app.stations.models import Station, Village
from app.stations.network import local_today, network_on
from app.streams.mounts import hub_url, mount_secret

Priority = Literal["normal", "emergency"]
LIVE_PREFIX = "/live-"
SOURCE_GONE = timedelta(seconds=60)
# The user name loaxa's own feeder (the console's WebSocket) and recorder use on the hub.
LOAXA_SOURCE_USER = "loaxa"
RECORDER_USER = "loaxa-recorder"
ENDED_BY_PERSON = "Kết thúc"
ENDED_SOURCE_GONE = "nguồn phát mất tín hiệu quá 60 giây"


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def is_live_mount(mount: str) -> bool:
    return mount.startswith(LIVE_PREFIX)


def open_session(session: Session, station_id: int) -> LiveSession | None:
    """The station's open live session, if any."""
    return session.scalar(
        select(LiveSession)
        .where(LiveSession.station_id == station_id, LiveSession.ended_at.is_(None))
        .order_by(LiveSession.id.desc())
        .limit(1)
    )


def _villages(session: Session, station_id: int, village_ids: Sequence[int] | None) -> Any:
    if village_ids is None:
        return None
    villages = sorted(set(village_ids))
    found = set(
        session.scalars(
            select(Village.id).where(Village.station_id == station_id, Village.id.in_(villages))
        )
    )
    missing = [v for v in villages if v not in found]
    if missing:
        raise Invalid(
            f"unknown village id(s) for station {station_id}: {', '.join(map(str, missing))}"
        )
    return villages


def _snapshot(s: LiveSession) -> dict[str, Any]:
    return {
        "station_id": s.station_id,
        "title": s.title,
        "priority": s.priority,
        "village_ids": s.village_ids,
        "network": s.network,
        "mount": s.mount,
        "ended_at": s.ended_at.isoformat() if s.ended_at else None,
        "end_reason": s.end_reason,
    }


def create_session(
    session: Session,
    *,
    station_id: int,
    title: str,
    priority: Priority,
    village_ids: Sequence[int] | None = None,
    actor: User | None = None,
) -> tuple[LiveSession, str]:
    """Open a live session; (the session, its source password, shown only now).

    409 while the station has another one open (checked under the station's row lock, so
    two at once cannot both open)."""
    station = stations.get_station(session, station_id, user=actor)
    session.execute(select(Station.id).where(Station.id == station.id).with_for_update())
    other = open_session(session, station.id)
    if other is not None:
        raise Conflict(
            f"station {station.id} already has live session {other.id} ({other.title!r}) "
            "open: end it first"
        )
    villages = _villages(session, station.id, village_ids)
    password = secrets.token_urlsafe(18)
    now = clock.now()
    live = LiveSession(
        station_id=station.id,
        title=title.strip(),
        priority=priority,
        village_ids=villages,
        network=network_on(station, local_today(station, now)),
        mount=f"{LIVE_PREFIX}{station.id}-{secrets.token_hex(6)}",
        source_username=f"live-{station.id}",
        source_password_hash=password_hash(password),
        created_by_id=actor.id if actor else None,
        created_at=now,
    )
    session.add(live)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="live.start",
        entity="live_session",
        entity_id=live.id,
        after=_snapshot(live),
    )
    signals.alert_changed(session, live.station_id)
    return live, password


def get_session(
    session: Session, live_id: int, *, user: User | None = None, for_update: bool = False
) -> LiveSession:
    """The session, or 404 (also when it belongs to a station the user cannot see)."""
    return stations.get_in_station(
        session, LiveSession, live_id, what="live session", user=user, for_update=for_update
    )


def end_session(
    session: Session,
    live: LiveSession,
    *,
    actor: User | None = None,
    reason: str = ENDED_BY_PERSON,
    at: datetime | None = None,
) -> LiveSession:
    """End it: devices go back to their schedule at their next poll. Twice: no change."""
    if live.ended_at is None:
        before = _snapshot(live)
        live.ended_at = at or clock.now()
        live.end_reason = reason
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="live.end",
            entity="live_session",
            entity_id=live.id,
            before=before,
            after=_snapshot(live),
        )
        signals.alert_changed(session, live.station_id)
    return live


def list_query(*, user: User, station_id: int | None = None) -> Select[tuple[LiveSession]]:
    stmt = select(LiveSession).order_by(LiveSession.created_at.desc(), LiveSession.id.desc())
    stmt = stations.scope_to_user(stmt, LiveSession.station_id, user)
    if station_id is not None:
        stmt = stmt.where(LiveSession.station_id == station_id)
    return stmt


# The hub's questions (app.streams.router).


def check_source(
    session: Session, *, mount: str, user: str | None, password: str | None
) -> str | None:
    """None when this source may feed `mount`, else why not (Icecast's log)."""
    live = session.scalar(select(LiveSession).where(LiveSession.mount == mount))
    if live is None:
        return f"no live session on {mount}"
    if live.ended_at is not None:
        return f"live session {live.id} has ended"
    if user == LOAXA_SOURCE_USER:
        if password and hmac.compare_digest(password, mount_secret("source", mount)):
            return None
        return "wrong source user name or password"
    if user != live.source_username or not password:
        return "wrong source user name or password"
    if not hmac.compare_digest(password_hash(password), live.source_password_hash):
        return "wrong source user name or password"
    return None


def stream_url(base_url: str, live: LiveSession) -> str:
    """The live mount as devices reach it (they add their token to listen)."""
    return hub_url(base_url) + live.mount


def source_url(base_url: str, live: LiveSession) -> str:
    """Where a source client sends the session (Icecast's own protocol over http)."""
    return hub_url(base_url)


def live_document(
    *,
    live_id: int,
    title: str,
    priority: str,
    mount: str,
    created_at: datetime,
    base_url: str,
) -> dict[str, Any]:
    """A live session as an item of the device's emergency poll."""
    return {
        "kind": "live",
        "id": live_id,
        "title": title,
        "priority": priority,
        "stream_url": hub_url(base_url) + mount,
        "created_at": created_at.isoformat(),
    }
