"""Absolute URLs handed to playout PCs and podcast readers.

They are built from LOAXA_PUBLIC_BASE_URL when it is set. Otherwise from the request's
Host only when that host is one the operator trusts (LOAXA_TRUSTED_HOSTS; by default the
public URL's host and this machine's own names): a Host header is whatever the client
wrote, and a link built from it and kept by a cache or a feed reader would send the
commune's listeners to the writer's site. Any other Host gets the address the connection
really arrived at (the server's own socket), which nobody outside can choose.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import URL

from app.config import get_settings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def base_url(request: Request) -> str:
    """Where clients reach this API: the public_base_url setting, else the request's own
    (its Host when trusted, else the address the connection arrived at)."""
    settings = get_settings()
    if settings.public_base_url:
        return settings.public_base_url
    scheme = request.scope.get("scheme", "http")
    root_path = request.scope.get("root_path", "")
    host = request.headers.get("host")
    if host is not None and _hostname(host) in trusted_hosts(
        settings.trusted_hosts, settings.public_base_url
    ):
        return _request_base(scheme, host, root_path)
    server = request.scope.get("server")
    if server and server[0]:
        address, port = str(server[0]), server[1]
        address = f"[{address}]" if ":" in address else address
        default = {"http": 80, "https": 443}.get(scheme)
        netloc = address if port in (None, default) else f"{address}:{port}"
        return _request_base(scheme, netloc, root_path)
    return _request_base(scheme, "localhost", root_path)


def from_public_setting() -> bool:
    """Whether links come from LOAXA_PUBLIC_BASE_URL (else from each request: not to be
    kept by shared caches)."""
    return bool(get_settings().public_base_url)


@lru_cache(maxsize=16)
def trusted_hosts(spec: str | None, public_base_url: str | None) -> frozenset[str]:
    """The host names whose Host header is believed: LOAXA_TRUSTED_HOSTS (comma-separated),
    by default the public URL's host and this machine's own names."""
    if spec is not None and spec.strip():
        return frozenset(_hostname(h) for h in spec.split(",") if h.strip())
    found = set(LOCAL_HOSTS)
    if public_base_url:
        found.add((urlsplit(public_base_url).hostname or "").lower())
    return frozenset(found)


def _hostname(host: str) -> str:
    """'Example.vn:8000' -> 'example.vn'; '[::1]:8000' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@lru_cache(maxsize=64)
def _request_base(scheme: str, host: str, root_path: str) -> str:
    # What request.base_url gives, remembered: the playout polls ask for it on every request.
    return str(URL(f"{scheme}://{host}{root_path}/"))


def audio_url(base_url: str, sha256: str) -> str:
    """The absolute download URL of a file in the audio store."""
    return f"{base_url.rstrip('/')}/api/v1/audio/{sha256}"
