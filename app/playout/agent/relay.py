"""Relaying a stream for its window: reconnect after a drop, fill the gap, count what was heard.

A relay item (a playlist item of ``kind: "stream"``) plays the station hub's mount from
its start for exactly its window. `RelayPlayback` is the Playback the loop holds for it,
so the loop treats it like a file (an emergency interrupts it, a restart recovers it,
the journal records it); inside, it keeps the stream going:

* the player is started on the stream's URL (the device token as the password of HTTP
  basic authentication); an attempt counts as connected when the hub says the mount is on
  air (its status page, `mount_on_air`) while the player runs: a listener of a mount whose
  upstream is down may wait seconds for nothing before the hub gives up on it. A hub
  without a status page: once the player has run for CONFIRM_S;
* when the player stops before the window ends, the stream is gone: a dropout begins,
  the station's fallback (an approved segment such as its ident, when one is set) plays
  once, and the stream is tried again after a pause that doubles from `backoff_base_s`
  to `backoff_max_s`, as long as the window lasts; a dropout ends when an attempt connects;
* at the window's end everything stops: the playback ends with 0 (played).

`relayed_ms` is the time the stream played (connected attempts, from their start to their
end); `dropouts` the gaps after it was first on air, a gap at the end included (a stream
never on air is one dropout, the whole window). Getting on air at the start is not a
dropout: `relayed_ms` shows what it took.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from app.playout.agent.player import Playback, Player, PlayerError

log = logging.getLogger("loaxa.agent")

CONFIRM_S = 2.5  # a hub with no stream answers 404 within ~2 s (its relay's retry)
STATUS_EVERY_S = 0.5


def mount_on_air(url: str, timeout: float = 1.0) -> bool | None:
    """Whether the hub's mount at `url` has its source (Icecast's status-json.xsl); None
    when the hub does not say."""
    parts = urlsplit(url)
    status = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], "/status-json.xsl", "", ""))
    try:
        r = httpx.get(status, timeout=timeout)
        if r.status_code != 200:
            return None
        sources = r.json().get("icestats", {}).get("source") or []
    except (httpx.HTTPError, ValueError):
        return None
    if isinstance(sources, dict):
        sources = [sources]
    for entry in sources:
        if str(entry.get("listenurl", "")).endswith(parts.path):
            return bool(entry.get("stream_start_iso8601"))
    return False


def with_token(url: str, token: str) -> str:
    """The stream's URL with the device token as the password (user "device")."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"device:{quote(token, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@dataclass(frozen=True)
class RelayReport:
    """What a relay part heard: milliseconds of stream, and its dropouts."""

    relayed_ms: int
    dropout_count: int
    dropout_ms: int


