"""gzip for slow mobile links: pages, styles, scripts and JSON, never audio or a range.

Starlette's GZipMiddleware does the work (it leaves audio, images and streams alone by
content type, and adds `Vary: Accept-Encoding`). Around it, two rules of loaxa's own:

* A request with a `Range` header is answered as asked: a byte range of a compressed body
  is not the range the client asked for.
* The playout API (`/api/v1/playout/`, `/api/v1/audio/`) is left as it is: devices poll
  it thousands of times a second with small, ETag'd answers, where compressing costs more
  server time than the bytes it saves, and audio is compressed already.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

UNCOMPRESSED_PREFIXES = ("/api/v1/playout/", "/api/v1/audio/", "/files/audio/")
MINIMUM_BYTES = 1024  # below this the gzip framing saves nothing worth a round of CPU
LEVEL = 6  # zlib's default: nearly level 9's size at a fraction of its time


class CompressMiddleware:
    """gzip where it helps (see the module's rules)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_BYTES, compresslevel=LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _leave_alone(scope):
            await self.app(scope, receive, send)
            return
        await self.gzip(scope, receive, send)


def _leave_alone(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    if path.startswith(UNCOMPRESSED_PREFIXES):
        return True
    return any(name == b"range" for name, _value in scope.get("headers", ()))
