"""Audio assets: the store, the asset table, ingesting uploads, and template metadata.

Nothing here knows about segments or broadcasts: they call these functions (attaching
audio to a segment is ``app.segments.audio``).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audio import pipeline
from app.audio.models import AudioAsset
from app.audio.storage import AudioStore, sha256_file
from app.audio.templates import DEFAULT_TEMPLATES_DIR, template_paths
from app.config import get_settings
from app.db import add_unique
from app.errors import InsufficientStorage, Invalid, ServiceUnavailable, disk_full


def store() -> AudioStore:
    """The content-addressed store under the data directory."""
    return AudioStore(get_settings().audio_dir)


def work_dir() -> Path:
    """Scratch space on the same filesystem as the store, so finished files move atomically."""
    path = get_settings().data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def register_asset(session: Session, *, sha256: str, **fields: object) -> AudioAsset:
    """The asset row for this content, created once (identical audio is stored once)."""
    asset = session.scalar(select(AudioAsset).where(AudioAsset.sha256 == sha256))
    if asset is not None:
        return asset
    asset = AudioAsset(sha256=sha256, **fields)
    if not add_unique(session, asset):
        # Another request registered the same content first: use its row.
        asset = session.scalars(select(AudioAsset).where(AudioAsset.sha256 == sha256)).one()
    return asset


@dataclass(frozen=True)
class TemplateAudio:
    path: Path
    sha256: str
    duration_ms: int


@lru_cache(maxsize=32)
def _template_audio(path: Path, mtime_ns: int) -> TemplateAudio:
    return TemplateAudio(path, sha256_file(path), pipeline.probe_duration_ms(path))


def template_shas(templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> set[str]:
    """The sha256 of every template file (their envelopes are kept in the store too)."""
    return {
        _template_audio(p, p.stat().st_mtime_ns).sha256
        for p in sorted(Path(templates_dir).glob("*.mp3"))
        if p.is_file()
    }


def programme_templates(
    code: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR
) -> tuple[TemplateAudio | None, TemplateAudio | None]:
    """Intro and outro of a programme, measured once per file version."""
    try:
        intro, outro = template_paths(code, templates_dir)
    except (FileNotFoundError, ValueError):
        return None, None
    return tuple(  # type: ignore[return-value]
        _template_audio(p, p.stat().st_mtime_ns) if p else None for p in (intro, outro)
    )


class SoundSettings(TypedDict):
    target_lufs: float
    max_true_peak_dbtp: float
    highpass_hz: float


def sound_settings() -> SoundSettings:
    """The settings that shape how a playout file sounds, as the pipeline's keywords."""
    settings = get_settings()
    return {
        "target_lufs": settings.target_lufs,
        "max_true_peak_dbtp": settings.max_true_peak_dbtp,
        "highpass_hz": settings.highpass_hz,
    }


def current_standard() -> str:
    """The key of the playout standard files are made to now (see pipeline.standard_key)."""
    return pipeline.standard_key(**sound_settings())


def envelope_key(*, filtered: bool = True) -> str:
    """The key items' envelopes are kept under now (the playout standard's); filtered: of a
    playout file made to the current standard (assembly does not high-pass it again)."""
    return pipeline.envelope_key(current_standard(), filtered=filtered)


def envelope_cache() -> pipeline.EnvelopeCache:
    """Where items' envelopes are kept: beside their files in the store."""
    return pipeline.EnvelopeCache(store().envelope_path)


def keep_envelopes(sha256: str) -> None:
    """Measure, once, the envelopes of a stored playout file and keep them beside it: what an
    assembly plans from (``pipeline.envelopes``). Nothing when they are kept already."""
    cache, key = envelope_cache(), envelope_key()
    if cache.get(sha256, key) is None:
        path = store().path_for(sha256)
        measured = pipeline.measure_item(path, filtered=True, **sound_settings())
        cache.put(sha256, key, measured)


def measured_fields(
    *, loudness_lufs: float, true_peak_dbtp: float, loudness_range_lu: float
) -> dict[str, object]:
    """The measured asset columns of a playout file, rounded as stored."""
    return {
        "loudness_lufs": _rounded(loudness_lufs),
        "true_peak_dbtp": _rounded(true_peak_dbtp),
        "loudness_range_lu": _rounded(loudness_range_lu),
        "standard_key": current_standard(),
    }


def _rounded(value: float) -> float:
    """A measurement rounded to 0.01; -inf (silence) stored as -99 (JSON has no infinity)."""
    return round(value, 2) if value > -99 else -99.0


def asset_fields(result: pipeline.IngestResult, sha256: str) -> dict[str, object]:
    """The asset columns measured by the pipeline for a stored playout file."""
    return {
        "duration_ms": result.duration_ms,
        **measured_fields(
            loudness_lufs=result.loudness_lufs,
            true_peak_dbtp=result.true_peak_dbtp,
            loudness_range_lu=result.loudness_range_lu,
        ),
        "size_bytes": store().path_for(sha256).stat().st_size,
        "source_format": result.source_format,
        "source_loudness_lufs": _rounded(result.source_loudness_lufs),
    }


