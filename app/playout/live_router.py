"""Live sessions over HTTP: open, read, end, and the console's WebSocket feed.

The WebSocket (``/api/v1/live/{id}/ws``) takes the browser's microphone as MediaRecorder
chunks and feeds the session's mount through ffmpeg (loaxa's own source password for that
mount). It needs a signed-in console session of an approver who can see the station and
the session's CSRF token (``?csrf_token=``); frames after the session ended are refused in
words and the socket closes. Nothing it receives goes anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Annotated, Any, cast
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request, Response, WebSocket, status
from fastapi.websockets import WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from app.accounts.deps import ApproverUser, ViewerUser
from app.accounts.models import Role, User
from app.audio.models import AudioAsset
from app.config import get_settings
from app.db import DbId, SessionDep, unit_of_work
from app.errors import LoaxaError
from app.pagination import Page, PageDep, paginate
from app.playout import live
from app.playout.models import LiveSession
from app.playout.schemas import LiveCreate, LiveOut, LiveSource
from app.streams.mounts import hub_url, mount_secret
from app.urls import base_url

log = logging.getLogger("loaxa.live")

router = APIRouter(prefix="/api/v1", tags=["live"])

CHECK_EVERY_S = 1.0  # how often a feed looks whether its session was ended
FORMATS = {"webm": "matroska", "ogg": "ogg"}
POLICY = 1008  # WebSocket close: policy violation


def websocket_url(base: str, live_id: int) -> str:
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, f"/api/v1/live/{live_id}/ws", "", ""))


def live_out(session: Any, s: LiveSession, *, base: str, password: str | None = None) -> LiveOut:
    asset = session.get(AudioAsset, s.recording_audio_id) if s.recording_audio_id else None
    return LiveOut(
        id=s.id,
        station_id=s.station_id,
        village_ids=s.village_ids,
        title=s.title,
        priority=s.priority,
        source=LiveSource(
            url=hub_url(base), mount=s.mount, username=s.source_username, password=password
        ),
        websocket_url=websocket_url(base, s.id),
        listen_url=live.stream_url(base, s),
        created_at=s.created_at,
        source_seen_at=s.source_seen_at,
        ended_at=s.ended_at,
        end_reason=s.end_reason,
        recording_sha256=asset.sha256 if asset else None,
        recording_ms=s.recording_ms,
        recording_loudness_lufs=asset.loudness_lufs if asset else None,
        recording_note=s.recording_note,
    )


@router.post("/live", response_model=LiveOut, status_code=status.HTTP_201_CREATED)
def open_live(
    request: Request, session: SessionDep, user: ApproverUser, body: LiveCreate, response: Response
) -> LiveOut:
    """Open a live session on the station's hub; how to feed it (the source password is
    shown only here). 409 while another is open on the station."""
    s, password = live.create_session(
        session,
        station_id=body.station_id,
        title=body.title,
        priority=body.priority,
        village_ids=body.village_ids,
        actor=user,
    )
    response.headers["Location"] = f"/api/v1/live/{s.id}"
    return live_out(session, s, base=base_url(request), password=password)


@router.get("/live", response_model=Page[LiveOut])
def list_live(
    request: Request,
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    station_id: DbId | None = None,
) -> Page[LiveOut]:
    """Live sessions, newest first."""
    rows, total = paginate(session, live.list_query(user=user, station_id=station_id), page)
    base = base_url(request)
    return Page(
        items=[live_out(session, s, base=base) for s in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/live/{live_id}", response_model=LiveOut)
def get_live(request: Request, session: SessionDep, user: ViewerUser, live_id: DbId) -> LiveOut:
    """The session: whether its source is on air, how it ended, its recording once kept."""
    s = live.get_session(session, live_id, user=user)
    return live_out(session, s, base=base_url(request))


@router.delete("/live/{live_id}", response_model=LiveOut)
def end_live(request: Request, session: SessionDep, user: ApproverUser, live_id: DbId) -> LiveOut:
    """ "Kết thúc": devices go back to their schedule at their next poll. Twice: harmless."""
    s = live.get_session(session, live_id, user=user, for_update=True)
    live.end_session(session, s, actor=user)
    return live_out(session, s, base=base_url(request))


# The console's feed.


def _hub_target(mount: str) -> str:
    settings = get_settings()
    hub = settings.icecast_url or f"http://127.0.0.1:{settings.icecast_port}"
    parts = urlsplit(hub)
    secret = mount_secret("source", mount)
    netloc = f"{live.LOAXA_SOURCE_USER}:{secret}@{parts.hostname}:{parts.port or 80}"
    return urlunsplit(("icecast", netloc, mount, "", ""))


def feeder_command(mount: str, fmt: str) -> list[str]:
    """ffmpeg: MediaRecorder's stream on stdin to the mount, MP3 64 kbit/s mono, as soon as
    it comes (no input buffering: speech must reach the villages within seconds)."""
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-fflags", "nobuffer", "-probesize", "32768",
        "-analyzeduration", "0", "-f", FORMATS[fmt], "-i", "pipe:0", "-vn",
        "-ac", "1", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "64k",
        "-flush_packets", "1", "-content_type", "audio/mpeg", "-f", "mp3", _hub_target(mount),
    ]  # fmt: skip


def _who(ws: WebSocket, live_id: int, token: str) -> tuple[str | None, str | None]:
    """(the mount, None) when this console session may feed the session; else (None, why)."""
    from app.console import session as console_session
    from app.console.auth import signed_in_user

    request = cast(Request, ws)
    user: User | None = signed_in_user(request)
    if user is None:
        return None, "not signed in: sign in to the console first"
    if not Role(user.role).at_least(Role.approver):
        return None, "only an approver may speak live"
    if not console_session.csrf_valid(request, token):
        return None, "the CSRF token is missing or wrong: reload the page"
    try:
        with unit_of_work(write=False) as db:
            s = live.get_session(db, live_id, user=user)
            if s.ended_at is not None:
                return None, f"live session {live_id} has ended: frames are refused"
            return s.mount, None
    except LoaxaError as exc:
        return None, exc.message


def _ended(live_id: int) -> bool:
    with unit_of_work(write=False) as db:
        s = db.get(LiveSession, live_id)
        return s is None or s.ended_at is not None


@router.websocket("/live/{live_id}/ws")
async def feed(
    ws: WebSocket,
    live_id: int,
    csrf_token: Annotated[str, Query(max_length=100)] = "",
    format: Annotated[str, Query(max_length=10)] = "webm",
) -> None:
    """The console's microphone to the session's mount (see the module's docstring)."""
    await ws.accept()
    mount, refused = await run_in_threadpool(_who, ws, live_id, csrf_token)
    if refused is None and format not in FORMATS:
        refused = f"unknown format {format!r}: use webm or ogg"
    if mount is None or refused is not None:
        await ws.send_json({"error": refused})
        await ws.close(code=POLICY, reason=(refused or "")[:120])
        return
    process = await asyncio.create_subprocess_exec(
        *feeder_command(mount, format),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None
    checked = time.monotonic()
    frames = 0
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if not data:
                continue
            if time.monotonic() - checked >= CHECK_EVERY_S:
                checked = time.monotonic()
                if await run_in_threadpool(_ended, live_id):
                    why = f"live session {live_id} has ended: frames are refused"
                    await ws.send_json({"error": why})
                    await ws.close(code=POLICY, reason=why[:120])
                    break
            if process.returncode is not None:
                why = "the hub refused the feed or is not running"
                await ws.send_json({"error": why})
                await ws.close(code=1011, reason=why)
                break
            process.stdin.write(data)
            await process.stdin.drain()
            frames += 1
            if frames == 1:
                await ws.send_json({"on_air": True})
    except (WebSocketDisconnect, ConnectionError, BrokenPipeError):
        pass
    finally:
        with contextlib.suppress(Exception):
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=3)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.info("live session %d: the console's feed stopped after %d frames", live_id, frames)
