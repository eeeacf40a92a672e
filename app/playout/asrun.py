"""As-run intake: what the playout PCs report they played, checked and stored.

A batch is accepted event by event: a good event is stored, a bad one is rejected with
its reason, a resent one is a duplicate (idempotent by event_id). An event cannot end
after it was received (beyond MAX_FUTURE of clock skew), nor a "played" one cover less of
its audio than all of it (within MAX_SHORTFALL). An event may name only
a broadcast or emergency the device carries (scope), and only audio that broadcast has
or had; a "played" event of the master the broadcast had when it began marks the
broadcast aired (``app.playout.aired``, the rule the reports count by too).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import clock, metrics
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.config import get_settings
from app.devices.service import DeviceState, Telemetry, write_telemetry
from app.errors import Invalid, describe_validation_errors
from app.playout.aired import is_aired, is_relayed, master_histories
from app.playout.emergencies import record_starts
from app.playout.models import AsRunEvent, Emergency, LiveSession
from app.playout.schemas import AsRunEventIn, AsRunRejected, AsRunResult
from app.playout.scope import carries_broadcast, carries_emergency
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations.models import Programme

# As-run plausibility: clocks of playout PCs drift a little; audio may be stretched a little.
MAX_FUTURE = timedelta(minutes=5)
MAX_OVERRUN = timedelta(seconds=10)
# A "played" event of a broadcast covers the master it names, to within this much (the
# player's start, the PC's clock), counted from the device's first part of that master (an
# airing resumed after an emergency or a restart comes in parts): one that covers less is
# not an airing ("interrupted").
MAX_SHORTFALL = timedelta(seconds=5)
MAX_BATCH = 1000
# Statuses an airing moves to "aired": planned too, as the rundown may have changed (and
# cleared the master) after the airing that is reported now.
AIRABLE = (
    BroadcastStatus.planned.value,
    BroadcastStatus.assembled.value,
    BroadcastStatus.missed.value,
)


def batch_events(body: Any) -> list[Any]:
    """The events of an as-run body: a JSON array, or an object {"events": [...]}."""
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        events: list[Any] = body["events"]
    elif isinstance(body, list):
        events = body
    else:
        raise Invalid('the body must be a JSON array of events or an object {"events": [...]}')
    if len(events) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} events per batch; send the rest in another")
    return events


@dataclass(frozen=True)
class _Target:
    """What an event may have played: the audio it is allowed to name and its length."""

    kind: str  # "broadcast" or "emergency"
    id: int
    status: str | None
    current_sha: str | None
    audio: dict[str, int]  # sha256 -> duration_ms
    relay_ms: int | None = None  # a relay: its exact window (it has no audio)


def _broadcast_targets(
    session: Session, device: DeviceState, ids: set[int], wanted: set[tuple[int, str]]
) -> dict[int, _Target]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            Broadcast.id,
            Broadcast.status,
            Broadcast.master_sha256,
            Broadcast.master_duration_ms,
            Programme.source_kind,
            Programme.max_duration_ms,
        )
        .join(Programme, Programme.id == Broadcast.programme_id)
        .where(Broadcast.id.in_(ids), carries_broadcast(device.station_id, device.village_id))
    ).all()
    targets = {
        bid: _Target(
            "broadcast",
            bid,
            status,
            sha,
            {sha: dur} if sha and dur is not None else {},
            relay_ms=window if source else None,
        )
        for bid, status, sha, dur, source, window in rows
    }
    # A device may have played a master that was replaced since (the rundown changed after
    # it downloaded the playlist). Masters a broadcast had are in its audit trail.
    older = {
        (bid, sha)
        for bid, sha in wanted
        if bid in targets and sha not in targets[bid].audio
    }
    if older:
        previous: dict[int, set[str]] = defaultdict(set)
        for bid, after in session.execute(
            select(AuditEvent.entity_id, AuditEvent.after).where(
                AuditEvent.entity == "broadcast",
                AuditEvent.entity_id.in_({bid for bid, _ in older}),
                AuditEvent.action == "broadcast.assemble",
            )
        ):
            sha = (after or {}).get("master_sha256")
            if isinstance(sha, str) and bid is not None:
                previous[bid].add(sha)
        shas = {sha for bid, sha in older if sha in previous[bid]}
        if shas:
            durations = dict(
                session.execute(
                    select(AudioAsset.sha256, AudioAsset.duration_ms).where(
                        AudioAsset.sha256.in_(shas)
                    )
                )
                .tuples()
                .all()
            )
            for bid, sha in older:
                if sha in previous[bid] and sha in durations:
                    targets[bid].audio[sha] = durations[sha]
    return targets


def _emergency_targets(session: Session, device: DeviceState, ids: set[int]) -> dict[int, _Target]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            Emergency.id,
            Emergency.village_ids,
            Emergency.network,
            Emergency.audio_sha256,
            Emergency.duration_ms,
        ).where(Emergency.id.in_(ids), Emergency.station_id == device.station_id)
    ).all()
    return {
        eid: _Target("emergency", eid, None, sha, {sha: dur})
        for eid, villages, network, sha, dur in rows
        if carries_emergency(villages, network, device.village_id)
    }


def _first_parts(
    session: Session, device: DeviceState, events: list[AsRunEventIn]
) -> dict[tuple[int, str], datetime]:
    """When this device began each broadcast's master it reports on, (broadcast, sha256) ->
    the earliest start among its stored events and this batch's: an airing the agent
    resumed after an interruption (an emergency, a restart) is reported in parts, the last
    one "played", and covers the master from its first part on."""
    first: dict[tuple[int, str], datetime] = {}
    for e in events:
        if e.broadcast_id is not None and e.sha256 is not None:  # a relay has no master
            key = (e.broadcast_id, e.sha256)
            first[key] = min(first.get(key, e.started_at), e.started_at)
    if first:
        rows = session.execute(
            select(AsRunEvent.broadcast_id, AsRunEvent.sha256, func.min(AsRunEvent.started_at))
            .where(
                AsRunEvent.device_id == device.id,
                AsRunEvent.broadcast_id.in_({b for b, _ in first}),
            )
            .group_by(AsRunEvent.broadcast_id, AsRunEvent.sha256)
        )
        for bid, sha, start in rows:
            key = (bid, sha)
            if key in first and start is not None:
                first[key] = min(first[key], start)
    return first


def _problem(
    event: AsRunEventIn,
    targets: dict[tuple[str, int], _Target],
    now: datetime,
    first_parts: dict[tuple[int, str], datetime] | None = None,
) -> str | None:
    given = [x for x in (event.broadcast_id, event.emergency_id, event.live_id) if x is not None]
    if len(given) != 1:
        if event.live_id is None:
            return "give exactly one of broadcast_id and emergency_id"
        return "give exactly one of broadcast_id, emergency_id and live_id"
    if event.started_at >= event.ended_at:
        return "started_at must be before ended_at"
    if event.ended_at > now + MAX_FUTURE:
        return f"ended_at {event.ended_at.isoformat()} is in the future (now {now.isoformat()})"
    if event.live_id is not None:
        # A live session is a stream: what the device heard of it, no file.
        if ("live", event.live_id) not in targets:
            return f"live session {event.live_id} is not in this device's scope"
        if event.sha256 is not None:
            return f"live session {event.live_id} is a stream: sha256 must be null"
        return None
    kind, ref = (
        ("broadcast", event.broadcast_id)
        if event.broadcast_id is not None
        else ("emergency", event.emergency_id)
    )
    target = targets.get((kind, ref or 0))
    if target is None:
        return f"{kind} {ref} is not in this device's scope"
    if target.relay_ms is not None:
        return _relay_problem(event, ref, target.relay_ms)
    if event.sha256 is None:
        return f"sha256 is required: {kind} {ref} plays a file"
    if event.relayed_ms is not None or event.dropouts is not None:
        return f"relayed_ms and dropouts belong to a relayed stream, not to {kind} {ref}"
    duration = target.audio.get(event.sha256)
    if duration is None:
        return f"sha256 {event.sha256[:12]}… is not the audio of {kind} {ref}"
    played = event.ended_at - event.started_at
    if played > timedelta(milliseconds=duration) + MAX_OVERRUN:
        return (
            f"played {played.total_seconds():.1f} s, longer than the {duration / 1000:.1f} s "
            f"audio by more than {MAX_OVERRUN.total_seconds():.0f} s"
        )
    began = min(
        (first_parts or {}).get((ref or 0, event.sha256), event.started_at), event.started_at
    )
    # From the first part to this one's end: the master's length, no less (and its parts
    # lie within one playing of it: the agent resumes where the master would be by then).
    length = timedelta(milliseconds=duration)
    covered = event.ended_at - began
    whole = played >= length - MAX_SHORTFALL
    short = not whole and (covered < length - MAX_SHORTFALL or covered > length + MAX_OVERRUN)
    if kind == "broadcast" and event.status == "played" and short:
        return (
            f"a 'played' event must cover its audio: with this device's earlier parts it "
            f"spans {covered.total_seconds():.1f} s of the {duration / 1000:.1f} s audio "
            f"(report a cut-short airing as 'interrupted')"
        )
    return None


def _relay_problem(event: AsRunEventIn, ref: int | None, window_ms: int) -> str | None:
    """What is wrong with a relayed stream's event, if anything."""
    if event.sha256 is not None:
        return f"broadcast {ref} relays a stream: sha256 must be null"
    if event.relayed_ms is None:
        return f"relayed_ms is required: broadcast {ref} relays a stream"
    played_ms = (event.ended_at - event.started_at) // timedelta(milliseconds=1)
    if played_ms > window_ms + MAX_OVERRUN // timedelta(milliseconds=1):
        return (
            f"played {played_ms / 1000:.1f} s, longer than the {window_ms / 1000:.1f} s window "
            f"by more than {MAX_OVERRUN.total_seconds():.0f} s"
        )
    if event.relayed_ms > played_ms + 1000:
        return f"relayed_ms {event.relayed_ms} is more than the event lasted ({played_ms} ms)"
    return None


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert as-run rows, skipping event_ids already stored; the event_ids inserted."""
    if not rows:
        return set()
    # INSERT … ON CONFLICT DO NOTHING: a batch sent twice at once cannot fail on the key.
    if session.get_bind().dialect.name == "postgresql":
        pg = pg_insert(AsRunEvent).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
        return set(session.scalars(pg.returning(AsRunEvent.event_id)))
    lite = (
        sqlite_insert(AsRunEvent).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
    )
    return set(session.scalars(lite.returning(AsRunEvent.event_id)))


def record_as_run(
    session: Session, *, device: DeviceState, body: Any, telemetry: Telemetry
) -> AsRunResult:
    """Store a batch of as-run events: good ones kept, bad ones rejected one by one.

    Idempotent by event_id: a resent event is reported as a duplicate and changes nothing.
    A "played" event of the master in force when it began marks the broadcast aired.
    """
    now = clock.now()
    events = batch_events(body)
    rejected: list[AsRunRejected] = []
    parsed: list[AsRunEventIn] = []
    for raw in events:
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        try:
            parsed.append(AsRunEventIn.model_validate(raw))
        except ValidationError as exc:
            errors = [
                {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()
            ]
            rejected.append(
                AsRunRejected(
                    event_id=raw_id if isinstance(raw_id, str) else None,
                    reason=describe_validation_errors(errors),
                )
            )
    # Resent events: ours are duplicates; another device's id is a clash.
    ids = {e.event_id for e in parsed}
    stored = (
        dict(
            session.execute(
                select(AsRunEvent.event_id, AsRunEvent.device_id).where(
                    AsRunEvent.event_id.in_(ids)
                )
            )
            .tuples()
            .all()
        )
        if ids
        else {}
    )
    targets = {
        ("broadcast", t.id): t
        for t in _broadcast_targets(
            session,
            device,
            {e.broadcast_id for e in parsed if e.broadcast_id is not None},
            {
                (e.broadcast_id, e.sha256)
                for e in parsed
                if e.broadcast_id is not None and e.sha256 is not None
            },
        ).values()
    }
    targets.update(
        (("emergency", t.id), t)
        for t in _emergency_targets(
            session, device, {e.emergency_id for e in parsed if e.emergency_id is not None}
        ).values()
    )
    targets.update(
        (("live", t.id), t)
        for t in _live_targets(
            session, device, {e.live_id for e in parsed if e.live_id is not None}
        ).values()
    )
    first_parts = _first_parts(session, device, parsed)
    duplicates: list[str] = []
    fresh: list[AsRunEventIn] = []
    seen: set[str] = set()
    for event in parsed:
        if event.event_id in seen or stored.get(event.event_id) == device.id:
            duplicates.append(event.event_id)
            continue
        seen.add(event.event_id)
        if event.event_id in stored:
            rejected.append(
                AsRunRejected(event_id=event.event_id, reason="event_id is taken by another device")
            )
            continue
        problem = _problem(event, targets, now, first_parts)
        if problem is not None:
            rejected.append(AsRunRejected(event_id=event.event_id, reason=problem))
            continue
        fresh.append(event)
    inserted = _insert_new(
        session,
        [
            {
                "event_id": e.event_id,
                "device_id": device.id,
                "broadcast_id": e.broadcast_id,
                "emergency_id": e.emergency_id,
                "live_session_id": e.live_id,
                "sha256": e.sha256,
                "started_at": e.started_at,
                "ended_at": e.ended_at,
                "status": e.status,
                "relayed_ms": e.relayed_ms,
                "dropout_count": e.dropouts.count if e.dropouts else None,
                "dropout_ms": e.dropouts.total_ms if e.dropouts else None,
                "note": e.note,
                "received_at": now,
            }
            for e in fresh
        ],
    )
    accepted = [e for e in fresh if e.event_id in inserted]
    # Lost a race with the same batch sent twice at once: the other request stored them.
    duplicates.extend(e.event_id for e in fresh if e.event_id not in inserted)
    _mark_aired(session, device=device, events=accepted, targets=targets, now=now)
    _record_played(session, device=device, events=accepted, telemetry=telemetry, now=now)
    _record_emergency_starts(session, device=device, events=accepted)
    for e in accepted:  # how late reports arrive: an agent offline for days shows here
        metrics.ASRUN_LAG.observe(max(0.0, (now - e.ended_at).total_seconds()))
    return AsRunResult(
        accepted=[e.event_id for e in accepted], duplicates=duplicates, rejected=rejected
    )


def _mark_aired(
    session: Session,
    *,
    device: DeviceState,
    events: list[AsRunEventIn],
    targets: dict[tuple[str, int], _Target],
    now: datetime,
) -> None:
    # One rule with the reports (app.playout.aired): the master in force when it played.
    relayed = _relayed_now(session, device=device, events=events, targets=targets)
    played = [
        (target, e)
        for e in events
        if e.status == "played"
        and e.sha256 is not None
        and (target := targets.get(("broadcast", e.broadcast_id or 0))) is not None
        and target.relay_ms is None
        and target.status in AIRABLE
    ]
    history = master_histories(session, {t.id for t, _e in played})
    ids = relayed | {
        t.id
        for t, e in played
        if e.sha256 is not None and is_aired(e.status, e.sha256, e.started_at, history[t.id])
    }
    if not ids:
        return
    aired = session.scalars(
        update(Broadcast)
        # The status is checked again here: the row may have moved on (been cancelled) since.
        .where(Broadcast.id.in_(ids), Broadcast.status.in_(AIRABLE))
        .values(
            status=BroadcastStatus.aired.value,
            version=Broadcast.version + 1,
            updated_at=now,
        )
        .returning(Broadcast.id)
        .execution_options(synchronize_session=False)
    ).all()
    for bid in sorted(aired):
        audit.record(
            session,
            actor=None,
            actor_name=f"device {device.id}",
            action="broadcast.aired",
            entity="broadcast",
            entity_id=bid,
            after={"status": BroadcastStatus.aired.value},
        )


def _relayed_now(
    session: Session,
    *,
    device: DeviceState,
    events: list[AsRunEventIn],
    targets: dict[tuple[str, int], _Target],
) -> set[int]:
    """Relays these events make relayed: what the device heard of each, all its parts
    together (an emergency splits a relay in two), reaches the threshold."""
    windows = {
        t.id: t.relay_ms
        for e in events
        if (t := targets.get(("broadcast", e.broadcast_id or 0))) is not None
        and t.relay_ms is not None
        and t.status in AIRABLE
        and e.status != "failed"
    }
    if not windows:
        return set()
    heard = dict(
        session.execute(
            select(AsRunEvent.broadcast_id, func.sum(AsRunEvent.relayed_ms))
            .where(
                AsRunEvent.device_id == device.id,
                AsRunEvent.broadcast_id.in_(windows),
                AsRunEvent.status != "failed",
            )
            .group_by(AsRunEvent.broadcast_id)
        )
        .tuples()
        .all()
    )
    threshold = get_settings().relay_min_percent
    return {
        bid
        for bid, window in windows.items()
        if is_relayed("played", int(heard.get(bid) or 0), window, threshold)
    }


def _record_played(
    session: Session,
    *,
    device: DeviceState,
    events: list[AsRunEventIn],
    telemetry: Telemetry,
    now: datetime,
) -> None:
    values: dict[str, Any] = {"last_seen_at": now}
    if telemetry.agent_version is not None:
        values["agent_version"] = telemetry.agent_version
    if telemetry.free_disk_bytes is not None:
        values["free_disk_bytes"] = telemetry.free_disk_bytes
    played = [e.ended_at for e in events if e.status in ("played", "interrupted")]
    if played:
        latest = min(max(played), now)
        if device.last_played_at is None or latest > device.last_played_at:
            values["last_played_at"] = latest
    write_telemetry(session, device_id=device.id, values=values)


def _record_emergency_starts(
    session: Session, *, device: DeviceState, events: list[AsRunEventIn]
) -> None:
    # What the emergency page shows as "started" on this device: its earliest real start.
    started: dict[int, datetime] = {}
    for e in events:
        if e.emergency_id is not None and e.status in ("played", "interrupted"):
            prior = started.get(e.emergency_id)
            started[e.emergency_id] = e.started_at if prior is None else min(prior, e.started_at)
    if started:
        record_starts(session, device_id=device.id, started=started)


def _live_targets(session: Session, device: DeviceState, ids: set[int]) -> dict[int, _Target]:
    """The live sessions among `ids` that this device carried (its station, its scope)."""
    if not ids:
        return {}
    rows = session.execute(
        select(LiveSession.id, LiveSession.village_ids, LiveSession.network).where(
            LiveSession.id.in_(ids), LiveSession.station_id == device.station_id
        )
    )
    return {
        lid: _Target(kind="live", id=lid, status=None, current_sha=None, audio={})
        for lid, villages, network in rows
        if carries_emergency(villages, network, device.village_id)
    }