class RelayPlayback:
    """A stream relayed until `ends_at` (see the module's docstring)."""

    def __init__(
        self,
        player: Player,
        url: str,
        *,
        ends_at: datetime,
        clock: Callable[[], datetime],
        fallback: Path | None = None,
        fallback_s: float = 0.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        on_air: Callable[[], bool | None] | None = None,
    ) -> None:
        self.player, self.url, self.ends_at, self.clock = player, url, ends_at, clock
        self.on_air = on_air
        self.checked_at: datetime | None = None
        self.fallback, self.fallback_s = fallback, fallback_s
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.backoff_s = backoff_base_s
        self.stream: Playback | None = None
        self.filler: Playback | None = None
        self.attempt_at: datetime | None = None
        self.connected = False
        self.retry_at: datetime = clock()
        self.gap_since: datetime | None = self.retry_at  # gone until the first connection
        self.heard = timedelta(0)
        self.gaps: list[timedelta] = []
        self.done: int | None = None
        self._step(self.retry_at)

    # Playback

    def poll(self) -> int | None:
        """None while the window lasts; 0 once it is over (played)."""
        if self.done is not None:
            return self.done
        now = self.clock()
        if now >= self.ends_at:
            self._finish(self.ends_at)
            self.done = 0
            return 0
        self._step(now)
        return None

    def stop(self) -> None:
        """Stop now (an emergency, the agent stopping)."""
        if self.done is None:
            self._finish(min(self.clock(), self.ends_at))
            self.done = 0

    def report(self) -> RelayReport:
        gaps = list(self.gaps)
        return RelayReport(
            relayed_ms=round(self.heard.total_seconds() * 1000),
            dropout_count=len(gaps),
            dropout_ms=round(sum(g.total_seconds() for g in gaps) * 1000),
        )

    # The state machine.

    def _step(self, now: datetime) -> None:
        if self.stream is not None:
            code = self.stream.poll()
            if code is None:
                if not self.connected and self._confirmed(now):
                    self._connected(now)
                return
            self._lost(now, code)
        if now >= self.retry_at:
            self._attempt(now)

    def _confirmed(self, now: datetime) -> bool:
        assert self.attempt_at is not None
        if self.on_air is not None:
            if self.checked_at and (now - self.checked_at).total_seconds() < STATUS_EVERY_S:
                return False
            self.checked_at = now
            said = self.on_air()
            if said is not None:
                if said:
                    self.attempt_at = now  # heard from now: the wait before was silence
                return said
        return (now - self.attempt_at).total_seconds() >= CONFIRM_S

    def _attempt(self, now: datetime) -> None:
        remaining = (self.ends_at - now).total_seconds()
        try:
            self.stream = self.player.start(self.url, offset_s=0.0, duration_s=remaining)
        except PlayerError as exc:
            log.error("relay: the player could not start: %s", exc)
            self._schedule_retry(now)
            return
        self.attempt_at, self.connected, self.checked_at = now, False, None

    def _connected(self, now: datetime) -> None:
        assert self.attempt_at is not None
        self.connected = True
        self.backoff_s = self.backoff_base_s
        if self.gap_since is not None:
            gap = self.attempt_at - self.gap_since
            first = self.heard == timedelta(0) and not self.gaps
            if first:  # getting on air is not a dropout (relayed_ms shows what it took)
                log.info("relay: on air after %.1f s", gap.total_seconds())
            elif gap > timedelta(0):
                self.gaps.append(gap)
                log.info("relay: the stream is back after %.1f s", gap.total_seconds())
            self.gap_since = None
        if self.filler is not None:
            self.filler.stop()
            self.filler = None

    def _lost(self, now: datetime, code: int) -> None:
        assert self.attempt_at is not None
        self.stream = None
        if self.connected:
            self.heard += now - self.attempt_at
            self.connected = False
            self.gap_since = now
            self.backoff_s = self.backoff_base_s
            log.warning("relay: the stream stopped (player exit %s); reconnecting", code)
            self._fill(now)
        self._schedule_retry(now)

    def _schedule_retry(self, now: datetime) -> None:
        self.retry_at = now + timedelta(seconds=self.backoff_s)
        self.backoff_s = min(self.backoff_s * 2, self.backoff_max_s)

    def _fill(self, now: datetime) -> None:
        if self.fallback is None or self.filler is not None:
            return
        try:
            self.filler = self.player.start(self.fallback, offset_s=0.0, duration_s=self.fallback_s)
            log.info("relay: playing the station's fallback while the stream is gone")
        except PlayerError as exc:
            log.error("relay: the fallback could not play: %s", exc)

    def _finish(self, at: datetime) -> None:
        if self.stream is not None:
            if self.stream.poll() is None:
                self.stream.stop()
            if self.connected and self.attempt_at is not None:
                self.heard += at - self.attempt_at
                self.connected = False
            elif self.gap_since is None:
                self.gap_since = self.attempt_at
            self.stream = None
        if self.gap_since is not None and at > self.gap_since:
            self.gaps.append(at - self.gap_since)
            self.gap_since = None
        if self.filler is not None:
            self.filler.stop()
            self.filler = None
