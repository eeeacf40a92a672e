"""The hub's endpoints: Icecast's listener check, and an admin's probe of a stream."""

from __future__ import annotations

import logging
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Response

from app import clock
from app.accounts.deps import AdminUser, ViewerUser
from app.db import DbId, SessionDep
from app.playout import live
from app.stations import service as stations
from app.streams import listeners, probe, status
from app.streams.schemas import ProbeIn, ProbeOut, RelayTodayOut

log = logging.getLogger("loaxa.streams")

router = APIRouter(prefix="/api/v1/streams", tags=["streams"])


@router.post("/listener", include_in_schema=False)
def listener(
    session: SessionDep,
    mount: Annotated[str, Form(max_length=300)] = "",
    password: Annotated[str | None, Form(alias="pass", max_length=300)] = None,
    user: Annotated[str | None, Form(max_length=300)] = None,
) -> Response:
    """Icecast's listener_add: 200 with `icecast-auth-user: 1` when the device may listen."""
    answer = listeners.check_listener(session, mount=mount, password=password, user=user)
    if answer.allowed:
        return Response(status_code=200, headers={"icecast-auth-user": "1"})
    log.info("listener refused on %s: %s", mount, answer.reason)
    return Response(status_code=200, headers={"icecast-auth-message": answer.reason[:200]})


@router.post("/source", include_in_schema=False)
def source(
    session: SessionDep,
    mount: Annotated[str, Form(max_length=300)] = "",
    user: Annotated[str | None, Form(max_length=300)] = None,
    password: Annotated[str | None, Form(alias="pass", max_length=300)] = None,
) -> Response:
    """Icecast's stream_auth for a live mount: 200 with `icecast-auth-user: 1` when this
    source may feed it (the session's own credentials, or loaxa's feeder)."""
    refused = live.check_source(session, mount=mount, user=user, password=password)
    if refused is None:
        return Response(status_code=200, headers={"icecast-auth-user": "1"})
    log.info("source refused on %s: %s", mount, refused)
    return Response(status_code=200, headers={"icecast-auth-message": refused[:200]})


@router.post("/probe", response_model=ProbeOut)
def probe_stream(_admin: AdminUser, body: ProbeIn) -> ProbeOut:
    """Listen to a stream for a few seconds from the server: its codec and bitrate, or why
    not (http(s) only, at most a few seconds and a few hundred KB)."""
    return probe.probe(body.url)


@router.get("/today", response_model=list[RelayTodayOut])
def relays_today(session: SessionDep, user: ViewerUser, station_id: DbId) -> list[RelayTodayOut]:
    """The station's relays of its local today; during a slot, whether the hub receives
    its upstream, in words ("VOV1: đang nhận" / "VOV1: mất tín hiệu từ 06:12")."""
    station = stations.get_station(session, station_id, user=user)
    tz = ZoneInfo(station.timezone)
    return [
        RelayTodayOut(**r.__dict__, words=r.words(tz))
        for r in status.todays_relays(session, station=station, now=clock.now())
    ]
