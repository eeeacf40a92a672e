"""Playout endpoints: playlists, audio downloads, as-run logs and emergencies.

Devices learn about emergencies by polling `GET /api/v1/playout/emergencies` every few
seconds rather than over a push channel. A poll is one tiny indexed query and, almost
always, a 304 with no body; it works through any proxy or captive gateway and over flaky
GPRS/3G links that drop idle connections, and the server keeps no long-lived connection
open for each of 20 000 devices (no sockets to keep alive, no fan-out to get right across
workers and replicas). "Every online agent in scope starts it within 30 s" then only needs
a poll interval of at most 10 s, leaving time for a retry and the audio download.

The two polls are `async def` endpoints that read a device's rows in one statement (see
polldb.poll_execute and polldb.run_db for why it runs inline on PostgreSQL); a device's
health columns are written only when they are stale (see devices.service.telemetry_changes).
They are the only async endpoints here: everything else is plain `def`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from app import metrics
from app.accounts.deps import ApproverUser, CurrentPrincipal, TokenDep, ViewerUser
from app.db import DbId, SessionDep, unit_of_work
from app.devices.service import Telemetry, device_by_token, device_token_hash, parse_telemetry
from app.http import etag_matches, parse_day, render_json, strong_etag, wants_m3u
from app.pagination import Page, PageDep, paginate
from app.playout import access, asrun, emergencies, live, playlists, spoken
from app.playout.polldb import run_db
from app.playout.schemas import (
    AsRunResult,
    EmergencyCreate,
    EmergencyDetail,
    EmergencyOut,
    PlaylistOut,
)
from app.urls import base_url

router = APIRouter(prefix="/api/v1", tags=["playout"])
# The audio download keeps the "audio" tag it had when it lived with the upload.
audio_router = APIRouter(prefix="/api/v1", tags=["audio"])

M3U_MEDIA_TYPE = "audio/x-mpegurl; charset=utf-8"
JSON_MEDIA_TYPE = "application/json"
AgentVersion = Annotated[str | None, Header(alias="X-Loaxa-Agent-Version")]
FreeDisk = Annotated[str | None, Header(alias="X-Loaxa-Free-Disk-Bytes")]


def _parameter(
    where: str, name: str, description: str, **schema: Any
) -> dict[str, Any]:
    return {
        "in": where,
        "name": name,
        "required": False,
        "schema": {"type": "string", **schema},
        "description": description,
    }


CONDITIONAL_PARAMETERS = [
    _parameter("header", "If-None-Match", "the ETag of the copy the device has: 304 if unchanged")
]
TELEMETRY_PARAMETERS = [
    _parameter("header", "X-Loaxa-Agent-Version", "the agent's version, shown in device health"),
    _parameter("header", "X-Loaxa-Free-Disk-Bytes", "free space of the agent's audio cache"),
    _parameter(
        "header", "X-Loaxa-Push", "the agent's push connection: connected, polling or off"
    ),
]


def _telemetry(headers: Headers) -> Telemetry:
    return parse_telemetry(
        headers.get("x-loaxa-agent-version"),
        headers.get("x-loaxa-free-disk-bytes"),
        headers.get("x-loaxa-push"),
    )


def _conditional(body: bytes, media_type: str, if_none_match: str | None) -> Response:
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/playout/playlist",
    response_model=None,
    responses={
        200: {
            "model": PlaylistOut,
            "content": {"audio/x-mpegurl": {"schema": {"type": "string"}}},
            "description": "the playlist as JSON, or as extended M3U",
        },
        304: {"description": "unchanged since the ETag in If-None-Match"},
    },
    openapi_extra={
        "parameters": [
            _parameter(
                "query",
                "date",
                "YYYY-MM-DD, the station's local day; default: today",
                format="date",
                pattern=r"^(20\d\d|2100)-\d\d-\d\d$",
            ),
            _parameter(
                "query",
                "format",
                "json (the default) or m3u; or send Accept",
                enum=["json", "m3u", "m3u8"],
            ),
            *CONDITIONAL_PARAMETERS,
            *TELEMETRY_PARAMETERS,
        ]
    },
)
async def get_playlist(request: Request, token: TokenDep) -> Response:
    """The device's playlist for a local day; ETag and 304, JSON or extended M3U."""
    # Query and headers are read here rather than declared as parameters: this is the
    # hottest endpoint, and FastAPI's per-parameter validation costs more than the rest
    # of the Python work (they are documented in openapi_extra above).
    query, headers = request.query_params, request.headers
    day = parse_day(query.get("date"))
    as_m3u = wants_m3u(query.get("format"), headers.get("accept"))
    token_hash = device_token_hash(token)
    telemetry = _telemetry(headers)
    playlist = await run_db(
        lambda: playlists.pull_playlist(token_hash=token_hash, day=day, telemetry=telemetry)
    )
    base = base_url(request)
    inm = headers.get("if-none-match")
    if as_m3u:
        answer = _conditional(playlists.render_m3u(playlist, base_url=base), M3U_MEDIA_TYPE, inm)
    else:
        body = render_json(playlists.playlist_document(playlist, base_url=base))
        answer = _conditional(body, JSON_MEDIA_TYPE, inm)
    metrics.PLAYLIST_PULLS.labels(
        "not_modified" if answer.status_code == 304 else "full", "m3u" if as_m3u else "json"
    ).inc()
    return answer


