"""Audio assets: the store, the asset table, ingesting uploads, and template metadata.

Nothing here knows about segments or broadcasts: they call these functions (attaching
audio to a segment is ``app.segments.audio``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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


def asset_fields(result: pipeline.IngestResult, sha256: str) -> dict[str, object]:
    """The asset columns measured by the pipeline for a stored playout file."""
    return {
        "duration_ms": result.duration_ms,
        "loudness_lufs": round(result.loudness_lufs, 2),
        "peak_dbfs": round(result.peak_dbfs, 2),
        "size_bytes": store().path_for(sha256).stat().st_size,
        "source_format": result.source_format,
        "source_loudness_lufs": round(result.source_loudness_lufs, 2),
    }


def ingest_upload(upload: Path, *, filename: str | None) -> dict[str, object]:
    """Ingest an uploaded file and store it beside its playout file; the new asset's columns
    (sha256 included). 422 for unusable audio.

    The heavy part (decode, measure, normalise, encode) runs here: call it with no
    transaction open. Its scratch directory is removed whatever happens. A full disk is
    507: the store only ever holds complete files (see AudioStore.put), and nothing is
    registered.
    """
    with disk_full_is_507():
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
    settings = get_settings()
    scratch = Path(tempfile.mkdtemp(prefix="ingest-", dir=work_dir()))
    try:
        try:
            result = pipeline.ingest(
                upload,
                work_dir=scratch,
                target_lufs=settings.target_lufs,
                max_peak_dbfs=settings.max_peak_dbfs,
                min_ms=settings.min_audio_ms,
                max_ms=settings.max_audio_ms,
            )
        except pipeline.AudioRejected as exc:
            raise Invalid(str(exc)) from exc
        audio_store = store()
        source_ext = _source_ext(filename, result.source_format)
        source_sha = audio_store.put(upload, ext=source_ext)
        sha = audio_store.put(result.playout_path)
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