def audio_warnings(asset: AudioAsset | None) -> list[str]:
    """Why a stored playout file misses the standard (empty when it meets it), naming the
    figures: shown with every segment and master that uses it."""
    if asset is None:
        return []
    settings = get_settings()
    return pipeline.off_target(
        loudness_lufs=asset.loudness_lufs,
        true_peak_dbtp=asset.true_peak_dbtp,
        target_lufs=settings.target_lufs,
        max_true_peak_dbtp=settings.max_true_peak_dbtp,
    )


def ingest_file(src: Path, scratch: Path) -> pipeline.IngestResult:
    """Ingest a file with the station's settings into scratch; 422 for unusable audio."""
    settings = get_settings()
    try:
        return pipeline.ingest(
            src,
            work_dir=scratch,
            min_ms=settings.min_audio_ms,
            max_ms=settings.max_audio_ms,
            **sound_settings(),
        )
    except pipeline.AudioRejected as exc:
        raise Invalid(str(exc)) from exc


# Audio jobs running now in this process (``audio_job``).
_jobs_lock = threading.Lock()
_jobs_running = 0
JOB_RETRY_AFTER_S = 30


@contextmanager
def audio_job() -> Iterator[None]:
    """Hold one of the process's LOAXA_MAX_AUDIO_JOBS slots for an audio job (ingest, a
    text-to-speech draft) while it runs; 503 with Retry-After when they are all taken.
    Each job peaks at a few hundred MB and a core: a queue of them would only make every
    one of them slow and the process big, so the caller is told to come back instead."""
    global _jobs_running
    limit = get_settings().max_audio_jobs
    with _jobs_lock:
        if _jobs_running >= limit:
            raise ServiceUnavailable(
                f"the server is busy with other audio work ({limit} at once); nothing was "
                f"changed: send it again in {JOB_RETRY_AFTER_S} s",
                headers={"Retry-After": str(JOB_RETRY_AFTER_S)},
            )
        _jobs_running += 1
    try:
        yield
    finally:
        with _jobs_lock:
            _jobs_running -= 1


def ingest_upload(upload: Path, *, filename: str | None) -> dict[str, object]:
    """Ingest an uploaded file and store it beside its playout file; the new asset's columns
    (sha256 included). 422 for unusable audio.

    The heavy part (decode, measure, normalise, encode) runs here: call it with no
    transaction open. Its scratch directory is removed whatever happens. A full disk is
    507: the store only ever holds complete files (see AudioStore.put), and nothing is
    registered.
    """
    with audio_job(), disk_full_is_507():
        return _ingest_upload(upload, filename=filename)


@contextmanager
def disk_full_is_507() -> Iterator[None]:
    """Turn a full disk while making or storing audio into a 507 that says so.

    What ran inside must leave no partial file behind (the store writes a temp file and
    renames it; scratch directories are removed), so the caller's data is unchanged.
    """
    try:
        yield
    except (OSError, RuntimeError, ServiceUnavailable) as exc:
        if out_of_space(exc):
            raise InsufficientStorage(
                "the server's disk is full: the audio could not be stored (nothing was "
                "changed); free some space and try again"
            ) from exc
        raise


def out_of_space(exc: BaseException) -> bool:
    """Whether a failure to write audio was the disk being full, ffmpeg's included (its
    error is only text on its stderr)."""
    return any(disk_full(e) or "No space left on device" in str(e) for e in _chain(exc))


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _ingest_upload(upload: Path, *, filename: str | None) -> dict[str, object]:
    scratch = Path(tempfile.mkdtemp(prefix="ingest-", dir=work_dir()))
    try:
        result = ingest_file(upload, scratch)
        audio_store = store()
        source_ext = _source_ext(filename, result.source_format)
        source_sha = audio_store.put(upload, ext=source_ext)
        sha = audio_store.put(result.playout_path)
        keep_envelopes(sha)
        return {
            "sha256": sha,
            **asset_fields(result, sha),
            "source_sha256": source_sha,
            "origin": "upload",
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_EXT_BY_FORMAT = {
    "mp3": "mp3",
    "wav": "wav",
    "ogg": "ogg",
    "flac": "flac",
    "mp4": "m4a",
    "m4a": "m4a",
    "mov": "m4a",
    "aac": "aac",
    "webm": "webm",
    "matroska": "mka",
}


def _source_ext(filename: str | None, source_format: str) -> str:
    container = source_format.split("/", 1)[0].split(",", 1)[0]
    if container in _EXT_BY_FORMAT:
        return _EXT_BY_FORMAT[container]
    suffix = Path(filename or "").suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() and 1 <= len(suffix) <= 5 else "bin"
