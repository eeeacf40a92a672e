"""The agent's side of the playout HTTP contract (DESIGN.md "Contract"), over httpx."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app import __version__


class ServerUnavailable(Exception):
    """The server could not be reached or answered 5xx, 408 or 429: try again later."""


class ServerUnreachable(ServerUnavailable):
    """No HTTP answer at all (refused, timed out, cut off): other requests would fail too."""


class ServerRefused(Exception):
    """The server answered 4xx: retrying the same request will not help."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class Fetched:
    """A conditional GET's outcome: `changed` is False on 304 (then `body` is None)."""

    changed: bool
    etag: str | None
    body: Any = None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


def _check(response: httpx.Response) -> None:
    code = response.status_code
    if code >= 500 or code in (408, 429):
        raise ServerUnavailable(f"HTTP {code} from {response.request.url.path}")
    if code >= 400:
        if not response.is_stream_consumed:
            response.read()
        raise ServerRefused(code, _detail(response))


class PlayoutClient:
    """Talks to the loaxa server as one playout device (bearer device token)."""

    def __init__(
        self,
        *,
        server_url: str,
        token: str,
        cache_dir: Path,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self._cache_dir = cache_dir
        # The push connection's state, sent as X-Loaxa-Push (app.playout.agent.push).
        self.push_state: Callable[[], str | None] = lambda: None
        self._http = httpx.Client(
            base_url=self.server_url,
            headers={
                "Authorization": f"Bearer {token}",
                "X-Loaxa-Agent-Version": __version__,
                "User-Agent": f"loaxa-agent/{__version__}",
            },
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            event_hooks={"request": [self._add_free_disk]},
            transport=transport,
            follow_redirects=False,
        )

    def _add_free_disk(self, request: httpx.Request) -> None:
        try:
            free = shutil.disk_usage(self._cache_dir).free
        except OSError:
            free = None
        if free is not None:
            request.headers["X-Loaxa-Free-Disk-Bytes"] = str(free)
        state = self.push_state()
        if state:
            request.headers["X-Loaxa-Push"] = state

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(self, path: str, *, params: dict[str, str], etag: str | None) -> Fetched:
        headers = {"Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        try:
            response = self._http.get(path, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 304:
            return Fetched(changed=False, etag=response.headers.get("ETag") or etag)
        _check(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerUnavailable(f"{path} did not answer JSON") from exc
        return Fetched(changed=True, etag=response.headers.get("ETag"), body=body)

    def playlist(self, day: date, *, etag: str | None) -> Fetched:
        """GET the device's playlist of one local day (conditional on `etag`)."""
        fetched = self._get("/api/v1/playout/playlist", params={"date": day.isoformat()}, etag=etag)
        if fetched.changed and not isinstance(fetched.body, dict):
            raise ServerUnavailable("the playlist is not a JSON object")
        return fetched

    def emergencies(self, *, etag: str | None) -> Fetched:
        """GET the active emergencies in the device's scope (conditional on `etag`)."""
        fetched = self._get("/api/v1/playout/emergencies", params={}, etag=etag)
        if fetched.changed and not isinstance(fetched.body, list):
            raise ServerUnavailable("the emergencies answer is not a JSON array")
        return fetched

    def push_info(self, *, refresh: bool = False) -> dict[str, Any] | None:
        """GET /playout/push: how to reach the push broker; None when the server offers no
        push (404: an older server, or push turned off)."""
        params = {"refresh": "true"} if refresh else {}
        try:
            response = self._http.get("/api/v1/playout/push", params=params)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        _check(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerUnavailable("the push answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ServerUnavailable("the push answer is not a JSON object")
        return body

    def audio_url(self, sha256: str, advertised: str | None) -> str:
        """Where to fetch a file: the advertised URL when it is on our server, else ours.

        The bearer token only goes to the configured server: an `audio_url` built from
        another host name (a proxy, `public_base_url`) is replaced by the same path here.
        """
        if advertised:
            ours, theirs = urlsplit(self.server_url), urlsplit(advertised)
            if not theirs.netloc:
                return self.server_url + "/" + advertised.lstrip("/")
            if (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc):
                return advertised
        return f"{self.server_url}/api/v1/audio/{sha256}"

    @contextmanager
    def audio(self, url: str, *, start: int) -> Iterator[httpx.Response]:
        """Stream an audio file, from byte `start` on (a Range request) when it is not 0."""
        headers = {"Accept": "audio/mpeg, */*", "Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code != 416:
                    _check(response)
                yield response
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}") from exc

    def post_as_run(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """POST a batch of as-run events; the server's accepted/duplicates/rejected answer."""
        try:
            response = self._http.post("/api/v1/playout/as-run", json=events)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}") from exc
        _check(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerUnavailable("the as-run answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ServerUnavailable("the as-run answer is not a JSON object")
        return body
