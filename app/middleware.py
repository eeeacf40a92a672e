"""What every request goes through, outermost first, in one plain ASGI middleware.

- The client's address: the TCP peer, or, when the peer is a proxy named in
  LOAXA_TRUSTED_PROXIES, the last address in X-Forwarded-For that is not such a proxy (and
  the scheme from X-Forwarded-Proto). Rate limits and logs see that address in
  scope["client"]. uvicorn's own proxy handling is off (`loaxa serve`), so this is the one rule.
- A request id: X-Request-ID when it is sane (1-128 of ``A-Za-z0-9._:-``), else a new one;
  returned on every answer and carried by every log line of the request (app.logs).
- Limits, one guard for every request body of every content type (multipart and chunked
  included), before authentication and before anything parses it: a query string past
  LOAXA_MAX_QUERY_BYTES is 414; a body past its route's limit is 413, refused at once when
  its Content-Length says so and otherwise counted as it arrives; one that stops arriving
  for LOAXA_BODY_IDLE_SECONDS, or takes longer than LOAXA_UPLOAD_DEADLINE_SECONDS in all, is
  408. The routes marked with ``takes_upload`` (those that receive audio) get
  LOAXA_MAX_UPLOAD_BYTES, every other route LOAXA_MAX_BODY_BYTES. Whatever the app made of
  a refused body (a 400 from a parser, a 401, a form page), the answer is the guard's own:
  JSON for the API, a short page in words for the console.
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
from typing import Any, TypeVar

import fastapi.routing
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

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
# Multipart framing around an uploaded file: boundaries, part headers, the form's other fields.
FRAMING_SLACK = 64 * 1024
UPLOAD_MARK = "__loaxa_takes_upload__"
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def takes_upload(endpoint: _Endpoint) -> _Endpoint:
    """Mark a route's endpoint as one that receives audio: its body may be as large as
    LOAXA_MAX_UPLOAD_BYTES (every other body is held to LOAXA_MAX_BODY_BYTES)."""
    setattr(endpoint, UPLOAD_MARK, True)
    return endpoint


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


def _plain_answer(
    status: int, detail: str, request_id: str, *, html: bool = False, limit: int | None = None
) -> tuple[Message, Message]:
    if html:
        body = _console_page(status, limit)
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": detail}).encode()
        ctype = b"application/json"
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"cache-control", b"no-store"),
            (b"x-request-id", request_id.encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


# What a person in the console sees when the guard refuses a form: the console's own pages
# cannot be drawn for a body that was never read (nor signed in: the guard comes first).
_CONSOLE_WORDS = {
    413: ("Tệp hoặc biểu mẫu quá lớn", "Nội dung gửi lên vượt quá giới hạn nên chưa được lưu."),
    408: ("Gửi quá chậm", "Nội dung gửi lên bị ngắt giữa chừng nên chưa được lưu. Hãy gửi lại."),
    414: ("Địa chỉ quá dài", "Địa chỉ này dài quá mức cho phép."),
}


def _console_page(status: int, limit_bytes: int | None) -> bytes:
    title, words = _CONSOLE_WORDS.get(status, ("Chưa làm được", ""))
    if status == 413 and limit_bytes:
        words += f" Giới hạn: {max(1, round(limit_bytes / (1024 * 1024)))} MB."
    page = (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1><p>{words}</p>"
        '<p><a href="/">Trang chủ</a></p></main></body></html>'
    )
    return page.encode()


def _is_console(scope: Scope) -> bool:
    """A console page (not the API, health, metrics or docs): refusals are a page in words."""
    path: str = scope["path"]
    return not path.startswith(
        ("/api/", "/metrics", "/healthz", "/readyz", "/docs", "/redoc", "/openapi")
    )


def _too_large(limit: int, size: int | None = None) -> str:
    if size is None:
        return f"the request body is larger than {limit} bytes"
    return f"the request body is {size} bytes; at most {limit} are accepted"


class BodyRefused(HTTPException):
    """The body guard refused the request body (raised from receive())."""


class _BodyGuard:
    """receive() with the body's limits: size counted as it arrives, idle time, deadline."""

    def __init__(
        self, receive: Receive, *, limit: Callable[[], int], idle_s: float, deadline_s: float
    ) -> None:
        self._receive = receive
        self._limit = limit  # worked out at the first byte: most requests have no body
        self.limit: int | None = None
        self.idle_s = idle_s
        self.deadline_s = deadline_s
        self.deadline = time.monotonic() + deadline_s
        self.received = 0
        self.body_done = False
        self.refusal: tuple[int, str] | None = None

    def _refuse(self, status: int, detail: str) -> BodyRefused:
        self.refusal = (status, detail)
        return BodyRefused(status, detail)

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise BodyRefused(*self.refusal)
        if self.body_done:
            # After the body, receive() only waits for the client to go away (streaming
            # responses listen for it while they send): no deadline on that.
            return await self._receive()
        wait = min(self.idle_s, self.deadline - time.monotonic())
        try:
            message = await asyncio.wait_for(self._receive(), timeout=max(wait, 0.001))
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                detail = f"the request body took longer than {self.deadline_s:g} s; send it again"
            else:
                detail = f"the request body stopped arriving for {self.idle_s:g} s; send it again"
            raise self._refuse(408, detail) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received:
                if self.limit is None:
                    self.limit = self._limit()
                if self.received > self.limit:
                    raise self._refuse(413, _too_large(self.limit))
            self.body_done = not message.get("more_body", False)
        else:
            self.body_done = True
        return message


