"""What devices must learn, written to the outbox in the transaction that changed it.

The listener (registered by `install()` where loaxa starts: the web app, the scheduler)
turns each app.playout.signals change into a push_outbox row in the caller's session, so
the message exists exactly when the change does (a rolled-back request publishes nothing)
and a request never waits for, nor fails because of, the broker. After the commit the
publisher of this process is woken (app.push.publisher); publishers elsewhere find the row
at their next look.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import delete, event
from sqlalchemy.orm import Session

from app import clock
from app.playout import signals
from app.push import topics
from app.push.models import PushLogin, PushOutbox

log = logging.getLogger("loaxa.push")

LOGOUT = "logout"
PUBLISH = "publish"

# Called after a commit that wrote outbox rows (the publisher's wake-up), in that thread.
_wakers: list[Callable[[], None]] = []
_last_version = 0
_version_lock = threading.Lock()


def next_version() -> int:
    """A message version: milliseconds since the epoch, strictly increasing in a process."""
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns() // 1_000_000)
        return _last_version


def on_commit(waker: Callable[[], None]) -> None:
    if waker not in _wakers:
        _wakers.append(waker)


def forget_commit(waker: Callable[[], None]) -> None:
    if waker in _wakers:
        _wakers.remove(waker)


def _wake_after_commit(session: Session) -> None:
    if session.info.get("push_wake"):
        return
    session.info["push_wake"] = True

    def wake(s: Session) -> None:
        s.info.pop("push_wake", None)
        for waker in list(_wakers):
            waker()

    event.listen(session, "after_commit", wake, once=True)
    event.listen(session, "after_rollback", lambda s: s.info.pop("push_wake", None), once=True)


def _publish(session: Session, topic: str, payload: str, *, retain: bool = False) -> None:
    session.add(
        PushOutbox(
            kind=PUBLISH, topic=topic, payload=payload, retain=retain, created_at=clock.now()
        )
    )


def record(session: Session, change: signals.DeviceChange) -> None:
    """The signals listener: the change's outbox rows, in the caller's transaction."""
    version = next_version()
    if change.kind == "alert" and change.station_id is not None:
        _publish(
            session,
            topics.alert_topic(change.station_id),
            topics.message("alert", version, station_id=change.station_id),
            retain=True,
        )
    elif change.kind == "playlist" and change.station_id is not None:
        _publish(
            session,
            topics.playlist_topic(change.station_id, change.village_id),
            topics.message(
                "playlist", version, station_id=change.station_id, village_id=change.village_id
            ),
        )
    elif change.kind == "token" and change.device_id is not None:
        from app.devices.models import Device

        device = session.get(Device, change.device_id)
        if device is not None:
            _publish(
                session,
                topics.device_topic(device.station_id, device.id),
                topics.message("token", version, device_id=device.id),
            )
        # The login goes with the token; a newer login (made after this commit) is kept.
        session.execute(delete(PushLogin).where(PushLogin.device_id == change.device_id))
        session.add(PushOutbox(kind=LOGOUT, device_id=change.device_id, created_at=clock.now()))
    else:
        return
    _wake_after_commit(session)


def install() -> None:
    """Write every device change to the outbox from now on (idempotent)."""
    signals.listen(record)


def uninstall() -> None:
    signals.forget(record)
