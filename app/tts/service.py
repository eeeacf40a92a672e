"""Draft a segment's audio from its script; the station's pronunciation dictionary."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import pipeline
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.config import Settings, get_settings
from app.db import unit_of_work
from app.durations import describe_ms
from app.errors import Invalid, ServiceUnavailable
from app.segments import audio as segment_audio
from app.segments import service as segments
from app.stations import service as stations
from app.stations.models import Programme
from app.text import nfc
from app.tts import synthesis
from app.tts.engines import EspeakEngine, GTTSEngine, SynthesisFailed
from app.tts.models import StationAbbreviation
from app.tts.normalize import ScriptProblem
from app.tts.schemas import SegmentTTSOut

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
    """Set the station's dictionary to exactly these entries (NFC-normalised, as stored)."""
    entries = {nfc(k): nfc(v) for k, v in entries.items()}
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


def _cache_key(settings: Settings, normalized: str, engine: str, extra: Mapping[str, str]) -> str:
    """The key a TTS asset is cached under: text, engine, voice and every sound setting.

    Every setting that changes the stored sound is in it: speed, pauses, where gTTS's chunks
    are cut, and the loudness stage the asset went through.
    """
    synth = GTTSEngine() if engine == "gtts" else EspeakEngine()
    folded = normalized.casefold()
    sound = {
        "engine": synth.sound_options,
        "sentence_pause_ms": settings.tts_sentence_pause_ms,
        "paragraph_pause_ms": settings.tts_paragraph_pause_ms,
        # Station phrases that chunking keeps whole; only those in the text change the cuts.
        "keep_together": sorted({p for p in extra.values() if p.casefold() in folded}),
        # The asset is the ingested playout file: the playout standard it was made to
        # (loudness target, true-peak ceiling, high-pass, limiter, encoder).
        "standard": audio.current_standard(),
    }
    return synthesis.synthesis_key(normalized, engine, synth.voice, sound=sound)


def preview_for_user(
    session: Session, *, text: str, user: User, station_id: int | None = None
) -> str:
    """The script as read aloud with the station's dictionary (the user's own station by
    default; none when the user has none); 404 for a station the user cannot see."""
    sid = station_id if station_id is not None else user.station_id
    extra: dict[str, str] = {}
    if sid is not None:
        stations.get_station(session, sid, user=user)
        extra = station_dictionary(session, sid)
    return preview(text, extra)


def _cached_asset(session: Session, keys: list[str]) -> AudioAsset | None:
    for key in keys:
        asset = session.scalar(select(AudioAsset).where(AudioAsset.tts_key == key).limit(1))
        if asset is not None and audio.store().exists(asset.sha256):
            return asset
    return None


def read_aloud(
    script: str, *, engine: str, work_dir: Path, extra: Mapping[str, str]
) -> synthesis.SynthesisResult:
    """The script synthesised with the configured pauses, timeouts and gTTS endpoint; a
    script that cannot be read is a 422, an engine that fails a 503."""
    settings = get_settings()
    try:
        return synthesis.synthesize_script(
            script,
            engine=engine,
            work_dir=work_dir,
            extra_abbreviations=extra,
            sentence_pause_ms=settings.tts_sentence_pause_ms,
            paragraph_pause_ms=settings.tts_paragraph_pause_ms,
            timeout_s=settings.tts_timeout_seconds,
            gtts_endpoint=settings.tts_gtts_endpoint,
            gtts_cooldown_s=settings.tts_gtts_cooldown_seconds,
            tz=settings.tz,
            max_chars=settings.max_script_chars,
        )
    except ScriptProblem as exc:
        raise Invalid(str(exc)) from exc
    except SynthesisFailed as exc:
        raise ServiceUnavailable(f"text-to-speech failed: {exc}") from exc


def draft_segment_audio(
    *, segment_id: int, user: User, engine: str, expected_version: int | None = None
) -> SegmentTTSOut:
    """`_draft_segment_audio`; a full disk while synthesising or storing is a 507, the
    segment unchanged."""
    with audio.audio_job(), audio.disk_full_is_507():
        return _draft_segment_audio(
            segment_id=segment_id, user=user, engine=engine, expected_version=expected_version
        )


def _draft_segment_audio(
    *, segment_id: int, user: User, engine: str, expected_version: int | None = None
) -> SegmentTTSOut:
    """Synthesise the segment's script and make it its audio; the segment as it now is.

    Its own short transactions: read the script, (synthesise and encode with no transaction
    open), attach the audio, read the segment back. The same normalised text, engine, voice
    and sound settings (``_cache_key``) is synthesised once: ``cached`` says the cache
    answered. "auto" looks for gTTS audio only: in gTTS's cool-down it reads with espeak-ng
    again and says why in the warnings.
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
        programme = session.get_one(Programme, segment.programme_id)
        check_reading_time(normalized, programme.code, programme.max_duration_ms)
        _, warnings = _validated(script)
        candidates = ["gtts", "espeak"] if engine == "auto" else [engine]
        keys = [_cache_key(settings, normalized, e, extra) for e in candidates]
        cached = _cached_asset(session, keys[:1] if engine == "auto" else keys)
        cached_id = cached.id if cached else None
    scratch = Path(tempfile.mkdtemp(prefix="tts-", dir=audio.work_dir()))
    try:
        if cached_id is None:
            result = read_aloud(script, engine=engine, work_dir=scratch, extra=extra)
            # The script's warnings, and why espeak-ng read it when "auto" asked for gTTS.
            warnings = result.warnings
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
            audio.keep_envelopes(sha)
            # The synthesis is kept as the original: `loaxa audio renormalise` starts there.
            source_sha = audio.store().put(result.path, ext=result.path.suffix.lstrip("."))
            key = _cache_key(settings, result.normalized_text, result.engine, extra)
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
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _drafted(segment_id, user, warnings, cached=cached_id is not None)


# The fastest reading any engine does (words a minute; espeak-ng reads 150, gTTS fewer):
# a script whose words would take longer than its programme's window even at this pace
# is refused before a second is spent synthesising it.
FASTEST_WORDS_PER_MINUTE = 200


def check_reading_time(normalized: str, programme: str, max_ms: int) -> None:
    """422 when the (normalised) script cannot be read within `max_ms` (the programme's
    longest, and never past LOAXA_MAX_AUDIO_MS) even at FASTEST_WORDS_PER_MINUTE."""
    limit = min(max_ms, get_settings().max_audio_ms)
    words = len(normalized.split())
    at_least_ms = words * 60_000 // FASTEST_WORDS_PER_MINUTE
    if at_least_ms > limit:
        raise Invalid(
            f"the script has {words} words: read aloud it takes at least "
            f"{describe_ms(at_least_ms)}, longer than the {describe_ms(limit)} that "
            f"programme {programme!r} allows; shorten it"
        )


def _drafted(segment_id: int, user: User, warnings: list[str], *, cached: bool) -> SegmentTTSOut:
    with unit_of_work(write=False) as session:
        segment = segments.get_segment(session, segment_id, user=user)
        out = segments.to_out(session, segment)
        asset = session.get(AudioAsset, segment.audio_id) if segment.audio_id else None
        return SegmentTTSOut(
            **out.model_dump(),
            tts_engine=asset.tts_engine if asset else None,
            tts_voice=asset.tts_voice if asset else None,
            cached=cached,
            warnings=warnings,
        )


def _validated(script: str) -> tuple[str, list[str]]:
    from app.tts.normalize import validate_script

    return validate_script(script, max_chars=get_settings().max_script_chars)