@router.get(
    "/playout/emergencies",
    response_model=None,
    responses={
        200: {"model": list[EmergencyOut], "description": "active emergencies, newest first"},
        304: {"description": "unchanged since the ETag in If-None-Match"},
    },
    openapi_extra={"parameters": [*CONDITIONAL_PARAMETERS, *TELEMETRY_PARAMETERS]},
)
async def poll_emergencies(request: Request, token: TokenDep) -> Response:
    """The active emergencies in the device's scope, newest first, and the station's open
    live session when the device is in its scope (an item with ``"kind": "live"`` and its
    ``stream_url``: play that mount until it leaves this list); poll with If-None-Match."""
    headers = request.headers
    token_hash = device_token_hash(token)
    telemetry = _telemetry(headers)
    device, active, lives = await run_db(
        lambda: emergencies.pull_emergencies(token_hash=token_hash, telemetry=telemetry)
    )
    base = base_url(request)
    items = [emergencies.emergency_document(e, base_url=base) for e in active]
    items += [
        live.live_document(
            live_id=x.id,
            title=x.title,
            priority=x.priority,
            mount=x.mount,
            created_at=x.created_at,
            base_url=base,
        )
        for x in lives
    ]
    body = render_json(items)
    response = _conditional(body, JSON_MEDIA_TYPE, headers.get("if-none-match"))
    if active and response.status_code == status.HTTP_200_OK:
        # The device did not have this list yet: record its pickup (rare; never on a 304).
        ids = [e.id for e in active]
        await run_db(lambda: emergencies.record_pickups(device_id=device.id, emergency_ids=ids))
    return response


@router.post("/playout/as-run", response_model=AsRunResult)
def post_as_run(
    session: SessionDep,
    token: TokenDep,
    body: Annotated[Any, Body(description='[{"event_id", "broadcast_id", …}] or {"events": […]}')],
    agent_version: AgentVersion = None,
    free_disk_bytes: FreeDisk = None,
) -> AsRunResult:
    """Report what was played; idempotent by event_id, bad events rejected one by one."""
    device = device_by_token(session, token_hash=device_token_hash(token))
    return asrun.record_as_run(
        session,
        device=device,
        body=body,
        telemetry=parse_telemetry(agent_version, free_disk_bytes),
    )


