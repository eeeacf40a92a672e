"""Where a relay is heard: its mount on the station's hub, and the hub's URL for devices.

A relay programme of a station is one mount, ``/relay-<station id>-<code>``, fed from one
upstream connection however many clusters listen. Devices reach the hub at LOAXA_ICECAST_URL
when an existing Icecast serves it, else at this server's host on LOAXA_ICECAST_PORT (the
hub loaxa runs itself, `loaxa up`).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from app.config import get_settings

MOUNT_PREFIX = "/relay-"


def relay_mount(station_id: int, code: str) -> str:
    """The mount of a station's relay programme: "/relay-1-vov1"."""
    return f"{MOUNT_PREFIX}{station_id}-{code}"


def parse_relay_mount(mount: str) -> tuple[int, str] | None:
    """(station id, programme code) of a relay mount; None for any other mount."""
    if not mount.startswith(MOUNT_PREFIX):
        return None
    station, _, code = mount.removeprefix(MOUNT_PREFIX).partition("-")
    if not station.isdigit() or not code:
        return None
    return int(station), code


def hub_url(base_url: str) -> str:
    """The hub as devices reach it: LOAXA_ICECAST_URL, else this server's host on the hub's
    port (LOAXA_ICECAST_PORT)."""
    settings = get_settings()
    if settings.icecast_url:
        return settings.icecast_url.rstrip("/")
    return _beside(base_url, settings.icecast_port)


@lru_cache(maxsize=64)
def _beside(base_url: str, port: int) -> str:
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return urlunsplit(("http", f"{host}:{port}", "", "", ""))


def stream_url(base_url: str, station_id: int, code: str) -> str:
    """The absolute URL of a relay's mount on the hub (devices add their token to listen)."""
    return hub_url(base_url) + relay_mount(station_id, code)


def mount_secret(purpose: str, mount: str) -> str:
    """A password loaxa's own processes use on one mount ("source": the console's feeder;
    "recorder": the hub's recorder), derived from the server's signing key: the web server
    and the hub agree on it without sharing a file."""
    key = get_settings().signing_key().encode()
    return hmac.new(key, f"{purpose}:{mount}".encode(), hashlib.sha256).hexdigest()
