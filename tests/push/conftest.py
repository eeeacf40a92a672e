"""A real Mosquitto with loaxa's configuration (dynamic security, no anonymous clients) on a
free loopback port, and loaxa's publisher talking to it from this process."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from app.push import broker as broker_module
from app.push import outbox, publisher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """The test's broker: stop() and start() it again on the same port and files."""

    port: int
    password: str
    process: broker_module.Mosquitto

    def start(self) -> None:
        self.process.start()
        assert self.process.wait_ready(), "mosquitto did not come up"

    def stop(self) -> None:
        self.process.stop()

    @property
    def url(self) -> str:
        return f"mqtt://{broker_module.ADMIN_USERNAME}:{self.password}@127.0.0.1:{self.port}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    port = free_port()
    password = secrets.token_urlsafe(16)
    layout = broker_module.Layout(
        port=port, bind="127.0.0.1", folder=tmp_path / "mosquitto", run_as=None
    )
    made = Broker(port, password, broker_module.Mosquitto(layout, password))
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def push(database_url: str, broker: Broker) -> Iterator[publisher.Publisher]:
    """Push on, LOAXA_MQTT_URL at the test's broker, and this process's publisher running."""
    from app.config import get_settings

    saved = {k: os.environ.get(k) for k in ("LOAXA_MQTT_ENABLED", "LOAXA_MQTT_URL")}
    os.environ["LOAXA_MQTT_ENABLED"] = "1"
    os.environ["LOAXA_MQTT_URL"] = broker.url
    get_settings.cache_clear()
    outbox.install()
    running = publisher.start(broker_module.target(), look_every=0.2, retry_max=1.0)
    deadline = time.monotonic() + 10
    while not running.connected:
        assert time.monotonic() < deadline, "the publisher did not connect"
        time.sleep(0.05)
    try:
        yield running
    finally:
        publisher.stop()
        outbox.uninstall()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Client:
    """A plain MQTT client (a device, or someone pretending to be one)."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port = port
        self.connack: Any = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subacks: list[list[Any]] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self._suback = threading.Event()
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{username}-{secrets.token_hex(4)}"
        )
        self.mqtt.username_pw_set(username, password)
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_disconnect = lambda *a: self.disconnected.set()
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_message = lambda _c, _u, m: self.messages.append(m)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self.connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, codes: Any, _p: Any) -> None:
        self.subacks.append(list(codes))
        self._suback.set()

    def connect(self) -> bool:
        """Connect; whether the broker accepted the login."""
        self.mqtt.connect("127.0.0.1", self.port, keepalive=10)
        self.mqtt.loop_start()
        assert self.connected.wait(5), "no CONNACK"
        return not self.connack.is_failure

    def subscribe(self, topic: str) -> bool:
        """Subscribe; whether the broker granted it."""
        self._suback.clear()
        self.mqtt.subscribe(topic, qos=1)
        assert self._suback.wait(5), "no SUBACK"
        return not self.subacks[-1][0].is_failure

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
