"""The publisher: drains the outbox to the broker, and makes and drops device logins.

One thread per web process (started by the app's lifespan when LOAXA_MQTT_ENABLED), with
its own MQTT connection as loaxa's admin login. It wakes when this process commits a change
(app.push.outbox) and otherwise looks at the outbox every LOOK_EVERY_S, so changes written
by other processes (the scheduler, other workers) go out too. Several publishers share the
outbox safely: each claims a batch of rows (``claimed_until``, a value of its own) before
sending it, and a claim that is not finished in CLAIM_S is free again.

Messages are QoS 1 and the rows are marked sent only when the broker acknowledged them;
when the broker is down nothing is lost: the rows wait (retried after a pause that doubles
up to MAX_RETRY_S), the devices poll meanwhile, and a request never waits for any of it.

Device logins (dynamic-security commands on ``$CONTROL/dynamic-security/v1``): made with
the device token as password when a token is issued (the plain token is known then, and only
in memory: it is queued in this process, never written anywhere) or when a device asks how to
reach the broker (GET /api/v1/playout/push, app.push.logins); dropped from the outbox's
``logout`` rows when its token ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import and_, delete, or_, select, update

from app import clock, metrics
from app.db import unit_of_work
from app.push import outbox, topics
from app.push.broker import Target
from app.push.models import PushLogin, PushOutbox

log = logging.getLogger("loaxa.push")

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
LOOK_EVERY_S = 1.0
BATCH = 500
CLAIM_S = 30.0
ACK_TIMEOUT_S = 10.0
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 60.0
KEEP_SENT = timedelta(days=1)


def username(device_id: int) -> str:
    return f"device-{device_id}"


def login_commands(
    device_id: int, password: str, topic_list: list[str], correlation: str
) -> dict[str, Any]:
    """Drop any earlier login of the device, then make it again with exactly these topics."""
    name = username(device_id)
    acls = [
        {"acltype": "subscribeLiteral", "topic": t, "priority": 0, "allow": True}
        for t in topic_list
    ]
    return {
        "commands": [
            {"command": "deleteClient", "username": name},
            {"command": "deleteRole", "rolename": name},
            {"command": "createRole", "rolename": name, "acls": acls},
            {
                "command": "createClient",
                "username": name,
                "password": password,
                "roles": [{"rolename": name, "priority": 0}],
                "correlationData": correlation,
            },
        ]
    }


def logout_commands(device_id: int, correlation: str) -> dict[str, Any]:
    name = username(device_id)
    return {
        "commands": [
            {"command": "deleteClient", "username": name},
            {"command": "deleteRole", "rolename": name, "correlationData": correlation},
        ]
    }


@dataclass
class LoginRequest:
    """A device login to make, with the plain token (kept in memory only)."""

    device_id: int
    station_id: int
    village_id: int | None
    token: str
    token_hash: str
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class Publisher:
    """The thread that talks to the broker for this process."""

    def __init__(
        self,
        target: Target,
        *,
        look_every: float = LOOK_EVERY_S,
        retry_max: float = MAX_RETRY_S,
    ) -> None:
        self.target = target
        self.look_every = look_every
        self.retry_max = retry_max
        self.connected = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._logins: queue.Queue[LoginRequest] = queue.Queue()
        self._responses: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._retry_s = FIRST_RETRY_S
        self._purged_at = 0.0

    # Outside the thread.

    def start(self) -> Publisher:
        outbox.on_commit(self.wake)
        self._thread = threading.Thread(target=self._run, name="loaxa-push", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        outbox.forget_commit(self.wake)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self._disconnect()

    def wake(self) -> None:
        self._wake.set()

    def request_login(self, request: LoginRequest) -> LoginRequest:
        self._logins.put(request)
        self._wake.set()
        return request

    # The connection.

    def _connect(self) -> bool:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"loaxa-publisher-{uuid.uuid4().hex[:12]}",
            clean_session=True,
        )
        client.username_pw_set(self.target.username, self.target.password)
        if self.target.tls:
            client.tls_set()
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        up = threading.Event()
        refused: list[str] = []

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            else:
                c.subscribe(RESPONSE_TOPIC, qos=1)
                self.connected = True
            up.set()

        def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if self.connected:
                log.warning("push broker connection lost (%s)", reason)
            self.connected = False

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = self._on_response
        try:
            client.connect(self.target.host, self.target.port, keepalive=30)
        except OSError as exc:
            self._failed_connect(f"{type(exc).__name__}: {exc}")
            return False
        client.loop_start()
        up.wait(5)
        if not self.connected:
            client.loop_stop()
            client.disconnect()
            self._failed_connect(refused[0] if refused else "no answer")
            return False
        # paho reconnects by itself after a drop; the loop thread keeps running.
        client.reconnect_delay_set(min_delay=1, max_delay=int(max(self.retry_max, 1)))
        self._client = client
        self._retry_s = FIRST_RETRY_S
        log.info("push broker connected at %s:%d", self.target.host, self.target.port)
        return True

    def _failed_connect(self, why: str) -> None:
        if self._retry_s == FIRST_RETRY_S:
            log.warning(
                "push broker %s:%d unreachable (%s); devices poll meanwhile, will retry",
                self.target.host,
                self.target.port,
                why,
            )
        self._retry_s = min(self._retry_s * 2, self.retry_max)

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self.connected = False

    def _on_response(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
            responses = body["responses"]
        except (ValueError, KeyError, TypeError):
            return
        for r in responses:
            corr = r.get("correlationData") if isinstance(r, dict) else None
            with self._lock:
                waiting = self._responses.pop(corr, None) if corr else None
            if waiting is not None:
                waiting[1].extend(responses)
                waiting[0].set()

    def _control(self, commands: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Send dynamic-security commands; their responses (None: no answer in time)."""
        assert self._client is not None
        corr = uuid.uuid4().hex
        event: threading.Event = threading.Event()
        found: list[dict[str, Any]] = []
        with self._lock:
            self._responses[corr] = (event, found)
        self._client.publish(CONTROL_TOPIC, json.dumps(commands(corr)), qos=1)
        if not event.wait(ACK_TIMEOUT_S):
            with self._lock:
                self._responses.pop(corr, None)
            return None
        return found

    # The loop.

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._client is None and not self._connect():
                self._wake.wait(self._retry_s)
                self._wake.clear()
                continue
            self._wake.clear()
            try:
                if self.connected:
                    self._make_logins()
                    self._drain()
                    self._purge()
            except Exception:  # a database hiccup must not end the thread
                log.exception("push publisher step failed; carrying on")
            self._wake.wait(self.look_every)

    def _make_logins(self) -> None:
        while self.connected:
            try:
                request = self._logins.get_nowait()
            except queue.Empty:
                return
            wanted = topics.device_topics(request.station_id, request.village_id, request.device_id)
            answer = self._control(
                partial(login_commands, request.device_id, request.token, wanted)
            )
            made = answer is not None and not any(
                a.get("command") == "createClient" and a.get("error") for a in answer
            )
            if made:
                with unit_of_work() as session:
                    row = session.get(PushLogin, request.device_id)
                    if row is None:
                        row = PushLogin(device_id=request.device_id)
                        session.add(row)
                    row.token_hash = request.token_hash
                    row.station_id = request.station_id
                    row.village_id = request.village_id
                    row.made_at = clock.now()
                metrics.PUSH_LOGINS.labels("made").inc()
            else:
                log.warning("broker login for device %d not made: %s", request.device_id, answer)
                metrics.PUSH_LOGINS.labels("failed").inc()
            request.ok = made
            request.done.set()

    def _claim(self) -> list[PushOutbox]:
        now = clock.now()
        # The claim's own value: the rows this publisher took are those that carry it.
        token = now + timedelta(seconds=CLAIM_S, microseconds=uuid.uuid4().int % 1_000_000)
        due = (
            PushOutbox.sent_at.is_(None),
            or_(PushOutbox.not_before.is_(None), PushOutbox.not_before <= now),
            or_(PushOutbox.claimed_until.is_(None), PushOutbox.claimed_until < now),
        )
        # A read first: most looks find nothing, and take no write lock for it (SQLite).
        with unit_of_work(write=False) as session:
            ids = list(
                session.scalars(
                    select(PushOutbox.id).where(*due).order_by(PushOutbox.id).limit(BATCH)
                )
            )
        if not ids:
            return []
        with unit_of_work() as session:
            session.execute(
                update(PushOutbox)
                .where(PushOutbox.id.in_(ids), *due)
                .values(claimed_until=token)
                .execution_options(synchronize_session=False)
            )
        with unit_of_work(write=False) as session:
            rows = list(
                session.scalars(
                    select(PushOutbox)
                    .where(PushOutbox.claimed_until == token)
                    .order_by(PushOutbox.id)
                )
            )
            session.expunge_all()
        return rows

    def _drain(self) -> None:
        while self.connected and not self._stop.is_set():
            rows = self._claim()
            if not rows:
                return
            sent: list[int] = []
            failed: list[PushOutbox] = []
            waiting: list[tuple[PushOutbox, mqtt.MQTTMessageInfo]] = []
            for row in rows:
                if row.kind == outbox.PUBLISH and row.topic and row.payload is not None:
                    assert self._client is not None
                    info = self._client.publish(row.topic, row.payload, qos=1, retain=row.retain)
                    waiting.append((row, info))
                elif row.kind == outbox.LOGOUT and row.device_id is not None:
                    (sent if self._logout(row) else failed).append(row.id)  # type: ignore[arg-type]
                else:
                    sent.append(row.id)  # nothing to do with it
            deadline = time.monotonic() + ACK_TIMEOUT_S
            for row, info in waiting:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
                if info.is_published():
                    sent.append(row.id)
                    metrics.PUSH_PUBLISHED.labels(_kind(row.topic)).inc()
                else:
                    failed.append(row)
            self._settle(sent, failed)
            if failed:
                return

    def _logout(self, row: PushOutbox) -> bool:
        assert row.device_id is not None
        with unit_of_work(write=False) as session:
            newer = session.scalar(
                select(PushLogin.made_at).where(
                    and_(PushLogin.device_id == row.device_id, PushLogin.made_at > row.created_at)
                )
            )
        if newer is not None:
            return True  # a newer login replaced it already (its commands dropped the old one)
        answer = self._control(lambda corr: logout_commands(row.device_id or 0, corr))
        if answer is None:
            return False
        metrics.PUSH_LOGINS.labels("dropped").inc()
        return True

    def _settle(self, sent: list[int], failed: list[Any]) -> None:
        now = clock.now()
        with unit_of_work() as session:
            if sent:
                session.execute(
                    update(PushOutbox)
                    .where(PushOutbox.id.in_(sent))
                    .values(sent_at=now, claimed_until=None)
                    .execution_options(synchronize_session=False)
                )
            for item in failed:
                row_id = item if isinstance(item, int) else item.id
                attempts = 0 if isinstance(item, int) else item.attempts
                pause = min(FIRST_RETRY_S * 2**attempts, self.retry_max)
                session.execute(
                    update(PushOutbox)
                    .where(PushOutbox.id == row_id)
                    .values(
                        attempts=PushOutbox.attempts + 1,
                        not_before=now + timedelta(seconds=pause),
                        claimed_until=None,
                    )
                    .execution_options(synchronize_session=False)
                )
        if failed:
            metrics.PUSH_FAILURES.inc(len(failed))
            log.warning("%d push message(s) not acknowledged; will retry", len(failed))

    def _purge(self) -> None:
        if time.monotonic() - self._purged_at < 600:
            return
        self._purged_at = time.monotonic()
        with unit_of_work() as session:
            session.execute(
                delete(PushOutbox).where(
                    PushOutbox.sent_at.is_not(None), PushOutbox.sent_at < clock.now() - KEEP_SENT
                )
            )


def _kind(topic: str | None) -> str:
    if not topic:
        return "other"
    last = topic.rsplit("/", 1)[-1]
    if last in ("alert", "playlist"):
        return last
    return "token" if "/devices/" in topic else "other"


_current: Publisher | None = None


def current() -> Publisher | None:
    """This process's publisher, when one runs."""
    return _current


def start(target: Target, **kwargs: Any) -> Publisher:
    """Start this process's publisher (stopping an earlier one)."""
    global _current
    if _current is not None:
        _current.stop()
    _current = Publisher(target, **kwargs).start()
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.stop()
        _current = None
