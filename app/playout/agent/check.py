"""`loaxa-agent --check`: the technician's test that an installed agent can do its job.

It pulls today's playlist once (tomorrow's when today has nothing), downloads one of its
files into the cache, plays one second of it through the configured player, and says what it
did at each step. It neither takes the journal nor reports anything to the server, so it can
run beside a running agent (whose cache it shares; the sound then plays over it).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.playout.agent.cache import AudioCache, CorruptDownload
from app.playout.agent.client import PlayoutClient, ServerRefused, ServerUnavailable
from app.playout.agent.config import DEFAULT_TIMEZONE, AgentConfig, ConfigError, load_config
from app.playout.agent.player import PlayerError, SubprocessPlayer
from app.playout.agent.schemas import PlaylistItem, parse_items

PLAY_SECONDS = 1.0

Say = Callable[[str], None]


class CheckFailed(Exception):
    """A step of the check failed; the message says which and what to look at."""


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _pick(items: list[PlaylistItem], now: datetime) -> PlaylistItem:
    """The next item still to end (the one the agent needs soonest), else the last one."""
    upcoming = [i for i in items if i.end > now]
    return min(upcoming, key=lambda i: i.starts_at) if upcoming else items[-1]


def _playlist(client: PlayoutClient, config: AgentConfig, say: Say) -> PlaylistItem:
    now = datetime.now(UTC)
    today = now.astimezone(_zone(config.timezone)).date()
    for day in (today, today + timedelta(days=1)):
        try:
            fetched = client.playlist(day, etag=None)
        except ServerRefused as exc:
            if exc.status_code == 404:
                say(f"playlist {day}: none yet")
                continue
            hint = " (is the device token right?)" if exc.status_code in (401, 403) else ""
            raise CheckFailed(f"the server refused the playlist of {day}: {exc}{hint}") from exc
        except ServerUnavailable as exc:
            raise CheckFailed(f"cannot reach {config.server_url}: {exc}") from exc
        items = [i for i in parse_items(fetched.body) if i.kind == "file"]  # audio to test
        zone = fetched.body.get("timezone")
        say(f"playlist {day}: {len(items)} items (ETag {fetched.etag}, zone {zone})")
        if items:
            return _pick(items, now)
    raise CheckFailed(
        "the server answers and accepts the token, but the playlists of today and tomorrow "
        "are empty: there is no audio to test with yet (publish a broadcast for this device)"
    )


def _download(client: PlayoutClient, config: AgentConfig, item: PlaylistItem, say: Say) -> Path:
    cache = AudioCache(config.cache_dir, client)
    assert item.sha256 is not None  # file items only (see _playlist)
    url = client.audio_url(item.sha256, item.audio_url)
    began = time.monotonic()
    try:
        cached = cache.has(item.sha256) or cache.fetch(item.sha256, url)
    except (ServerUnavailable, ServerRefused, CorruptDownload) as exc:
        raise CheckFailed(f"download of {item.sha256[:12]} failed: {exc}") from exc
    except OSError as exc:
        raise CheckFailed(f"cannot write to the cache {config.cache_dir}: {exc}") from exc
    if not cached:
        raise CheckFailed(f"download of {item.sha256[:12]} did not complete")
    path = cache.path(item.sha256)
    say(
        f"audio {item.title!r} ({item.duration_ms / 1000:.1f} s, sha256 {item.sha256[:12]}): "
        f"{path.stat().st_size} bytes in {path} ({time.monotonic() - began:.1f} s)"
    )
    return path


def _play(config: AgentConfig, path: Path, duration_s: float, say: Say) -> None:
    try:
        player = SubprocessPlayer(config.player_command)
    except ValueError as exc:
        raise CheckFailed(str(exc)) from exc
    argv = player.argv(path, 0.0)
    try:
        playback = player.start(path, offset_s=0.0, duration_s=duration_s)
    except PlayerError as exc:
        raise CheckFailed(f"{exc} (is the player installed, and player_command right?)") from exc
    began = time.monotonic()
    try:
        while time.monotonic() - began < PLAY_SECONDS:
            code = playback.poll()
            if code is not None:
                if code != 0:
                    raise CheckFailed(
                        f"the player exited with code {code} after "
                        f"{time.monotonic() - began:.1f} s: {shlex.join(argv)}"
                    )
                break
            time.sleep(0.05)
    finally:
        playback.stop()
    say(f"played {min(time.monotonic() - began, PLAY_SECONDS):.1f} s with: {shlex.join(argv)}")


def run_check(config: AgentConfig, *, say: Say = print) -> None:
    """Pull, download, play one second; raises CheckFailed at the first step that fails."""
    say(f"server {config.server_url}")
    try:
        token = config.token()
    except ConfigError as exc:
        raise CheckFailed(str(exc)) from exc
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    client = PlayoutClient(
        server_url=config.server_url,
        token=token,
        cache_dir=config.cache_dir,
        connect_timeout=config.connect_timeout_seconds,
        read_timeout=config.read_timeout_seconds,
    )
    try:
        item = _playlist(client, config, say)
        path = _download(client, config, item, say)
    finally:
        client.close()
    _play(config, path, item.duration_ms / 1000, say)


def check(config_path: Path, *, say: Say = print) -> int:
    """Run the check from a configuration file; the exit code (0 when every step worked)."""
    say(f"config {config_path}")
    try:
        config = load_config(config_path)
        run_check(config, say=say)
    except ConfigError as exc:
        say(f"FAILED: {exc}")
        return 2
    except CheckFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    say("OK: the agent can pull its playlist, download audio and play it")
    return 0
