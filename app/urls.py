"""Absolute URLs handed to playout PCs and podcast readers."""

from __future__ import annotations

from functools import lru_cache

from fastapi import Request
from starlette.datastructures import URL

from app.config import get_settings


def base_url(request: Request) -> str:
    """Where clients reach this API: the public_base_url setting, else the request's own."""
    public = get_settings().public_base_url
    if public:
        return public
    host = request.headers.get("host")
    if host is None:
        return str(request.base_url)
    return _request_base(
        request.scope.get("scheme", "http"), host, request.scope.get("root_path", "")
    )


@lru_cache(maxsize=64)
def _request_base(scheme: str, host: str, root_path: str) -> str:
    # What request.base_url gives, remembered: the playout polls ask for it on every request.
    return str(URL(f"{scheme}://{host}{root_path}/"))


def audio_url(base_url: str, sha256: str) -> str:
    """The absolute download URL of a file in the audio store."""
    return f"{base_url.rstrip('/')}/api/v1/audio/{sha256}"
