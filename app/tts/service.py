"""Draft a segment's audio from its script; the station's pronunciation dictionary."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import pipeline
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.config import get_settings
from app.db import unit_of_work
from app.errors import Invalid, ServiceUnavailable
from app.segments import audio as segment_audio
from app.segments import service as segments
from app.tts import synthesis
from app.tts.engines import SynthesisFailed, get_engine
from app.tts.models import StationAbbreviation
from app.tts.normalize import ScriptProblem

ENGINES = ("auto", "gtts", "espeak")


def station_dictionary(session: Session, station_id: int) -> dict[str, str]:
    """The station's own abbreviations (they override the built-in ones)."""
    return {
        a: e
        for a, e in session.execute(
            select(StationAbbreviation.abbreviation, StationAbbreviation.expansion).where(
                StationAbbreviation.station_id == station_id
            )
        )
    }


def replace_dictionary(
    session: Session, *, station_id: int, entries: dict[str, str], actor: User
) -> dict[str, str]:
    """Set the station's dictionary to exactly these entries."""
    before = station_dictionary(session, station_id)
    session.execute(delete(StationAbbreviation).where(StationAbbreviation.station_id == station_id))
    session.add_all(
        StationAbbreviation(station_id=station_id, abbreviation=a, expansion=e)
        for a, e in entries.items()
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="station.abbreviations",
        entity="station",
        entity_id=station_id,
        before=before,
        after=entries,
    )
    return entries


def preview(text: str, extra: dict[str, str]) -> str:
    """The script as it will be read aloud; 422 naming the problem."""
    try:
        return synthesis.preview(text, extra)
    except ScriptProblem as exc:
        raise Invalid(str(exc)) from exc


def _cached_asset(session: Session, keys: list[str]) -> AudioAsset | None:
    for key in keys:
        asset = session.scalar(select(AudioAsset).where(AudioAsset.tts_key == key).limit(1))
        if asset is not None and audio.store().exists(asset.sha256):
            return asset
    return None


def draft_segment_audio(
    *, segment_id: int, user: User, engine: str, expected_version: int | None = None
) -> tuple[int, list[str], bool]:
    """Synthesise the segment's script and make it its audio.

    Returns (segment id, warnings, whether the cache answered). The same normalised text,
    engine and voice is synthesised once; synthesis runs with no transaction open.
    """
    settings = get_settings()
    if engine not in ENGINES:
        raise Invalid(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    with unit_of_work(write=False) as session:
        segment = segments.get_segment(session, segment_id, user=user)
        segment_audio.check_audio_editable(segment, expected_version)
        if not segment.script or not segment.script.strip():
            raise Invalid(f"segment {segment_id} has no script to read aloud")
        extra = station_dictionary(session, segment.station_id)
        script, version = segment.script, segment.version
        normalized = preview(script, extra)
        _, warnings = _validated(script)
        candidates = ["gtts", "espeak"] if engine == "auto" else [engine]
        keys = [synthesis.synthesis_key(normalized, e, get_engine(e).voice) for e in candidates]
        cached = _cached_asset(session, keys[:1] if engine == "auto" else keys)
        cached_id = cached.id if cached else None
    scratch = Path(tempfile.mkdtemp(prefix="tts-", dir=audio.work_dir()))
    try:
        if cached_id is None:
            try:
                result = synthesis.synthesize_script(
                    script,
                    engine=engine,
                    work_dir=scratch,
                    extra_abbreviations=extra,
                    timeout_s=settings.tts_timeout_seconds,
                    gtts_endpoint=settings.tts_gtts_endpoint,
                    max_chars=settings.max_script_chars,
                )
            except ScriptProblem as exc:
                raise Invalid(str(exc)) from exc
            except SynthesisFailed as exc:
                raise ServiceUnavailable(f"text-to-speech failed: {exc}") from exc
            try:
                ingested = pipeline.ingest(
                    result.path,
                    work_dir=scratch,
                    min_ms=settings.min_audio_ms,
                    max_ms=settings.max_audio_ms,
                    **audio.sound_settings(),
                )
            except pipeline.AudioRejected as exc:
                # Never keep an empty or silent synthesis as the segment's audio.
                raise ServiceUnavailable(f"text-to-speech produced unusable audio: {exc}") from exc
            sha = audio.store().put(ingested.playout_path)
            # The synthesis is kept as the original: `loaxa audio renormalise` starts there.
            source_sha = audio.store().put(result.path, ext=result.path.suffix.lstrip("."))
            key = synthesis.synthesis_key(result.normalized_text, result.engine, result.voice)
        segment_audio.attach_asset(
            segment_id=segment_id,
            user=user,
            expected_version=version,
            action="segment.tts",
            asset_id=cached_id,
            new_asset=None
            if cached_id is not None
            else {
                "sha256": sha,
                **audio.asset_fields(ingested, sha),
                "source_sha256": source_sha,
                "origin": "tts",
                "tts_engine": result.engine,
                "tts_voice": result.voice,
                "tts_key": key,
            },
        )
        return segment_id, warnings, cached_id is not None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _validated(script: str) -> tuple[str, list[str]]:
    from app.tts.normalize import validate_script

    return validate_script(script, max_chars=get_settings().max_script_chars)
