"""Device logins on the push broker: made with the device token as password, at the moment
the plain token is known (issued, or presented by the device), never stored by loaxa."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import unit_of_work
from app.devices.models import Device
from app.errors import NotFound
from app.push import broker, publisher, topics
from app.push.models import PushLogin

LOGIN_WAIT_S = 5.0


def issued(session: Session, device: Device, token: str) -> None:
    """A token was issued: make the device's login once the transaction commits (queued in
    this process; when it cannot be made now, the device's next GET /playout/push does)."""
    if not get_settings().mqtt_enabled:
        return
    request = publisher.LoginRequest(
        device_id=device.id,
        station_id=device.station_id,
        village_id=device.village_id,
        token=token,
        token_hash=device.token_hash,
    )

    def after_commit(_s: Session) -> None:
        current = publisher.current()
        if current is not None:
            current.request_login(request)

    event.listen(session, "after_commit", after_commit, once=True)


def push_info(*, token: str, token_hash: str, host: str | None, refresh: bool) -> dict[str, Any]:
    """How the calling device reaches the broker; its login is made first when it has none
    for this token and scope (a device from before push, or ``refresh`` after the broker
    refused it). 404 when push is off on this server (the device then polls)."""
    if not get_settings().mqtt_enabled:
        raise NotFound("push is not enabled on this server; poll")
    from app.devices.service import device_by_token

    with unit_of_work(write=False) as session:
        device = device_by_token(session, token_hash=token_hash)
        login = session.get(PushLogin, device.id)
        current = None if login is None else (login.token_hash, login.station_id, login.village_id)
    wanted = topics.device_topics(device.station_id, device.village_id, device.id)
    if refresh or current != (token_hash, device.station_id, device.village_id):
        running = publisher.current()
        if running is not None:
            request = running.request_login(
                publisher.LoginRequest(
                    device_id=device.id,
                    station_id=device.station_id,
                    village_id=device.village_id,
                    token=token,
                    token_hash=token_hash,
                )
            )
            request.done.wait(LOGIN_WAIT_S)
    return {
        "url": broker.device_url(host),
        "username": publisher.username(device.id),
        "topics": wanted,
    }