@router.post("/emergencies", response_model=EmergencyOut, status_code=status.HTTP_201_CREATED)
async def create_emergency(
    request: Request,
    user: ApproverUser,
    body: EmergencyCreate,
    response: Response,
) -> EmergencyOut:
    """Put an approved segment, or a typed message read aloud (played `repeat` times), on
    air at once on every device in scope.

    Text: one step makes the segment in the station's emergency programme, approves it
    (the audit log records the approver's act) and starts the emergency. The speech is
    made in the thread pool with no transaction open.
    """
    if body.text is not None:
        emergency_id = await run_in_threadpool(
            spoken.emergency_from_text,
            user=user,
            station_id=body.station_id,
            text=body.text,
            village_ids=body.village_ids,
            repeat=body.repeat,
        )
    else:
        assert body.segment_id is not None
        segment_id = body.segment_id

        def from_segment() -> int:
            with unit_of_work() as session:
                return emergencies.create_emergency(
                    session,
                    station_id=body.station_id,
                    segment_id=segment_id,
                    village_ids=body.village_ids,
                    actor=user,
                ).id

        emergency_id = await run_in_threadpool(from_segment)
    response.headers["Location"] = f"/api/v1/emergencies/{emergency_id}"

    def answer() -> EmergencyOut:
        with unit_of_work(write=False) as session:
            emergency = emergencies.get_emergency(session, emergency_id, user=user)
            return emergencies.emergency_out(session, emergency, base_url=base_url(request))

    return await run_in_threadpool(answer)


@router.get("/emergencies", response_model=Page[EmergencyOut])
def list_emergencies(
    request: Request,
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    station_id: DbId | None = None,
    active: bool | None = None,
) -> Page[EmergencyOut]:
    """Emergencies, newest first; active=true for those still on air."""
    stmt = emergencies.list_query(user=user, station_id=station_id, active=active)
    rows, total = paginate(session, stmt, page)
    base = base_url(request)
    return Page(
        items=emergencies.emergencies_out(session, rows, base_url=base),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/emergencies/{emergency_id}", response_model=EmergencyDetail)
def get_emergency(
    request: Request, session: SessionDep, user: ViewerUser, emergency_id: DbId
) -> EmergencyDetail:
    """The emergency, with each device in scope: when it picked it up and started it."""
    emergency = emergencies.get_emergency(session, emergency_id, user=user)
    return emergencies.emergency_detail(session, emergency, base_url=base_url(request))


@router.delete("/emergencies/{emergency_id}", response_model=EmergencyOut)
def cancel_emergency(
    request: Request, session: SessionDep, user: ApproverUser, emergency_id: DbId
) -> EmergencyOut:
    """Stop an emergency: devices drop it at their next poll. Cancelling twice is harmless."""
    emergency = emergencies.get_emergency(session, emergency_id, user=user, for_update=True)
    emergencies.cancel_emergency(session, emergency=emergency, actor=user)
    return emergencies.emergency_out(session, emergency, base_url=base_url(request))


@audio_router.get(
    "/audio/{sha256}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                "audio/mpeg": {"schema": {"type": "string", "format": "binary"}},
                "audio/mp4": {"schema": {"type": "string", "format": "binary"}},
            }
        },
        206: {
            "description": "the part of the file a Range asked for",
            "content": {
                "audio/mpeg": {"schema": {"type": "string", "format": "binary"}},
                "audio/mp4": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        416: {"description": "the Range lies outside the file"},
    },
)
def download_audio(principal: CurrentPrincipal, sha256: str) -> FileResponse:
    """The playout file (or a listening copy, AAC in MP4, for staff); supports Range
    requests (resumable downloads) and ETag."""
    with unit_of_work(write=False) as session:
        path = access.fetchable_file(session, principal=principal, sha256=sha256)
    return FileResponse(
        path,
        media_type=access.media_type(path),
        filename=path.name,
        headers={
            "ETag": f'"{sha256}"',
            "X-Content-SHA256": sha256,
            # Content-addressed: the bytes behind this URL never change.
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )
