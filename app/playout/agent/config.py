"""The agent's configuration: one TOML file, validated; relative paths are read from its folder."""

from __future__ import annotations

import logging
import os
import sys
import tomllib
from pathlib import Path, PureWindowsPath
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

log = logging.getLogger("loaxa.agent")

DEFAULT_PLAYER_COMMAND = "ffplay -nodisp -autoexit -loglevel error -ss {offset_s} {file}"
# The station's zone when neither the configuration nor a playlist names one.
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
# Emergencies must start on every online agent within 30 s; polling at most every 10 s keeps
# a margin for the download and the player's start.
MAX_EMERGENCY_POLL_SECONDS = 10.0


class ConfigError(ValueError):
    """The agent's configuration file is missing or invalid."""


def home_dir(*, windows: bool = sys.platform == "win32") -> Path:
    """Where the agent keeps its state by default.

    Windows: `%ProgramData%\\loaxa-agent` (configuration, token, cache and journal together,
    as Windows programs do); elsewhere `/var/lib/loaxa-agent` (systemd's StateDirectory).
    """
    if windows:
        return Path(os.environ.get("PROGRAMDATA") or r"C:\ProgramData") / "loaxa-agent"
    return Path("/var/lib/loaxa-agent")


def default_config_path(*, windows: bool = sys.platform == "win32") -> Path:
    """The configuration file `loaxa-agent` reads when given none."""
    if windows:
        return home_dir(windows=True) / "agent.toml"
    return Path("/etc/loaxa/agent.toml")


class AgentConfig(BaseModel):
    """Everything the playout agent needs; see scripts/agent.example.toml for each key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server_url: str
    device_token: SecretStr | None = Field(default=None, repr=False)
    token_file: Path | None = None
    cache_dir: Path = Field(default_factory=lambda: home_dir() / "cache")
    journal: Path = Field(default_factory=lambda: home_dir() / "journal.sqlite")

    player_command: str = DEFAULT_PLAYER_COMMAND
    late_policy: Literal["skip", "trim"] = "trim"
    start_grace_seconds: float = Field(default=5.0, ge=0)
    max_late_seconds: float = Field(default=300.0, ge=0)
    min_remaining_seconds: float = Field(default=3.0, ge=0)
    overrun_grace_seconds: float = Field(default=30.0, ge=0)
    player_retries: int = Field(default=2, ge=0, le=10)
    timezone: str | None = None

    playlist_poll_seconds: float = Field(default=60.0, gt=0)
    # Days after today whose playlists and audio are kept ready, so the agent plays on
    # through an outage that long (1: tomorrow only).
    prefetch_days: int = Field(default=7, ge=1, le=31)
    emergency_poll_seconds: float = Field(default=5.0, gt=0, le=MAX_EMERGENCY_POLL_SECONDS)
    # Push (app.playout.agent.push): while connected to loaxa's broker, polls are only a
    # safety net at these intervals; when it cannot be reached, the intervals above apply.
    push: bool = True
    push_emergency_poll_seconds: float = Field(default=60.0, gt=0)
    push_playlist_poll_seconds: float = Field(default=300.0, gt=0)
    # The days after tomorrow (pulled every 15 minutes without push).
    push_ahead_poll_seconds: float = Field(default=21600.0, gt=0)
    push_retry_base_seconds: float = Field(default=1.0, gt=0)
    push_retry_max_seconds: float = Field(default=60.0, gt=0)
    upload_interval_seconds: float = Field(default=15.0, gt=0)
    upload_batch_size: int = Field(default=50, ge=1, le=1000)
    housekeeping_seconds: float = Field(default=3600.0, gt=0)
    heartbeat_seconds: float = Field(default=1.0, gt=0)
    tick_seconds: float = Field(default=0.25, gt=0, le=5)

    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    # A relayed stream that drops is tried again after this pause, doubling up to the max,
    # for as long as its window lasts.
    relay_retry_base_seconds: float = Field(default=0.5, gt=0)
    relay_retry_max_seconds: float = Field(default=8.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=15.0, gt=0)
    download_budget_seconds: float = Field(default=2.0, gt=0)
    journal_retention_days: int = Field(default=30, ge=1)

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"server_url must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        if (self.device_token is None) == (self.token_file is None):
            raise ValueError("set exactly one of device_token and token_file")
        if "{file}" not in self.player_command:
            raise ValueError("player_command must contain the {file} placeholder")
        if self.late_policy == "trim" and "{offset_s}" not in self.player_command:
            raise ValueError(
                "late_policy 'trim' needs a player_command with the {offset_s} placeholder "
                "(e.g. ffplay -ss {offset_s}, mpv --start={offset_s}); or use late_policy 'skip'"
            )
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("retry_max_seconds must be at least retry_base_seconds")
        return self

    def token(self) -> str:
        """The device token, from the file when token_file is set."""
        if self.device_token is not None:
            value = self.device_token.get_secret_value().strip()
        else:
            assert self.token_file is not None
            try:
                # utf-8-sig: Notepad on older Windows starts its UTF-8 files with a BOM.
                value = self.token_file.read_text(encoding="utf-8-sig").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read token_file {self.token_file}: {exc}") from exc
        if not value:
            raise ConfigError("the device token is empty")
        if not value.startswith("dev_"):
            log.warning("the device token does not start with 'dev_'; is it a device token?")
        return value


def is_absolute(value: str) -> bool:
    """Whether a configured path is absolute, in POSIX or in Windows terms.

    `C:\\ProgramData\\loaxa-agent\\cache` is taken as it is on every system: no folder named
    so next to the configuration is ever meant.
    """
    windows = PureWindowsPath(value)
    return Path(value).is_absolute() or bool(windows.drive and windows.root)


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str):
        path = Path(value).expanduser()
        return path if is_absolute(str(path)) else base / path
    return value


def load_config(path: Path) -> AgentConfig:
    """Read and validate the agent's TOML configuration file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # BOM: see token()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    base = path.resolve().parent
    for key in ("cache_dir", "journal", "token_file"):
        if key in raw:
            raw[key] = _resolve(base, raw[key])
    try:
        return AgentConfig.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
