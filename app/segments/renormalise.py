"""Bring the audio of every segment to the current playout standard, from its original.

Rules:

* A segment's audio is made again only if its asset was made to another standard
  (``audio.current_standard``: loudness target, true-peak ceiling, high-pass, limiter,
  encoder) or to none (stored before the standard was recorded). So the command is
  idempotent: a second run finds nothing to do, and a run that stops halfway is resumed
  by running it again.
* It starts from the kept original: the upload as it came, or the synthesis of a TTS draft.
  Assets that have none (TTS drafts stored before syntheses were kept) start from their
  playout file, which then becomes the new asset's original.
* Each segment is re-pointed in its own short transaction, whatever its status (this is
  not an edit of its content: the same recording at the new standard), audited as
  ``segment.renormalise``, and only if its audio is still the one that was re-ingested.
  Segments sharing an asset share the new one (re-ingested once per run; identical
  content is stored once anyway).
* Segments whose audio is at the current standard but has no envelopes kept (stored before
  they were, or kept for a setting since changed) get them measured now
  (``audio.keep_envelopes``), so that their first assembly does not have to.
* Masters are not touched here (``schedule.assembly.reassemble_stale`` renders again the
  ones that have not aired); the asset rows of the old files stay, for the record.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.db import flush_versioned, unit_of_work
from app.errors import LoaxaError
from app.segments import service
from app.segments.models import Segment


@dataclass
class RenormaliseReport:
    """What one run did, in counts (and the problems, one line each)."""

    segments: int = 0  # segments with audio
    current: int = 0  # already at the current standard
    envelopes_measured: int = 0  # of those, envelopes measured and kept now
    renormalised: int = 0  # re-pointed to audio made again
    from_playout_copy: int = 0  # of those, made from the playout file (no original kept)
    changed_meanwhile: int = 0  # their audio changed while it was being made again
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Old:
    """What is needed of the asset being replaced."""

    id: int
    sha256: str
    source_sha256: str | None
    origin: str
    tts_engine: str | None
    tts_voice: str | None
    tts_key: str | None


def renormalise_segments(*, progress: Callable[[str], None] | None = None) -> RenormaliseReport:
    """Re-ingest the original of every segment whose audio is not at the current standard
    and re-point the segment to the result (see the module docstring)."""
    report = RenormaliseReport()
    standard = audio.current_standard()
    with unit_of_work(write=False) as session:
        rows = session.execute(
            select(Segment.id, Segment.audio_id, AudioAsset.standard_key, AudioAsset.sha256)
            .join(AudioAsset, AudioAsset.id == Segment.audio_id)
            .order_by(Segment.id)
        ).all()
    made: dict[int, dict[str, object]] = {}  # old asset id -> the new asset's columns
    cache, key = audio.envelope_cache(), audio.envelope_key()
    for segment_id, audio_id, standard_key, sha256 in rows:
        report.segments += 1
        if standard_key == standard:
            report.current += 1
            if cache.get(sha256, key) is None and audio.store().exists(sha256):
                try:
                    audio.keep_envelopes(sha256)
                    report.envelopes_measured += 1
                except (OSError, ValueError, RuntimeError) as exc:
                    report.failed.append(f"segment {segment_id}: envelopes: {exc}")
            continue
        try:
            if audio_id not in made:
                made[audio_id] = _made_again(_old_asset(audio_id), report)
            if _repoint(segment_id, audio_id, made[audio_id]):
                report.renormalised += 1
                if progress:
                    progress(f"segment {segment_id}: audio made again")
            else:
                report.changed_meanwhile += 1
        except (LoaxaError, OSError, ValueError, RuntimeError) as exc:
            report.failed.append(f"segment {segment_id}: {exc}")
    return report


def _old_asset(asset_id: int) -> _Old:
    with unit_of_work(write=False) as session:
        a = session.get_one(AudioAsset, asset_id)
        return _Old(
            a.id, a.sha256, a.source_sha256, a.origin, a.tts_engine, a.tts_voice, a.tts_key
        )


def _made_again(old: _Old, report: RenormaliseReport) -> dict[str, object]:
    """Ingest the asset's original (or its playout file) and store it; the new asset's
    columns. Runs with no transaction open."""
    store = audio.store()
    original = store.find(old.source_sha256) if old.source_sha256 else None
    source_sha = old.source_sha256
    if original is None:
        original, source_sha = store.path_for(old.sha256), old.sha256
        report.from_playout_copy += 1
    scratch = Path(tempfile.mkdtemp(prefix="renormalise-", dir=audio.work_dir()))
    try:
        result = audio.ingest_file(original, scratch)
        sha = store.put(result.playout_path)
        audio.keep_envelopes(sha)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "sha256": sha,
        **audio.asset_fields(result, sha),
        "source_sha256": source_sha,
        "origin": old.origin,
        "tts_engine": old.tts_engine,
        "tts_voice": old.tts_voice,
        "tts_key": old.tts_key,
    }


def _repoint(segment_id: int, old_asset_id: int, new_asset: dict[str, object]) -> bool:
    """Make the new asset the segment's audio, if its audio is still old_asset_id; audited.
    The old asset leaves the TTS cache (its key moves to the new one)."""
    with unit_of_work() as session:
        segment = session.get_one(Segment, segment_id, with_for_update=True)
        if segment.audio_id != old_asset_id:
            return False
        before = service.snapshot(session, segment)
        fields = dict(new_asset)
        asset = audio.register_asset(session, sha256=str(fields.pop("sha256")), **fields)
        if asset.id == old_asset_id:  # the same bytes: only its figures were missing
            for name in ("loudness_lufs", "true_peak_dbtp", "loudness_range_lu"):
                setattr(asset, name, fields[name])
            asset.standard_key = str(fields["standard_key"])
            return True
        old = session.get_one(AudioAsset, old_asset_id)
        if old.tts_key is not None:
            asset.tts_key, old.tts_key = old.tts_key, None
        segment.audio_id = asset.id
        flush_versioned(session, f"segment {segment.id}")
        audit.record(
            session,
            actor=None,
            actor_name="loaxa audio renormalise",
            action="segment.renormalise",
            entity="segment",
            entity_id=segment.id,
            before=before,
            after=service.snapshot(session, segment),
        )
        return True