class LoaxaMiddleware:
    """Client address, request id, limits, security headers, access log and latency."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[Any]] = list) -> None:
        self.app = app
        self._routes = routes
        self._templates: dict[int, str] = {}
        self._upload_routes: list[tuple[frozenset[str], re.Pattern[str]]] | None = None

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
                await self._refuse(scope, send_with_headers, refusal, request_id)
                return
            guard = _BodyGuard(
                receive,
                limit=lambda: self._body_limit(scope, settings),
                idle_s=settings.body_idle_seconds,
                deadline_s=settings.upload_deadline_seconds,
            )
            answered = False

            async def send_unless_refused(message: Message) -> None:
                # A refused body: what the app made of the half it read is dropped, and the
                # guard's own answer is sent below.
                nonlocal answered
                if guard.refusal is not None and not answered:
                    return
                answered = answered or message["type"] == "http.response.start"
                await send_with_headers(message)

            try:
                await self.app(scope, guard.receive, send_unless_refused)
            except BodyRefused:
                if answered:
                    raise
            if guard.refusal is not None and not answered:
                await self._refuse(scope, send_with_headers, guard.refusal, request_id)
        finally:
            self._record(scope, status_holder[0], started, settings.access_log)
            request_id_var.reset(token)

    async def _refuse(
        self, scope: Scope, send: Send, refusal: tuple[int, str], request_id: str
    ) -> None:
        limit = self._body_limit(scope, get_settings())
        start, body = _plain_answer(*refusal, request_id, html=_is_console(scope), limit=limit)
        await send(start)
        await send(body)

    def _body_limit(self, scope: Scope, settings: Any) -> int:
        """LOAXA_MAX_UPLOAD_BYTES (and the multipart framing around the file) on the routes
        that take audio, LOAXA_MAX_BODY_BYTES everywhere else."""
        if self._takes_upload(scope["method"], scope["path"]):
            return int(settings.max_upload_bytes) + FRAMING_SLACK
        return int(settings.max_body_bytes)

    def _takes_upload(self, method: str, path: str) -> bool:
        if self._upload_routes is None:
            self._upload_routes = [
                (methods, compile_path(template)[0])
                for methods, template, route in flat_routes(self._routes())
                if getattr(getattr(route, "endpoint", None), UPLOAD_MARK, False)
            ]
        return any(
            method in methods and regex.match(path) for methods, regex in self._upload_routes
        )

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

    def _refusal(self, scope: Scope, settings: Any) -> tuple[int, str] | None:
        query = scope.get("query_string", b"")
        if len(query) > settings.max_query_bytes:
            return 414, (
                f"the query string is {len(query)} bytes; at most "
                f"{settings.max_query_bytes} are accepted"
            )
        if len(scope.get("raw_path") or scope["path"].encode()) > MAX_PATH_BYTES:
            return 414, f"the path is longer than {MAX_PATH_BYTES} bytes"
        declared = (_header(scope, b"content-length") or "").strip()
        if declared.isascii() and declared.isdigit():
            limit = self._body_limit(scope, settings)
            if int(declared) > limit:
                return 413, _too_large(limit, int(declared))
        return None

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
