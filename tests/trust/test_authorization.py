"""The authorization matrix: every route of the app, called by every kind of caller.

MATRIX has one line per (method, path template) of `app.routes`: the status each principal
must get, in PRINCIPALS order, and the builder that makes a valid request for it (a fresh
draft segment for a write that changes it, real audio for an upload...), so that what is
tested is the auth decision, never the validation. A route without a line, or a line
without a route, fails the test and is named.

Principals: anonymous; viewer, editor, approver of station A and an admin; station A's
playout PC; an approver and the PC of station B, who must see nothing of A: besides their
statuses, every 2xx body they get from a non-public route is searched for A's secrets
(its name, its segment's title, its audio's sha256).

To add an endpoint: one line in MATRIX (the patterns below cover most), and a builder when
none of the existing ones fits.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.console.routing import ConsoleRoute
from app.middleware import flat_routes
from tests.helpers import PASSWORD
from tests.world import World

PRINCIPALS = (
    "anon", "viewer", "editor", "approver", "admin", "device", "other_staff", "other_device"
)  # fmt: skip


def codes(text: str) -> tuple[int, ...]:
    found = tuple(int(c) for c in text.split())
    assert len(found) == len(PRINCIPALS), text
    return found


# Patterns, in PRINCIPALS order.
def PUBLIC(ok: int = 200) -> tuple[int, ...]:
    return codes(" ".join([str(ok)] * len(PRINCIPALS)))


def STAFF_READ(ok: int = 200) -> tuple[int, ...]:  # staff of A; B's staff get 404
    return codes(f"401 {ok} {ok} {ok} {ok} 403 404 403")


def STAFF_LIST() -> tuple[int, ...]:  # every staff member lists their own station's
    return codes("401 200 200 200 200 403 200 403")


def EDITOR(ok: int = 200) -> tuple[int, ...]:
    return codes(f"401 403 {ok} {ok} {ok} 403 404 403")


def APPROVER(ok: int = 200) -> tuple[int, ...]:
    return codes(f"401 403 403 {ok} {ok} 403 404 403")


def ADMIN(ok: int = 200) -> tuple[int, ...]:
    return codes(f"401 403 403 403 {ok} 403 403 403")


def DEVICE() -> tuple[int, ...]:  # its own: B's PC gets its own (empty) answer
    return codes("401 403 403 403 403 200 403 200")


@dataclass
class Call:
    path: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[Any], None] | None = None  # more than the status, when it matters


class Ctx:
    """The world, and fresh resources of station A made by its editor and approver."""

    def __init__(self, client: TestClient, world: World) -> None:
        self.client, self.world = client, world
        self.h = world.headers
        self.n = itertools.count(1)

    def draft(self, **extra: Any) -> int:
        body = {"title": f"Nháp {next(self.n)}", "programme": "cchc", "topic": "progress",
                "script": "Kính thưa bà con."}  # fmt: skip
        body.update(station_id=self.world.station_a, **extra)
        r = self.client.post("/api/v1/segments", json=body, headers=self.h["editor"])
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def submitted(self) -> int:
        sid = self.draft()
        r = self.client.post(f"/api/v1/segments/{sid}/submit", headers=self.h["editor"])
        assert r.status_code == 200, r.text
        return sid

    def broadcast(self, *, rundown: bool = False) -> int:
        # A CCHC column in a month of its own (one a month), far from the world's.
        month = next(self.n)
        starts = datetime(2030 + month // 12, 1 + month % 12, 15, 10, tzinfo=UTC)
        r = self.client.post(
            "/api/v1/broadcasts",
            json={"programme": "cchc", "station_id": self.world.station_a,
                  "starts_at": starts.isoformat()},
            headers=self.h["approver"],
        )  # fmt: skip
        assert r.status_code == 201, r.text
        bid = int(r.json()["id"])
        if rundown:
            r = self.client.put(
                f"/api/v1/broadcasts/{bid}/rundown",
                # The world's one segment aired already: placing it again is confirmed.
                json={"segment_ids": [self.world.segment["id"]], "confirm_aired": True},
                headers=self.h["approver"],
            )
            assert r.status_code == 200, r.text
        return bid

    def emergency(self) -> int:
        r = self.client.post(
            "/api/v1/emergencies",
            json={"station_id": self.world.station_a, "segment_id": self.world.segment["id"]},
            headers=self.h["approver"],
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


Builder = Callable[[Ctx, str], Call]


# --- builders: a valid request of each kind, for principal `who` ------------------------------


def nothing(ctx: Ctx, who: str) -> Call:
    return Call()


def station(ctx: Ctx, who: str) -> Call:
    return Call(path={"station_id": ctx.world.station_a})


def station_report(ctx: Ctx, who: str) -> Call:
    return Call(params={"station_id": ctx.world.station_a, "year": 2030})


def station_plan(ctx: Ctx, who: str) -> Call:
    return Call(path={"station_id": ctx.world.station_a}, params={"year": 2031})


def village_cadence(ctx: Ctx, who: str) -> Call:
    return Call(
        path={"station_id": ctx.world.station_a, "village_id": ctx.world.villages_a[0]},
        json={"cadence": None},
    )


def programme_rules(ctx: Ctx, who: str) -> Call:
    return Call(
        path={"station_id": ctx.world.station_a, "code": "cchc"},
        json={"max_duration_ms": 120_000},
    )


def new_relay(ctx: Ctx, who: str) -> Call:
    return Call(
        path={"station_id": ctx.world.station_a},
        json={
            "code": f"relay{next(ctx.n)}",
            "name": "Tiếp sóng",
            "scope": "station",
            "cadence": {"kind": "daily", "time": "03:00"},
            "min_duration_ms": 60_000,
            "max_duration_ms": 60_000,
            "source": {"kind": "relay", "url": "http://127.0.0.1:9/vov1"},
        },
    )


def probe_closed(ctx: Ctx, who: str) -> Call:
    return Call(json={"url": "http://127.0.0.1:9/vov1"})  # nothing listens: answered at once


def station_query(ctx: Ctx, who: str) -> Call:
    return Call(params={"station_id": ctx.world.station_a})


def new_station(ctx: Ctx, who: str) -> Call:
    return Call(json={"name": f"Xã mới {next(ctx.n)}"})


def new_village(ctx: Ctx, who: str) -> Call:
    return Call(path={"station_id": ctx.world.station_a}, json={"name": f"Thôn {next(ctx.n)}"})


def new_user(ctx: Ctx, who: str) -> Call:
    return Call(
        json={"username": f"nguoi{next(ctx.n)}", "password": PASSWORD, "role": "viewer",
              "station_id": ctx.world.station_a}
    )  # fmt: skip


def fresh_user(ctx: Ctx) -> int:
    r = ctx.client.post("/api/v1/users", json=new_user(ctx, "admin").json, headers=ctx.h["admin"])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def user_role(ctx: Ctx, who: str) -> Call:
    return Call(path={"user_id": fresh_user(ctx)}, json={"role": "editor"})


def user_password(ctx: Ctx, who: str) -> Call:
    return Call(path={"user_id": fresh_user(ctx)}, json={"password": PASSWORD + "-mới"})


def station_edit(ctx: Ctx, who: str) -> Call:
    return Call(path={"station_id": ctx.world.station_a}, json={"hotline": "0237 3868 116"})


def station_register(ctx: Ctx, who: str) -> Call:
    return Call(params={"station_id": ctx.world.station_a})


def issue_report(ctx: Ctx, who: str) -> Call:
    return Call(json={"station_id": ctx.world.station_a, "year": 2030})


def warning(ctx: Ctx, who: str) -> Call:
    """A fresh warning of station A for each caller (acknowledging twice is fine, too)."""
    from app.db import unit_of_work
    from app.schedule import warnings

    with unit_of_work() as session:
        w = warnings.raise_warning(
            session, kind="overlap", station_id=ctx.world.station_a,
            message="thử", dedupe_key=f"matrix:{next(ctx.n)}",
        )  # fmt: skip
        assert w is not None
        session.flush()
        wid = w.id
    return Call(path={"warning_id": wid})


def new_device(ctx: Ctx, who: str) -> Call:
    return Call(json={"name": f"PC {next(ctx.n)}", "station_id": ctx.world.station_a})


def spare_device(ctx: Ctx, who: str) -> Call:
    """A device of its own (revoking the world's would lock its PC out of the other rows)."""
    made = new_device(ctx, who).json
    r = ctx.client.post("/api/v1/devices", json=made, headers=ctx.h["admin"])
    assert r.status_code == 201, r.text
    return Call(path={"device_id": r.json()["id"]})


def sign_in(ctx: Ctx, who: str) -> Call:
    return Call(data={"username": "viewer1", "password": PASSWORD})


def dictionary(ctx: Ctx, who: str) -> Call:
    return Call(path={"station_id": ctx.world.station_a}, json={"entries": {"HTX": "hợp tác xã"}})


def tts_preview(ctx: Ctx, who: str) -> Call:
    return Call(params={"text": "UBND xã họp lúc 7h30"})


def new_segment(ctx: Ctx, who: str) -> Call:
    return Call(
        json={"title": "Tin mới", "programme": "cchc", "topic": "progress",
              "station_id": ctx.world.station_a}
    )  # fmt: skip


def segment(ctx: Ctx, who: str) -> Call:
    return Call(path={"segment_id": ctx.world.segment["id"]})


def draft_edit(ctx: Ctx, who: str) -> Call:
    return Call(path={"segment_id": ctx.draft()}, json={"title": "Sửa", "version": 1})


def draft(ctx: Ctx, who: str) -> Call:
    return Call(path={"segment_id": ctx.draft()})


def draft_audio(ctx: Ctx, who: str) -> Call:
    content = ctx.world.audio.read_bytes()
    return Call(path={"segment_id": ctx.draft()}, files={"file": ("tin.mp3", content)})


def draft_tts(ctx: Ctx, who: str) -> Call:
    return Call(path={"segment_id": ctx.draft()}, json={"engine": "espeak"})


def submitted(ctx: Ctx, who: str) -> Call:
    return Call(path={"segment_id": ctx.submitted()})


def earlier_audio(ctx: Ctx, who: str) -> Call:
    """A draft whose uploaded audio was replaced by a reading: the upload can come back."""
    sid = ctx.draft()
    editor = ctx.h["editor"]
    content = ctx.world.audio.read_bytes()
    r = ctx.client.put(
        f"/api/v1/segments/{sid}/audio", files={"file": ("tin.mp3", content)}, headers=editor
    )
    assert r.status_code == 200, r.text
    earlier = ctx.client.get(f"/api/v1/segments/{sid}/audio-history", headers=editor).json()
    r = ctx.client.post(f"/api/v1/segments/{sid}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 200, r.text
    return Call(path={"segment_id": sid}, json={"audio_id": earlier[0]["audio_id"]})


def submitted_reject(ctx: Ctx, who: str) -> Call:
    return Call(path={"segment_id": ctx.submitted()}, json={"reason": "Bổ sung số liệu"})


def broadcast(ctx: Ctx, who: str) -> Call:
    return Call(path={"broadcast_id": ctx.world.broadcast["id"]})


def new_broadcast(ctx: Ctx, who: str) -> Call:
    month = next(ctx.n)
    starts = datetime(2040 + month // 12, 1 + month % 12, 20, 17, tzinfo=UTC)
    return Call(
        json={"programme": "cchc", "station_id": ctx.world.station_a,
              "starts_at": starts.isoformat()}
    )  # fmt: skip


def broadcast_move(ctx: Ctx, who: str) -> Call:
    bid = ctx.broadcast()
    got = ctx.client.get(f"/api/v1/broadcasts/{bid}", headers=ctx.h["viewer"]).json()
    moved = datetime.fromisoformat(got["starts_at"]) + timedelta(days=1)
    return Call(path={"broadcast_id": bid}, json={"starts_at": moved.isoformat()})


def fresh_broadcast(ctx: Ctx, who: str) -> Call:
    return Call(path={"broadcast_id": ctx.broadcast()})


def rundown_set(ctx: Ctx, who: str) -> Call:
    return Call(
        path={"broadcast_id": ctx.broadcast()},
        json={"segment_ids": [ctx.world.segment["id"]], "confirm_aired": True},
    )


def ready_broadcast(ctx: Ctx, who: str) -> Call:
    return Call(path={"broadcast_id": ctx.broadcast(rundown=True)})


def emergency(ctx: Ctx, who: str) -> Call:
    return Call(path={"emergency_id": ctx.world.emergency["id"]})


def fresh_emergency(ctx: Ctx, who: str) -> Call:
    return Call(path={"emergency_id": ctx.emergency()})


def new_emergency(ctx: Ctx, who: str) -> Call:
    return Call(json={"station_id": ctx.world.station_a, "segment_id": ctx.world.segment["id"]})


def _end_open_live(ctx: Ctx) -> None:
    """Station A has one live session at a time: end what is open before the next call."""
    listed = ctx.client.get(
        "/api/v1/live", params={"station_id": ctx.world.station_a}, headers=ctx.h["approver"]
    )
    assert listed.status_code == 200, listed.text
    for item in listed.json()["items"]:
        if item.get("ended_at") is None:
            ended = ctx.client.delete(f"/api/v1/live/{item['id']}", headers=ctx.h["approver"])
            assert ended.status_code == 200, ended.text


def new_live(ctx: Ctx, who: str) -> Call:
    _end_open_live(ctx)
    return Call(json={"station_id": ctx.world.station_a, "title": "Thông báo trực tiếp",
                      "priority": "normal"})  # fmt: skip


def live_session(ctx: Ctx, who: str) -> Call:
    _end_open_live(ctx)
    r = ctx.client.post(
        "/api/v1/live",
        json={"station_id": ctx.world.station_a, "title": "Phiên thử", "priority": "normal"},
        headers=ctx.h["approver"],
    )
    assert r.status_code == 201, r.text
    return Call(path={"live_id": r.json()["id"]})


def master_audio(ctx: Ctx, who: str) -> Call:
    return Call(path={"sha256": ctx.world.broadcast["master_sha256"]})


def podcast_episode(ctx: Ctx, who: str) -> Call:
    return Call(path={"station_id": ctx.world.station_a, "broadcast_id": ctx.world.broadcast["id"]})


def as_run(ctx: Ctx, who: str) -> Call:
    """A played event of A's aired broadcast: A's PC has it stored, B's has it refused."""
    b = ctx.world.broadcast
    starts = datetime.fromisoformat(b["starts_at"])
    event = {
        "event_id": str(uuid.uuid4()),
        "broadcast_id": b["id"],
        "sha256": b["master_sha256"],
        "started_at": starts.isoformat(),
        "ended_at": (starts + timedelta(milliseconds=b["master_duration_ms"])).isoformat(),
        "status": "played",
    }

    def check(r: Any) -> None:
        if who == "device":
            assert r.json()["accepted"] == [event["event_id"]], r.text
        elif who == "other_device":
            assert r.json()["accepted"] == [] and r.json()["rejected"], r.text

    return Call(json=[event], check=check)


# --- the matrix ---------------------------------------------------------------------------------

MATRIX: dict[tuple[str, str], tuple[tuple[int, ...], Builder]] = {
    ("GET", "/openapi.json"): (PUBLIC(), nothing),
    ("GET", "/docs"): (PUBLIC(), nothing),
    ("GET", "/docs/oauth2-redirect"): (PUBLIC(), nothing),
    ("GET", "/redoc"): (PUBLIC(), nothing),
    ("GET", "/healthz"): (PUBLIC(), nothing),
    ("GET", "/readyz"): (PUBLIC(), nothing),
    ("GET", "/metrics"): (PUBLIC(), nothing),  # DESIGN: the operator's network (the proxy's job)
    ("POST", "/api/v1/auth/token"): (PUBLIC(), sign_in),
    ("POST", "/api/v1/users"): (ADMIN(201), new_user),
    ("GET", "/api/v1/users"): (ADMIN(), nothing),
    ("PATCH", "/api/v1/users/{user_id}"): (ADMIN(), user_role),
    ("POST", "/api/v1/users/{user_id}/password"): (ADMIN(204), user_password),
    ("PATCH", "/api/v1/stations/{station_id}"): (ADMIN(), station_edit),
    ("GET", "/api/v1/reports/compliance/issued"): (STAFF_READ(), station_register),
    ("POST", "/api/v1/reports/compliance/issue"): (APPROVER(201), issue_report),
    ("GET", "/api/v1/users/me"): (codes("401 200 200 200 200 403 200 403"), nothing),
    ("GET", "/api/v1/stations"): (STAFF_LIST(), nothing),
    ("POST", "/api/v1/stations"): (ADMIN(201), new_station),
    ("GET", "/api/v1/stations/{station_id}"): (STAFF_READ(), station),
    ("GET", "/api/v1/stations/{station_id}/villages"): (STAFF_READ(), station),
    ("POST", "/api/v1/stations/{station_id}/villages"): (ADMIN(201), new_village),
    ("PUT", "/api/v1/stations/{station_id}/villages/{village_id}/cadence"): (APPROVER(), village_cadence),  # noqa: E501
    ("PATCH", "/api/v1/stations/{station_id}/programmes/{code}"): (APPROVER(), programme_rules),
    ("GET", "/api/v1/stations/{station_id}/programmes"): (STAFF_READ(), station),
    ("POST", "/api/v1/stations/{station_id}/programmes"): (ADMIN(201), new_relay),
    # Icecast asks here about each listener: anyone may ask, the token decides the answer.
    ("POST", "/api/v1/streams/listener"): (PUBLIC(), nothing),
    ("POST", "/api/v1/streams/source"): (PUBLIC(), nothing),
    ("POST", "/api/v1/streams/probe"): (ADMIN(), probe_closed),
    ("GET", "/api/v1/streams/today"): (STAFF_READ(), station_query),
    ("POST", "/api/v1/stations/{station_id}/plan"): (APPROVER(), station_plan),
    ("GET", "/api/v1/stations/{station_id}/abbreviations"): (STAFF_READ(), station),
    ("PUT", "/api/v1/stations/{station_id}/abbreviations"): (EDITOR(), dictionary),
    ("GET", "/api/v1/stations/{station_id}/schedule.ics"): (STAFF_READ(), station),
    ("GET", "/api/v1/stations/{station_id}/podcast.xml"): (PUBLIC(), station),
    ("GET", "/api/v1/stations/{station_id}/podcast/{broadcast_id}.mp3"): (PUBLIC(), podcast_episode),  # noqa: E501
    ("HEAD", "/api/v1/stations/{station_id}/podcast/{broadcast_id}.mp3"): (PUBLIC(), podcast_episode),  # noqa: E501
    ("GET", "/api/v1/stations/{station_id}/podcast/{broadcast_id}.m4a"): (PUBLIC(), podcast_episode),  # noqa: E501
    ("HEAD", "/api/v1/stations/{station_id}/podcast/{broadcast_id}.m4a"): (PUBLIC(), podcast_episode),  # noqa: E501
    ("POST", "/api/v1/devices"): (ADMIN(201), new_device),
    ("GET", "/api/v1/devices"): (ADMIN(), nothing),
    ("POST", "/api/v1/devices/{device_id}/revoke"): (ADMIN(), spare_device),
    ("POST", "/api/v1/devices/{device_id}/token"): (ADMIN(), spare_device),
    ("POST", "/api/v1/segments"): (EDITOR(201), new_segment),
    ("GET", "/api/v1/segments"): (STAFF_LIST(), nothing),
    ("GET", "/api/v1/segments/{segment_id}"): (STAFF_READ(), segment),
    ("PATCH", "/api/v1/segments/{segment_id}"): (EDITOR(), draft_edit),
    # Only its creator (station A's editor) or an admin deletes a draft or withdraws it.
    ("DELETE", "/api/v1/segments/{segment_id}"): (codes("401 403 204 403 204 403 404 403"), draft),
    ("POST", "/api/v1/segments/{segment_id}/withdraw"): (
        codes("401 403 200 403 200 403 404 403"),
        submitted,
    ),
    ("GET", "/api/v1/segments/{segment_id}/audio-history"): (STAFF_READ(), segment),
    ("POST", "/api/v1/segments/{segment_id}/audio/restore"): (EDITOR(), earlier_audio),
    ("POST", "/api/v1/segments/{segment_id}/submit"): (EDITOR(), draft),
    ("POST", "/api/v1/segments/{segment_id}/approve"): (APPROVER(), submitted),
    ("POST", "/api/v1/segments/{segment_id}/reject"): (APPROVER(), submitted_reject),
    ("PUT", "/api/v1/segments/{segment_id}/audio"): (EDITOR(), draft_audio),
    ("POST", "/api/v1/segments/{segment_id}/tts"): (EDITOR(), draft_tts),
    ("GET", "/api/v1/tts/preview"): (codes("401 403 200 200 200 403 200 403"), tts_preview),
    ("GET", "/api/v1/broadcasts"): (STAFF_LIST(), nothing),
    ("POST", "/api/v1/broadcasts"): (APPROVER(201), new_broadcast),
    ("GET", "/api/v1/broadcasts/{broadcast_id}"): (STAFF_READ(), broadcast),
    ("PATCH", "/api/v1/broadcasts/{broadcast_id}"): (APPROVER(), broadcast_move),
    ("DELETE", "/api/v1/broadcasts/{broadcast_id}"): (APPROVER(), fresh_broadcast),
    ("GET", "/api/v1/broadcasts/{broadcast_id}/rundown"): (STAFF_READ(), broadcast),
    ("PUT", "/api/v1/broadcasts/{broadcast_id}/rundown"): (APPROVER(), rundown_set),
    ("POST", "/api/v1/broadcasts/{broadcast_id}/assemble"): (APPROVER(), ready_broadcast),
    ("GET", "/api/v1/warnings"): (STAFF_LIST(), nothing),
    ("POST", "/api/v1/warnings/{warning_id}/ack"): (STAFF_READ(), warning),
    ("GET", "/api/v1/scheduler"): (STAFF_LIST(), nothing),
    ("GET", "/api/v1/reports/compliance"): (STAFF_READ(), station_report),
    ("GET", "/api/v1/audit"): (ADMIN(), nothing),
    ("GET", "/api/v1/playout/playlist"): (DEVICE(), nothing),
    ("GET", "/api/v1/playout/emergencies"): (DEVICE(), nothing),
    # Devices only; push is off in the tests' app (404: poll), tests/push has it on.
    ("GET", "/api/v1/playout/push"): (codes("401 403 403 403 403 404 403 404"), nothing),
    ("POST", "/api/v1/playout/as-run"): (DEVICE(), as_run),
    ("GET", "/api/v1/audio/{sha256}"): (codes("401 200 200 200 200 200 404 404"), master_audio),
    ("POST", "/api/v1/live"): (APPROVER(201), new_live),
    ("GET", "/api/v1/live"): (STAFF_LIST(), nothing),
    ("GET", "/api/v1/live/{live_id}"): (STAFF_READ(), live_session),
    ("DELETE", "/api/v1/live/{live_id}"): (APPROVER(), live_session),
    ("POST", "/api/v1/emergencies"): (APPROVER(201), new_emergency),
    ("GET", "/api/v1/emergencies"): (STAFF_LIST(), nothing),
    ("GET", "/api/v1/emergencies/{emergency_id}"): (STAFF_READ(), emergency),
    ("DELETE", "/api/v1/emergencies/{emergency_id}"): (APPROVER(), fresh_emergency),
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every route; GET's implicit HEAD is not a route of its own.

    The console's pages are left out: they are authorised by the console's session cookie,
    never by a token, and tests/console walks their role walls with signed-in browsers.
    """
    found = set()
    for methods, path, route in flat_routes(app.routes):
        if isinstance(route, ConsoleRoute):
            continue
        found |= {(m, path) for m in methods if m != "HEAD" or "GET" not in methods}
    return found


def test_the_matrix_has_a_row_for_every_route_and_no_other(client: TestClient) -> None:
    routes = app_routes(client.app)
    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not missing, (
        "routes without a row in tests/trust/test_authorization.py MATRIX "
        f"(add one line each): {missing}"
    )
    assert not stale, f"rows in MATRIX for routes the app no longer has: {stale}"


def _fill(template: str, values: dict[str, Any]) -> str:
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, f"the builder left a parameter unset: {path}"
    return path


@pytest.mark.slow
def test_every_route_as_every_principal(client: TestClient, world: World) -> None:
    assert set(app_routes(client.app)) == MATRIX.keys(), "see the test above"
    ctx = Ctx(client, world)
    wrong: list[str] = []
    leaks: list[str] = []
    calls = seen_by_own = 0
    for (method, template), (expected, build) in sorted(MATRIX.items()):
        public = expected == PUBLIC(expected[0])
        for who, want in zip(PRINCIPALS, expected, strict=True):
            call = build(ctx, who)
            r = client.request(
                method,
                _fill(template, call.path),
                params=call.params,
                json=call.json,
                data=call.data,
                files=call.files,
                headers={**world.headers[who], **call.headers},
            )
            calls += 1
            if r.status_code != want:
                wrong.append(f"{method} {template} as {who}: {r.status_code}, want {want}: "
                             f"{r.text[:160]}")  # fmt: skip
                continue
            if call.check is not None:
                try:
                    call.check(r)
                except AssertionError as exc:
                    wrong.append(f"{method} {template} as {who}: {exc}")
            if who in ("viewer", "device") and any(m in r.text for m in world.marks):
                seen_by_own += 1
            if who.startswith("other_") and r.is_success and not public:
                found = [m for m in world.marks if m in r.text]
                if found:
                    leaks.append(f"{method} {template} as {who} shows station A's {found}")
    print(f"authorization matrix: {len(MATRIX)} routes x {len(PRINCIPALS)} principals = {calls}")
    assert seen_by_own >= 10, "A's own staff and PC should see A's secrets: the search is blind"
    assert not leaks, "\n".join(leaks)
    assert not wrong, f"{len(wrong)} of {calls} calls answered otherwise:\n" + "\n".join(wrong)
