"""Rundown view and assembly: intro, segments, outro → one master file inside the window."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock, metrics
from app.accounts.models import User
from app.audio import pipeline
from app.audio import service as audio
from app.audit import service as audit
from app.config import get_settings
from app.db import flush_versioned, unit_of_work
from app.errors import Conflict, Invalid, LoaxaError
from app.schedule import service
from app.schedule.models import Broadcast, BroadcastStatus
from app.schedule.schemas import CueOut, RundownItemOut, RundownOut
from app.stations.models import Programme


def planned_items(
    session: Session, broadcast: Broadcast, programme: Programme
) -> list[service.PlannedItem]:
    """Intro, the rundown's segments, outro: what the master will contain, in order."""
    intro, outro = audio.programme_templates(programme.code)
    items: list[service.PlannedItem] = []
    if intro:
        items.append(
            service.PlannedItem("intro", "intro", None, intro.sha256, intro.duration_ms, intro.path)
        )
    items.extend(service.segment_items(session, broadcast.id))
    if outro:
        items.append(
            service.PlannedItem("outro", "outro", None, outro.sha256, outro.duration_ms, outro.path)
        )
    return items


def gap_ms() -> int:
    return get_settings().assembly_gap_ms


def _crossfade_ms() -> int:
    return get_settings().assembly_crossfade_ms


def total_ms(items: list[service.PlannedItem]) -> int:
    if not items:
        return 0
    return pipeline.planned_total_ms(
        [i.duration_ms for i in items], gap_ms=gap_ms(), crossfade_ms=_crossfade_ms()
    )


