"""Audio assets: metadata of files kept in content-addressed storage."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class AudioAsset(Base):
    """One playout-format file (MP3, mono, 44.1 kHz, normalised), named by its sha256."""

    __tablename__ = "audio_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    # Measured on the stored file as a player decodes it (BS.1770-4 and EBU Tech 3342).
    # Files stored before true peak was measured have none until `loaxa audio renormalise`.
    loudness_lufs: Mapped[float] = mapped_column(Float)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float)
    loudness_range_lu: Mapped[float | None] = mapped_column(Float)
    # Which playout standard (pipeline.standard_key: targets, high-pass, limiter) made it.
    standard_key: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # The light copy people listen to (AAC in MP4, in the store): null until it is made,
    # after the playout file (``app.audio.listen``).
    listen_sha256: Mapped[str | None] = mapped_column(String(64))
    # The upload as it came, kept beside the playout file.
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    source_format: Mapped[str | None] = mapped_column(String(40))
    source_loudness_lufs: Mapped[float | None] = mapped_column(Float)
    # "upload", "tts", "assembly" or "template".
    origin: Mapped[str] = mapped_column(String(16))
    tts_engine: Mapped[str | None] = mapped_column(String(16))
    tts_voice: Mapped[str | None] = mapped_column(String(40))
    # Hash of (normalised text, engine, voice): synthesise the same text once.
    tts_key: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
