"""A small, faithful fake of the loaxa playout API, served over real HTTP on 127.0.0.1.

Only the server is faked, at the wire: the agent's real client, cache, journal and player
code talk to it through sockets. It serves the contract the agent relies on: playlists with
ETag/304, audio with Range/206, as-run idempotent by event_id, emergencies with ETag/304;
and it can misbehave on purpose (corrupt or truncated downloads, lost answers, 503s, being
down altogether).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

TOKEN = "dev_test-device-token"
TIMEZONE = "Asia/Ho_Chi_Minh"
# A real player whose sound goes nowhere: ffmpeg decodes in real time (-re) to a null muxer.
NULL_PLAYER = "ffmpeg -nostdin -v error -re -ss {offset_s} -i {file} -f null -"


def make_tone(path: Path, *, seconds: float, frequency: int) -> bytes:
    """Write a mono 44.1 kHz MP3 sine tone with ffmpeg; its bytes."""
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"sine=frequency={frequency}:duration={seconds}",
            "-ac", "1", "-ar", "44100", "-b:a", "64k", str(path),
        ],
        check=True,
        timeout=30,
    )  # fmt: skip
    return path.read_bytes()


def sha(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def iso(at: datetime) -> str:
    """ISO 8601 with offset, in UTC."""
    return at.astimezone(UTC).isoformat()


@dataclass
class Seen:
    """One request the fake server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class FakeServer:
    """In-memory playout server; `start()` serves it on a loopback port in a thread."""

    audio: dict[str, bytes] = field(default_factory=dict)
    playlists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    emergencies: list[dict[str, Any]] = field(default_factory=list)
    as_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    as_run_posts: list[list[dict[str, Any]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    corrupt_once: set[str] = field(default_factory=set)
    truncate_once: dict[str, int] = field(default_factory=dict)
    lose_as_run_answer_once: bool = False
    reject_broadcast_ids: set[int] = field(default_factory=set)
    unavailable: Callable[[Request], bool] | None = None
    port: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    # Data helpers.

    @property
    def base_url(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.port}"

    def add_audio(self, data: bytes) -> str:
        """Serve an audio file; its sha256."""
        digest = sha(data)
        with self.lock:
            self.audio[digest] = data
        return digest

    def item(
        self,
        broadcast_id: int,
        starts_at: datetime,
        digest: str,
        *,
        duration_ms: int,
        title: str = "",
        yields_to: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        """A playlist item as the real server shapes it (`yields_to`: broadcast ids)."""
        ends = starts_at + timedelta(milliseconds=duration_ms)
        local = starts_at.astimezone(_zone())
        return {
            "event_key": f"b{broadcast_id}",
            "broadcast_id": broadcast_id,
            "programme": "cchc",
            "title": title or f"Chuyên mục CCHC {broadcast_id}",
            "priority": "normal",
            "yields_to": [f"b{b}" for b in yields_to],
            "starts_at": iso(starts_at),
            "starts_at_local": local.isoformat(),
            "ends_at": iso(ends),
            "duration_ms": duration_ms,
            "sha256": digest,
            "audio_url": f"{self.base_url}/api/v1/audio/{digest}",
        }

    def set_playlist(self, day: str, items: list[dict[str, Any]]) -> None:
        """Replace the playlist of a local day (YYYY-MM-DD)."""
        with self.lock:
            self.playlists[day] = items

    def add_emergency(
        self, emergency_id: int, digest: str, *, duration_ms: int, ttl_s: float = 600
    ) -> None:
        """Make an emergency active now."""
        now = datetime.now(UTC)
        with self.lock:
            self.emergencies.insert(
                0,
                {
                    "id": emergency_id,
                    "station_id": 1,
                    "village_ids": None,
                    "segment_id": 40 + emergency_id,
                    "title": "Thông báo khẩn: bão số 3",
                    "sha256": digest,
                    "audio_url": f"{self.base_url}/api/v1/audio/{digest}",
                    "duration_ms": duration_ms,
                    "created_at": iso(now),
                    "expires_at": iso(now + timedelta(seconds=ttl_s)),
                },
            )

    def requests(self, path_prefix: str) -> list[Seen]:
        """Requests received under a path."""
        with self.lock:
            return [s for s in self.seen if s.path.startswith(path_prefix)]

    # Lifecycle.

    def start(self) -> FakeServer:
        """Serve on 127.0.0.1 (the same port again after a stop)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            _app(self), log_level="critical", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving: connections are refused until `start()`."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)


def _etag(body: Any) -> str:
    blob = json.dumps(body, sort_keys=True).encode()
    return '"' + hashlib.sha256(blob).hexdigest()[:20] + '"'


def _app(fake: FakeServer) -> Starlette:
    def guard(request: Request) -> Response | None:
        with fake.lock:
            fake.seen.append(
                Seen(
                    request.method,
                    request.url.path,
                    dict(request.query_params),
                    {k.lower(): v for k, v in request.headers.items()},
                )
            )
        if fake.unavailable is not None and fake.unavailable(request):
            return JSONResponse({"detail": "temporarily unavailable"}, status_code=503)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"detail": "not a device token"}, status_code=401)
        return None

    def answered(response: Response) -> Response:
        with fake.lock:
            fake.seen[-1].status = response.status_code
        return response

    def conditional(request: Request, body: Any) -> Response:
        etag = _etag(body)
        if request.headers.get("if-none-match") == etag:
            return answered(Response(status_code=304, headers={"ETag": etag}))
        return answered(JSONResponse(body, headers={"ETag": etag}))

    async def playlist(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return answered(refused)
        day = request.query_params.get("date", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            return answered(JSONResponse({"detail": "date must be YYYY-MM-DD"}, 422))
        with fake.lock:
            items = list(fake.playlists.get(day, []))
        body = {
            "date": day,
            "device_id": 7,
            "station_id": 1,
            "village_id": 2,
            "timezone": TIMEZONE,
            "items": items,
        }
        return conditional(request, body)

    async def emergencies(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return answered(refused)
        now = datetime.now(UTC)
        with fake.lock:
            active = [e for e in fake.emergencies if datetime.fromisoformat(e["expires_at"]) > now]
        return conditional(request, active)

    async def audio(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return answered(refused)
        digest = request.path_params["sha256"]
        with fake.lock:
            data = fake.audio.get(digest)
            corrupt = digest in fake.corrupt_once
            fake.corrupt_once.discard(digest)
            cut = fake.truncate_once.pop(digest, None)
        if data is None:
            return answered(JSONResponse({"detail": "no such audio"}, status_code=404))
        headers = {"ETag": f'"{digest}"', "X-Content-SHA256": digest, "Accept-Ranges": "bytes"}
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return answered(Response(status_code=416, headers=headers))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if corrupt:
            body = bytes(b ^ 0x5A for b in body)
        status = 206 if match else 200
        if cut is not None:
            # Declare the whole length, send `cut` bytes, then drop the connection.
            async def dribble() -> AsyncIterator[bytes]:
                yield body[:cut]
                raise ConnectionAbortedError("the fake server drops the download")

            headers["Content-Length"] = str(len(body))
            return answered(
                StreamingResponse(
                    dribble(), status_code=status, headers=headers, media_type="audio/mpeg"
                )
            )
        return answered(
            Response(body, status_code=status, headers=headers, media_type="audio/mpeg")
        )

    async def as_run(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return answered(refused)
        events = await request.json()
        if not isinstance(events, list):
            return answered(JSONResponse({"detail": "a JSON array is expected"}, 422))
        accepted: list[str] = []
        duplicates: list[str] = []
        rejected: list[dict[str, str]] = []
        with fake.lock:
            fake.as_run_posts.append(events)
            for event in events:
                event_id = event.get("event_id")
                missing = {"event_id", "sha256", "started_at", "ended_at", "status"} - set(event)
                if missing or event.get("status") not in ("played", "interrupted", "failed"):
                    rejected.append({"event_id": event_id, "reason": f"invalid: {missing}"})
                elif (event.get("broadcast_id") is None) == (event.get("emergency_id") is None):
                    rejected.append({"event_id": event_id, "reason": "broadcast or emergency"})
                elif datetime.fromisoformat(event["started_at"]) >= datetime.fromisoformat(
                    event["ended_at"]
                ):
                    rejected.append({"event_id": event_id, "reason": "started_at >= ended_at"})
                elif event.get("broadcast_id") in fake.reject_broadcast_ids:
                    rejected.append({"event_id": event_id, "reason": "unknown broadcast"})
                elif event_id in fake.as_run:
                    duplicates.append(event_id)
                else:
                    fake.as_run[event_id] = event
                    accepted.append(event_id)
            lose = fake.lose_as_run_answer_once
            fake.lose_as_run_answer_once = False
        if lose:
            # Stored, but the answer is lost: the agent must send again and get duplicates.
            return answered(JSONResponse({"detail": "gateway timeout"}, status_code=504))
        body = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
        return answered(JSONResponse(body))

    return Starlette(
        routes=[
            Route("/api/v1/playout/playlist", playlist),
            Route("/api/v1/playout/emergencies", emergencies),
            Route("/api/v1/playout/as-run", as_run, methods=["POST"]),
            Route("/api/v1/audio/{sha256}", audio),
        ]
    )
