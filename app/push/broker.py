"""`loaxa broker`: the push broker, Mosquitto 2 with its dynamic-security plugin, run by loaxa.

Like the stream hub (app.streams.hub) it is a part of `loaxa up` and a service of
docker-compose: loaxa writes the configuration and starts ``mosquitto`` as its child, on
LOAXA_MQTT_PORT (1884; never the machine's own broker on 1883), and exits non-zero when it
does not come up or dies, so that `loaxa up` restarts it.

What the configuration holds, and why:

* one listener, no anonymous clients: every client logs in;
* the dynamic-security plugin keeps the logins and their ACLs in ``dynamic-security.json``
  (in the broker's folder, changed by the plugin itself). loaxa writes the file once, with
  its own admin login (``loaxa``, a random password kept in ``<data dir>/mosquitto/
  secrets.json``) allowed to manage the plugin (``$CONTROL/dynamic-security/#``) and to
  publish under ``loaxa/``; device logins are added and removed by the publisher at run
  time (app.push.publisher). The default ACL denies publishing and subscribing: a device's
  role allows subscribing to its own topics only (app.push.topics.device_topics);
* persistence on, so that the retained alert state and the plugin's logins outlive a
  restart;
* as root, Mosquitto drops to the ``mosquitto`` user (its Debian default), so its folder
  belongs to that user.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.config import get_settings

log = logging.getLogger("loaxa.broker")

ADMIN_USERNAME = "loaxa"
ADMIN_ROLE = "loaxa"
BROKER_USER = "mosquitto"  # what Debian's package creates
READY_TIMEOUT_S = 15.0
PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
_ITERATIONS = 101  # what mosquitto_ctrl uses


@dataclass(frozen=True)
class Target:
    """Where loaxa publishes, and its admin login there."""

    host: str
    port: int
    username: str
    password: str
    own: bool  # the broker loaxa runs itself
    tls: bool = False  # mqtts://


def broker_dir() -> Path:
    return get_settings().data_dir / "mosquitto"


def admin_password(folder: Path | None = None) -> str:
    """loaxa's admin password on its own broker, made (random) on first use."""
    folder = folder or broker_dir()
    path = folder / "secrets.json"
    if path.exists():
        return str(json.loads(path.read_text())["admin"])
    folder.mkdir(parents=True, exist_ok=True)
    made = secrets.token_urlsafe(24)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"admin": made}, f)
    os.replace(tmp, path)
    return made


def target(secrets_dir: Path | None = None) -> Target:
    """The broker loaxa publishes to: LOAXA_MQTT_URL's, else its own on LOAXA_MQTT_PORT."""
    settings = get_settings()
    if settings.mqtt_url:
        parts = urlsplit(settings.mqtt_url)
        return Target(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            username=parts.username or ADMIN_USERNAME,
            password=parts.password or "",
            own=False,
            tls=parts.scheme == "mqtts",
        )
    return Target(
        settings.mqtt_host, settings.mqtt_port, ADMIN_USERNAME, admin_password(secrets_dir), True
    )


def device_url(request_host: str | None) -> str:
    """The broker's address as devices are told (no credentials): LOAXA_MQTT_URL's host, else
    the host the device reached loaxa at, with loaxa's broker port."""
    settings = get_settings()
    if settings.mqtt_url:
        parts = urlsplit(settings.mqtt_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme or 'mqtt'}://{parts.hostname}{port}"
    host = request_host or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"mqtt://{host}:{settings.mqtt_port}"


def plugin_path() -> str:
    for candidate in PLUGIN_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise FileNotFoundError(
        "mosquitto_dynamic_security.so not found (install Debian's mosquitto package)"
    )


def password_fields(password: str) -> dict[str, Any]:
    """A password as the dynamic-security plugin stores it (PBKDF2-SHA512, as mosquitto_ctrl)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": _ITERATIONS,
    }


def _password_matches(client: dict[str, Any], password: str) -> bool:
    try:
        salt = base64.b64decode(client["salt"])
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(client["iterations"]))
        return base64.b64encode(digest).decode() == client["password"]
    except (KeyError, ValueError, TypeError):
        return False


def admin_role() -> dict[str, Any]:
    def acl(kind: str, topic: str) -> dict[str, Any]:
        return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}

    control = "$CONTROL/dynamic-security/#"
    return {
        "rolename": ADMIN_ROLE,
        "acls": [
            acl("publishClientSend", control),
            acl("publishClientReceive", control),
            acl("subscribePattern", control),
            acl("publishClientSend", "loaxa/#"),
            acl("publishClientReceive", "loaxa/#"),
            acl("subscribePattern", "loaxa/#"),
            acl("unsubscribePattern", "#"),
        ],
    }


def dynsec_document(password: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plugin's file: loaxa's admin login (with this password) and role, the default
    ACL that denies devices everything not granted, and the device logins of `previous`."""
    admin = {
        "username": ADMIN_USERNAME,
        "textname": "loaxa",
        "roles": [{"rolename": ADMIN_ROLE}],
        **password_fields(password),
    }
    previous = previous or {}
    clients = [c for c in previous.get("clients", []) if c.get("username") != ADMIN_USERNAME]
    roles = [r for r in previous.get("roles", []) if r.get("rolename") != ADMIN_ROLE]
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [admin, *clients],
        "groups": previous.get("groups", []),
        "roles": [admin_role(), *roles],
    }


