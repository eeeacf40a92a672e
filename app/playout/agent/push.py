"""The agent's push subscription: an MQTT connection to loaxa's broker, in a thread of its own.

It asks the server how to reach the broker (GET /api/v1/playout/push: the URL, the device's
login name, its topics; the password is the device token), connects, subscribes to its
topics and, for every message, notes what changed (``alert``, ``playlist``, ``token``) and
wakes the agent's loop, which then polls that at once (app.playout.agent.loop). It never
plays anything itself and no content comes through the broker: the message only says
"ask now".

* while connected, the loop polls only as a safety net (emergencies every
  ``push_emergency_poll_seconds``, playlists every ``push_playlist_poll_seconds``);
* when the broker cannot be reached or drops the connection, ``state`` becomes
  ``polling``: the loop polls as it always did, and this thread tries again after a pause
  that doubles from ``push_retry_base_seconds`` to ``push_retry_max_seconds``;
* a refused login (a new token, a broker that lost its logins) asks the server to make the
  login again (``?refresh=true``) before the next try;
* a server without push (404) gives ``off``; it is asked again every OFF_RECHECK_S;
* a malformed message is logged and ignored.

The state is reported to the server with the agent's other telemetry (X-Loaxa-Push).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from app.playout.agent.client import ServerRefused, ServerUnavailable

log = logging.getLogger("loaxa.agent.push")

CONNECTED, POLLING, OFF = "connected", "polling", "off"
OFF_RECHECK_S = 600.0
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_S = 30


Kind = Literal["alert", "playlist", "token"]
KINDS: tuple[Kind, ...] = ("alert", "playlist", "token")


class BadMessage(ValueError):
    """A message that is not loaxa's (ignored and logged)."""


def parse(payload: bytes) -> tuple[Kind, int]:
    """(kind, version) of a message (app.push.topics writes them); BadMessage otherwise."""
    if len(payload) > 4096:
        raise BadMessage(f"{len(payload)} bytes is too long")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("v") != 1:
        raise BadMessage("not a version 1 loaxa message")
    kind, version = body.get("kind"), body.get("version")
    if kind not in KINDS:
        raise BadMessage(f"unknown kind {kind!r}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadMessage(f"version {version!r} is not a number")
    return kind, version


class PushInfoError(ValueError):
    """The server's push answer is not usable."""


def _check_info(info: dict[str, Any]) -> tuple[str, int, bool, str, list[str]]:
    url, name, wanted = info.get("url"), info.get("username"), info.get("topics")
    if not isinstance(url, str) or not isinstance(name, str) or not isinstance(wanted, list):
        raise PushInfoError(f"unexpected push answer {info!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise PushInfoError(f"unsupported broker URL {url!r}")
    if not wanted or not all(isinstance(t, str) and t for t in wanted):
        raise PushInfoError(f"bad topics {wanted!r}")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls, name, wanted


class Push:
    """Call `start()`; read `state`, `wait()` for a message, `take()` what changed."""

    def __init__(
        self,
        fetch_info: Callable[[bool], dict[str, Any] | None],
        token: Callable[[], str],
        *,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
    ) -> None:
        self._fetch_info = fetch_info
        self._token = token
        self.retry_base, self.retry_max = retry_base, retry_max
        self.state = POLLING
        self.messages = 0
        self.ignored = 0
        self._pending: set[Kind] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED

    def start(self) -> Push:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loaxa-agent-push", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds; True as soon as a message is waiting."""
        return self._wake.wait(timeout)

    def take(self) -> set[Kind]:
        """What changed since the last call (and clear it)."""
        with self._lock:
            taken, self._pending = self._pending, set()
            self._wake.clear()
        return taken

    # The thread.

    def _run(self) -> None:
        pause = self.retry_base
        refresh = False
        while not self._stop.is_set():
            try:
                info = self._fetch_info(refresh)
            except (ServerUnavailable, ServerRefused) as exc:
                self._set_state(POLLING, f"cannot ask the server how to reach the broker ({exc})")
                self._stop.wait(pause)
                pause = min(pause * 2, self.retry_max)
                continue
            if info is None:
                self._set_state(OFF, "the server offers no push; polling")
                self._stop.wait(OFF_RECHECK_S)
                continue
            try:
                target = _check_info(info)
            except PushInfoError as exc:
                self._set_state(POLLING, str(exc))
                self._stop.wait(pause)
                pause = min(pause * 2, self.retry_max)
                continue
            outcome = self._session(*target)
            refresh = outcome == "refused"
            if outcome == "served":
                pause = self.retry_base
            self._set_state(POLLING, "push broker connection lost; polling until it is back")
            self._stop.wait(pause)
            pause = min(pause * 2, self.retry_max)

    def _set_state(self, state: str, why: str) -> None:
        if state != self.state:
            (log.info if state == CONNECTED else log.warning)("%s", why)
        self.state = state

    def _session(self, host: str, port: int, tls: bool, name: str, wanted: list[str]) -> str:
        """One connection, until it ends: "served" (it worked a while), "refused" (the
        broker refused the login), "failed" (no connection)."""
        done = threading.Event()
        result: dict[str, Any] = {}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{uuid.uuid4().hex[:8]}",
            clean_session=True,
        )
        client.username_pw_set(name, self._token())
        if tls:
            client.tls_set()

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                result["refused"] = str(reason)
                done.set()
                return
            c.subscribe([(t, 1) for t in wanted])

        def on_subscribe(_c: Any, _u: Any, _mid: Any, codes: Any, _p: Any) -> None:
            refused = [t for t, code in zip(wanted, codes, strict=False) if code.is_failure]
            if refused:
                log.error("the broker refused the subscription to %s", ", ".join(refused))
            if len(refused) < len(wanted):
                self._set_state(CONNECTED, f"push connected to {host}:{port}")
                result["served"] = True

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                kind, _version = parse(bytes(msg.payload))
            except BadMessage as exc:
                self.ignored += 1
                log.warning("ignored a message on %s: %s", msg.topic, exc)
                return
            self.messages += 1
            with self._lock:
                self._pending.add(kind)
                self._wake.set()

        def on_disconnect(_c: Any, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
            done.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.on_disconnect = on_disconnect
        try:
            client.connect(host, port, keepalive=KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            self._set_state(POLLING, f"push broker {host}:{port} unreachable ({exc}); polling")
            return "failed"
        client.loop_start()
        try:
            while not done.wait(0.2) and not self._stop.is_set():
                pass
        finally:
            client.disconnect()
            client.loop_stop()
        if "refused" in result:
            log.warning("the push broker refused the login (%s)", result["refused"])
            return "refused"
        return "served" if result.get("served") else "failed"
