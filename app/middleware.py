"""What every request goes through, outermost first, in one plain ASGI middleware.

- The client's address: the TCP peer, or, when the peer is a proxy named in
  LOAXA_TRUSTED_PROXIES, the last address in X-Forwarded-For that is not such a proxy (and
  the scheme from X-Forwarded-Proto). Rate limits and logs see that address in
  scope["client"]. uvicorn's own proxy handling is off (`loaxa serve`), so this is the one rule.
- A request id: X-Request-ID when it is sane (1-128 of ``A-Za-z0-9._:-``), else a new one;
  returned on every answer and carried by every log line of the request (app.logs).
- Limits: a query string past LOAXA_MAX_QUERY_BYTES is 414; a body (other than a multipart
  upload, which app.audio.upload limits and times itself) past LOAXA_MAX_BODY_BYTES is 413,
  and one that stops arriving for LOAXA_BODY_IDLE_SECONDS is 408.
- Security headers on every answer: nosniff, frame denial, Referrer-Policy, HSTS over HTTPS,
  and a Content-Security-Policy: a page that sets its own (the console) keeps it; other HTML
  gets a strict one; everything else `default-src 'none'; frame-ancestors 'none'`.
- One access-log line and one latency observation per request, by route template.

A plain ASGI middleware rather than BaseHTTPMiddleware: it streams (audio, uploads), and the
playout polls it wraps run thousands of times a second.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from functools import lru_cache
from typing import Any

import fastapi.routing
from starlette.exceptions import HTTPException

from app.config import get_settings
from app.logs import request_id_var
from app.metrics import HTTP_LATENCY

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("loaxa.access")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_PATH_BYTES = 8 * 1024

API_CSP = b"default-src 'none'; frame-ancestors 'none'"
HTML_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    b"base-uri 'none'"
)
# FastAPI's /docs and /redoc load their scripts from a CDN and start them inline.
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    b"https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS = b"max-age=31536000"
UNMATCHED = "<unmatched>"


def flat_routes(routes: Sequence[Any]) -> list[tuple[frozenset[str], str, Any]]:
    """(methods, path template, route object) of every route, through included routers.

    FastAPI 0.165 keeps included routers as nodes of their own (the route objects' paths
    may lack the include prefix); older versions copy every route into `app.routes`.
    """
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_route_contexts is None:
        contexts: list[Any] = list(routes)
        originals: list[Any] = list(routes)
    else:
        contexts = list(iter_route_contexts(routes))
        originals = [c.original_route for c in contexts]
    found = []
    for context, original in zip(contexts, originals, strict=True):
        methods = getattr(context, "methods", None)
        path = getattr(context, "path_format", None) or getattr(context, "path", None)
        if methods and path:
            found.append((frozenset(methods), path, original))
    return found


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    return tuple(ipaddress.ip_network(p, strict=False) for p in parts)


def _trusted(address: str, spec: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(spec))


def client_address(peer: str | None, forwarded_for: str | None, trusted: str) -> str | None:
    """The client's address: the peer, or behind trusted proxies the first untrusted hop.

    X-Forwarded-For is read right to left (each proxy appends the address it saw): the
    first address that is not a trusted proxy is the client. Anything a client wrote to
    the left of it is not believed.
    """
    if peer is None or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a client: fall back to what we know
    return hops[0] if hops else peer


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _plain_answer(status: int, detail: str, request_id: str) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"x-request-id", request_id.encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class LoaxaMiddleware:
    """Client address, request id, limits, security headers, access log and latency."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[Any]] = list) -> None:
        self.app = app
        self._routes = routes
        self._templates: dict[int, str] = {}

    def _template(self, route: Any) -> str:
        """The route's full path template (with its include prefix), by the route's identity."""
        if route is None:
            return UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            self._templates = {id(r): path for _, path, r in flat_routes(self._routes())}
            template = self._templates.get(id(route))
            if template is None:  # not one of the app's own (a mount's inner route)
                template = getattr(route, "path_format", None) or UNMATCHED
                self._templates[id(route)] = template
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        started = time.perf_counter()
        peer = scope.get("client")
        if peer is not None:
            xff = _header(scope, b"x-forwarded-for")
            if xff is not None or _header(scope, b"x-forwarded-proto") is not None:
                self._behind_proxy(scope, peer, xff, settings.trusted_proxies)
        offered = _header(scope, b"x-request-id")
        request_id = offered if offered and REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status_holder = [500]
        https = scope.get("scheme") == "https"
        is_docs = scope["path"] in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in COMMON_HEADERS:
                    if name not in names:
                        headers.append((name, value))
                if b"content-security-policy" not in names:
                    ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                    if ctype.startswith(b"text/html"):
                        headers.append(
                            (b"content-security-policy", DOCS_CSP if is_docs else HTML_CSP)
                        )
                    else:
                        headers.append((b"content-security-policy", API_CSP))
                if https and b"strict-transport-security" not in names:
                    headers.append((b"strict-transport-security", HSTS))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            refusal = self._refusal(scope, settings)
            if refusal is not None:
                start, body = _plain_answer(*refusal, request_id)
                await send_with_headers(start)
                await send_with_headers(body)
                return
            ctype = _header(scope, b"content-type") or ""
            if ctype.startswith("multipart/"):
                guarded = receive  # app.audio.upload limits and times multipart itself
            else:
                guarded = self._guarded_receive(
                    receive, settings.max_body_bytes, settings.body_idle_seconds
                )
            await self.app(scope, guarded, send_with_headers)
        finally:
            self._record(scope, status_holder[0], started, settings.access_log)
            request_id_var.reset(token)

    @staticmethod
    def _behind_proxy(scope: Scope, peer: Any, xff: str | None, trusted: str) -> None:
        if not _trusted(peer[0], trusted):
            return
        client = client_address(peer[0], xff, trusted)
        if client is not None and client != peer[0]:
            scope["client"] = (client, 0)
        proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto

    @staticmethod
    def _refusal(scope: Scope, settings: Any) -> tuple[int, str] | None:
        query = scope.get("query_string", b"")
        if len(query) > settings.max_query_bytes:
            return 414, (
                f"the query string is {len(query)} bytes; at most "
                f"{settings.max_query_bytes} are accepted"
            )
        if len(scope.get("raw_path") or scope["path"].encode()) > MAX_PATH_BYTES:
            return 414, f"the path is longer than {MAX_PATH_BYTES} bytes"
        ctype = _header(scope, b"content-type") or ""
        declared = _header(scope, b"content-length")
        too_big = declared is not None and declared.isdigit()
        if too_big and not ctype.startswith("multipart/"):
            size = int(declared or 0)
            if size > settings.max_body_bytes:
                return 413, (
                    f"the request body is {size} bytes; at most "
                    f"{settings.max_body_bytes} are accepted"
                )
        return None

    @staticmethod
    def _guarded_receive(receive: Receive, limit: int, idle_s: float) -> Receive:
        received = 0
        body_done = False

        async def guarded() -> Message:
            nonlocal received, body_done
            if body_done:
                # After the body, receive() only waits for the client to go away (streaming
                # responses listen for it while they send): no deadline on that.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=idle_s)
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body stopped arriving for {idle_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"the request body is larger than {limit} bytes")
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        return guarded

    def _record(self, scope: Scope, status: int, started: float, log_access: bool) -> None:
        elapsed = time.perf_counter() - started
        template = self._template(scope.get("route"))
        method = scope["method"]
        HTTP_LATENCY.labels(method, template, str(status)).observe(elapsed)
        if log_access:
            client = scope.get("client")
            access_log.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