def master_key(items: list[service.PlannedItem]) -> str:
    """Identifies what a master is rendered from: same key, same file. Besides the items
    and the joins, the playout standard: every setting and constant that changes how it
    sounds (loudness target, true-peak ceiling, high-pass, limiter, encoder)."""
    settings = get_settings()
    spec = {
        "items": [i.sha256 for i in items],
        "gap_ms": settings.assembly_gap_ms,
        "crossfade_ms": settings.assembly_crossfade_ms,
        "standard": audio.current_standard(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def rundown_view(session: Session, broadcast: Broadcast) -> RundownOut:
    """The rundown with exact durations, the total and whether it fits the window."""
    programme = session.get_one(Programme, broadcast.programme_id)
    items = planned_items(session, broadcast, programme)
    total = total_ms(items)
    window = (programme.min_duration_ms, programme.max_duration_ms)
    has_segments = any(i.kind == "segment" for i in items)
    problem = (
        service.window_problem(total, window, items, gap_ms())
        if has_segments
        else "the rundown has no segments yet"
    )
    return RundownOut(
        broadcast_id=broadcast.id,
        programme=programme.code,
        items=[
            RundownItemOut(
                position=n,
                kind=i.kind,
                segment_id=i.segment_id,
                title=i.label,
                duration_ms=i.duration_ms,
                audio_sha256=i.sha256,
            )
            for n, i in enumerate(items)
        ],
        gap_ms=gap_ms(),
        total_ms=total,
        window_ms=window,
        compliant=problem is None,
        problem=problem,
        master_sha256=broadcast.master_sha256,
        master_duration_ms=broadcast.master_duration_ms,
        master=service.masters_out(session, [broadcast]).get(broadcast.id),
        cue_sheet=[CueOut(**c) for c in broadcast.cue_sheet] if broadcast.cue_sheet else None,
    )


def assemble_broadcast(broadcast_id: int, *, actor_id: int | None = None) -> RundownOut:
    """Render and store the master; reuse it when the rundown has not changed.

    Reads the plan in one short transaction, renders with none open, then records the
    result only if the rundown is still the one that was rendered.
    """
    with unit_of_work(write=False) as session:
        actor = session.get(User, actor_id) if actor_id else None
        broadcast = service.get_broadcast(session, broadcast_id, user=actor)
        if broadcast.status not in service.ACTIVE:
            raise Conflict(
                f"broadcast {broadcast.id} is {broadcast.status}; it cannot be assembled"
            )
        if session.get_one(Programme, broadcast.programme_id).is_relay:
            raise Invalid(
                f"broadcast {broadcast.id} relays a stream: there is nothing to assemble"
            )
        view = rundown_view(session, broadcast)
        if not view.compliant:
            raise Invalid(f"broadcast {broadcast.id} cannot be assembled: {view.problem}")
        programme = session.get_one(Programme, broadcast.programme_id)
        items = planned_items(session, broadcast, programme)
        key = master_key(items)
        if (
            broadcast.master_key == key
            and broadcast.master_sha256
            and audio.store().exists(broadcast.master_sha256)
        ):
            metrics.ASSEMBLIES.labels("reused").inc()
            return view
    store = audio.store()
    standard = audio.current_standard()
    sources = [  # a segment made to the current standard was high-passed when it was made
        pipeline.Item(
            i.label,
            i.path or store.path_for(i.sha256 or ""),
            i.sha256,
            filtered=i.standard_key is not None and i.standard_key == standard,
        )
        for i in items
    ]
    scratch = Path(tempfile.mkdtemp(prefix="assemble-", dir=audio.work_dir()))
    started = time.perf_counter()
    try:
        settings = get_settings()
        result = pipeline.assemble(
            sources,
            out_path=scratch / "master.mp3",
            gap_ms=settings.assembly_gap_ms,
            crossfade_ms=settings.assembly_crossfade_ms,
            envelopes=audio.envelope_cache(),
            **audio.sound_settings(),
        )
        sha = store.put(result.path)
        size = store.path_for(sha).stat().st_size
    except BaseException:
        metrics.ASSEMBLIES.labels("failed").inc()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    metrics.ASSEMBLIES.labels("rendered").inc()
    metrics.ASSEMBLY_SECONDS.observe(time.perf_counter() - started)
    with unit_of_work() as session:
        actor = session.get(User, actor_id) if actor_id else None
        broadcast = service.get_broadcast(session, broadcast_id, for_update=True)
        if broadcast.status not in service.ACTIVE:
            # Cancelled (or aired, missed) while it rendered: do not bring it back.
            raise Conflict(
                f"broadcast {broadcast_id} became {broadcast.status} while it was being assembled"
            )
        programme = session.get_one(Programme, broadcast.programme_id)
        if master_key(planned_items(session, broadcast, programme)) != key:
            raise Conflict(
                f"the rundown of broadcast {broadcast_id} changed while it was being assembled; "
                "assemble it again"
            )
        before = service.snapshot(broadcast, programme)
        audio.register_asset(
            session,
            sha256=sha,
            duration_ms=result.duration_ms,
            **audio.measured_fields(
                loudness_lufs=result.loudness_lufs,
                true_peak_dbtp=result.true_peak_dbtp,
                loudness_range_lu=result.loudness_range_lu,
            ),
            size_bytes=size,
            origin="assembly",
        )
        broadcast.master_sha256 = sha
        broadcast.master_duration_ms = result.duration_ms
        broadcast.master_key = key
        broadcast.cue_sheet = [
            {"label": c.label, "offset_ms": c.offset_ms, "duration_ms": c.duration_ms}
            for c in result.cues
        ]
        broadcast.assembled_at = clock.now()
        broadcast.status = BroadcastStatus.assembled.value
        flush_versioned(session, f"broadcast {broadcast.id}")
        audit.record(
            session,
            actor=actor,
            action="broadcast.assemble",
            entity="broadcast",
            entity_id=broadcast.id,
            before=before,
            after=service.snapshot(broadcast, programme),
        )
        return rundown_view(session, broadcast)


@dataclass
class ReassemblyReport:
    """What ``reassemble_stale`` did, in counts (and the problems, one line each)."""

    checked: int = 0  # assembled broadcasts that have not aired yet
    reassembled: int = 0
    current: int = 0  # their master was already made from the current items and standard
    failed: list[str] = field(default_factory=list)


def reassemble_stale(now: datetime) -> ReassemblyReport:
    """Render again the master of every assembled broadcast still to come whose items or
    playout standard changed since (e.g. after ``loaxa audio renormalise``). Nothing that
    has aired, or was due to air before now, is touched: its master is what was played."""
    report = ReassemblyReport()
    with unit_of_work(write=False) as session:
        due = session.scalars(
            select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.assembled.value)
            .where(Broadcast.starts_at > now)
            .order_by(Broadcast.starts_at)
        ).all()
        stale = []
        for broadcast in due:
            programme = session.get_one(Programme, broadcast.programme_id)
            if broadcast.master_key == master_key(planned_items(session, broadcast, programme)):
                report.current += 1
            else:
                stale.append(broadcast.id)
        report.checked = len(due)
    for broadcast_id in stale:
        try:
            assemble_broadcast(broadcast_id)
            report.reassembled += 1
        except LoaxaError as exc:
            report.failed.append(f"broadcast {broadcast_id}: {exc.message}")
    return report