@dataclass(frozen=True)
class Layout:
    """Where the broker listens and keeps its files, and whom it runs as."""

    port: int
    bind: str
    folder: Path
    run_as: str | None  # the user Mosquitto becomes when started as root
    max_connections: int = -1


def default_layout(*, port: int | None = None, folder: Path | None = None) -> Layout:
    port = port or get_settings().mqtt_port
    root = os.geteuid() == 0
    if folder is None:
        # As root, a folder the unprivileged user owns whatever the data directory's parents
        # allow (Mosquitto writes the plugin's file and its persistence after dropping).
        folder = Path(f"/var/lib/loaxa-mosquitto/{port}") if root else broker_dir() / str(port)
    return Layout(port=port, bind="0.0.0.0", folder=folder, run_as=BROKER_USER if root else None)


def render(layout: Layout) -> str:
    """Mosquitto's configuration."""
    lines = [
        "# Written by loaxa (app/push/broker.py); loaxa rewrites it.",
        "per_listener_settings false",
        f"listener {layout.port} {layout.bind}",
        "allow_anonymous false",
        f"plugin {plugin_path()}",
        f"plugin_opt_config_file {layout.folder / 'dynamic-security.json'}",
        "persistence true",
        f"persistence_location {layout.folder}/",
        "autosave_interval 60",
        f"max_connections {layout.max_connections}",
        "set_tcp_nodelay true",
        "max_queued_messages 100",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    if os.geteuid() == 0:  # Mosquitto drops to `mosquitto` unless told otherwise
        lines.append(f"user {layout.run_as or 'root'}")
    return "\n".join(lines) + "\n"


def prepare(layout: Layout, password: str) -> Path:
    """Write the configuration and (first time, or with a new admin password) the plugin's
    file; the configuration's path."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    dynsec = layout.folder / "dynamic-security.json"
    previous: dict[str, Any] | None = None
    if dynsec.exists():
        try:
            previous = json.loads(dynsec.read_text())
        except ValueError:
            log.warning("%s is unreadable; writing a new one (device logins are remade)", dynsec)
    admin = next(
        (c for c in (previous or {}).get("clients", []) if c.get("username") == ADMIN_USERNAME),
        None,
    )
    if previous is None or admin is None or not _password_matches(admin, password):
        _write(dynsec, json.dumps(dynsec_document(password, previous), indent=1))
    conf = layout.folder / "mosquitto.conf"
    _write(conf, render(layout))
    if layout.run_as is not None:
        user = pwd.getpwnam(layout.run_as)
        for path in (layout.folder, *layout.folder.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(layout.folder, 0o700)
    return conf


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def can_log_in(host: str, port: int, username: str, password: str, timeout: float = 2.0) -> bool:
    """Whether a broker answers on host:port and accepts this login (a readiness check)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    result: list[bool] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"loaxa-check-{os.getpid()}")
    client.username_pw_set(username, password)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.append(not reason.is_failure)
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    return bool(result and result[0])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Mosquitto:
    """The broker process."""

    def __init__(self, layout: Layout, password: str, binary: str | None = None) -> None:
        # Debian puts it in /usr/sbin, which an ordinary user's PATH may lack.
        binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.layout, self.password, self.binary = layout, password, binary
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = prepare(self.layout, self.password)
        self._stop_stale(conf)
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        (self.layout.folder / "mosquitto.pid.loaxa").write_text(str(self.process.pid))
        log.info("mosquitto started on port %d (pid %d)", self.layout.port, self.process.pid)

    def _stop_stale(self, conf: Path) -> None:
        """Stop a Mosquitto a killed `loaxa broker` left running on this configuration."""
        try:
            pid = int((self.layout.folder / "mosquitto.pid.loaxa").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(conf).encode() not in cmdline:
            return
        log.warning("stopping the mosquitto a previous broker left running (pid %d)", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)

    def ready(self) -> bool:
        return can_log_in("127.0.0.1", self.layout.port, ADMIN_USERNAME, self.password)

    def wait_ready(
        self, timeout: float = READY_TIMEOUT_S, stop: threading.Event | None = None
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if self.process is not None and self.process.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_broker(
    *, stop: threading.Event, port: int | None = None, folder: Path | None = None
) -> int:
    """Run the broker until `stop` is set; the exit code (1: it did not come up or died)."""
    layout = default_layout(port=port, folder=folder)
    broker = Mosquitto(layout, admin_password())
    try:
        broker.start()
    except (OSError, FileNotFoundError) as exc:
        log.error("cannot start mosquitto: %s", exc)
        return 1
    try:
        if not broker.wait_ready(stop=stop):
            if stop.is_set():
                return 0
            log.error("mosquitto did not come up on port %d", layout.port)
            return 1
        log.info("broker ready on port %d", layout.port)
        while not stop.wait(1.0):
            if broker.process is not None and broker.process.poll() is not None:
                log.error("mosquitto exited with code %s", broker.process.returncode)
                return 1
        return 0
    finally:
        broker.stop()
