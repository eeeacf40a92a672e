"""One Settings object, read from LOAXA_* environment variables or a .env file."""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FILE_NAME = "secret_key"
MIN_SECRET_LENGTH = 32
# The rolling plan looks 1 to 36 months ahead: none would plan nothing, and three years of
# weekly village slots is already more than any commune plans for.
MAX_PLAN_HORIZON_MONTHS = 36


def check_plan_horizon(months: int) -> int:
    """The horizon in months, or ValueError naming the allowed range."""
    if not 1 <= months <= MAX_PLAN_HORIZON_MONTHS:
        raise ValueError(
            f"the plan horizon must be from 1 to {MAX_PLAN_HORIZON_MONTHS} months, got {months}"
        )
    return months


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as LOAXA_<NAME>."""

    model_config = SettingsConfigDict(
        env_prefix="LOAXA_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path("./var")
    database_url: str | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    secret_key: str | None = Field(default=None, repr=False)
    access_token_minutes: int = Field(default=8 * 60, ge=1, le=7 * 24 * 60)
    # The web console's session ends after this long without a page view.
    console_session_minutes: int = Field(default=2 * 60, ge=1, le=7 * 24 * 60)

    # Audio: playout format and limits (DESIGN.md "Defaults").
    target_lufs: float = Field(default=-16.0, ge=-40.0, le=-5.0)
    # True peak (BS.1770-4, dBTP) of every playout file; LOAXA_MAX_PEAK_DBFS is the old name.
    max_true_peak_dbtp: float = Field(
        default=-1.0,
        ge=-20.0,
        le=0.0,
        validation_alias=AliasChoices("LOAXA_MAX_TRUE_PEAK_DBTP", "LOAXA_MAX_PEAK_DBFS"),
    )
    # High-pass corner before the loudness stage: village horns play little below it. 0: off.
    highpass_hz: float = Field(default=100.0, ge=0.0, le=400.0)
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    max_audio_ms: int = Field(default=20 * 60 * 1000, ge=1000)
    min_audio_ms: int = Field(default=1000, ge=0)
    assembly_gap_ms: int = Field(default=500, ge=0, le=10_000)
    assembly_crossfade_ms: int = Field(default=0, ge=0, le=10_000)
    # Audio work (ingest, text-to-speech drafts, assembly) running at once in one process;
    # past it, 503 with Retry-After. Each ffmpeg / espeak-ng child's CPU time and memory.
    max_audio_jobs: int = Field(default=2, ge=1, le=64)
    child_cpu_seconds: int = Field(default=600, ge=1)
    child_memory_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=64 * 1024 * 1024)

    # Scheduling.
    fill_days_ahead: int = Field(default=3, ge=0, le=60)
    missed_grace_minutes: int = Field(default=60, ge=1)
    warnings_webhook_url: str | None = None
    # The rolling plan: the current local month and the next months, this many in all.
    plan_horizon_months: int = 12
    # Testing and demos: every scheduler job (interval and daily) is triggered every N
    # seconds instead of on its own schedule; the run keys still decide what runs.
    scheduler_tick_seconds: float | None = Field(default=None, gt=0)

    # The stream hub (Icecast 2, app.streams): the port of the one loaxa runs, or the URL of
    # an existing Icecast that the operator configures with `loaxa icecast-config`.
    icecast_port: int = Field(default=8001, ge=1, le=65535)
    icecast_url: str | None = None
    # The push broker (Mosquitto 2, app.push): the port of the one loaxa runs (`loaxa
    # broker`), or the URL of an existing broker (mqtt://admin:password@host:port, the
    # credentials being loaxa's dynamic-security admin login there). mqtt_enabled false:
    # nothing is published and devices only poll.
    mqtt_port: int = Field(default=1884, ge=1, le=65535)
    # Where loaxa's processes reach the broker it runs (docker-compose: the broker service).
    mqtt_host: str = "127.0.0.1"
    mqtt_url: str | None = None
    mqtt_enabled: bool = True
    # A relay slot counts as relayed when at least this share of its window played.
    relay_min_percent: float = Field(default=90.0, gt=0, le=100)

    # Text-to-speech.
    tts_timeout_seconds: float = Field(default=10.0, gt=0)
    # Where gTTS sends its requests; unset means Google's own endpoint. Set for a proxy,
    # or by tests to a local stub (the real gTTS client code still runs).
    tts_gtts_endpoint: str | None = None
    # After gTTS fails to answer, "auto" goes straight to espeak-ng for this long (0: never).
    tts_gtts_cooldown_seconds: float = Field(default=300.0, ge=0)
    # Silence between the sentences, and between the paragraphs, of synthesised speech.
    tts_sentence_pause_ms: int = Field(default=350, ge=0, le=5000)
    tts_paragraph_pause_ms: int = Field(default=900, ge=0, le=10_000)
    max_script_chars: int = Field(default=20_000, ge=1)
    # Who reads a typed emergency aloud: "auto" (gTTS, espeak-ng when it does not answer),
    # or "espeak" (offline, at once: no wait for the internet in a storm).
    emergency_tts_engine: Literal["auto", "gtts", "espeak"] = "auto"

    # Absolute URLs handed to playout PCs and feeds; derived from the request when unset,
    # from its Host only when that is one of trusted_hosts (comma-separated; unset: the
    # public URL's host, localhost, 127.0.0.1 and ::1), else from the server's own address.
    public_base_url: str | None = None
    trusted_hosts: str | None = None

    # Abuse limits. The token endpoint: attempts per client address and per username.
    token_rate_per_address: str = "30/minute"
    token_rate_per_username: str = "10/minute"
    # Where the counters live: "memory://" (per process) or e.g. "redis://127.0.0.1:6379"
    # (shared by every worker and replica).
    rate_limit_storage: str = "memory://"
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or
    # networks, comma-separated ("" trusts none).
    trusted_proxies: str = "127.0.0.1,::1"
    # Request bodies other than audio uploads (JSON, forms), and the query string.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_query_bytes: int = Field(default=192 * 1024, ge=256)
    # A request body that stops arriving for this long is cut off (408); an upload that takes
    # longer than the deadline in all is too.
    body_idle_seconds: float = Field(default=30.0, gt=0)
    upload_deadline_seconds: float = Field(default=1800.0, gt=0)

    # Logs: one JSON object per line ("json") or plain text ("text"); the level of loaxa's
    # loggers; whether every request is logged.
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    access_log: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("plan_horizon_months")
    @classmethod
    def _plan_horizon(cls, value: int) -> int:
        try:
            return check_plan_horizon(value)
        except ValueError as exc:
            raise ValueError(f"LOAXA_PLAN_HORIZON_MONTHS: {exc}") from exc

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"LOAXA_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            url = self.database_url
            # Accept the common "postgresql://" spelling and use psycopg 3 for it.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'loaxa.db').resolve()}"

    def signing_key(self) -> str:
        """The secret for signing tokens: the setting, else a key kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        return _load_or_create_secret(self.data_dir / SECRET_FILE_NAME)


def _load_or_create_secret(path: Path) -> str:
    """The key in `path`, created on first use (mode 0600) and never rewritten.

    The key is written whole to a private temp file and then hard-linked into place: the
    link fails if another process got there first (its key is used), and no process ever
    reads a half-written file.
    """
    if path.exists():
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return _read_secret(path)
    finally:
        os.unlink(tmp_name)
    return key


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise RuntimeError(
            f"{path} holds no usable key (fewer than {MIN_SECRET_LENGTH} characters): remove "
            "it to have a new one generated (signed-in users will have to sign in again)"
        )
    return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear this cache to change them)."""
    return Settings()
