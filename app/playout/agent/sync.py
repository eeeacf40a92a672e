"""The agent's side of the server: emergency polls, playlist pulls, audio downloads, as-run.

Each channel keeps its own due time and backoff, so one that fails (the server down, a
refused token) never holds up another, and the agent plays on from its journal and cache.
A failure is logged once per channel until it works again: no flood while offline for days.
Nothing here blocks for long: requests have short timeouts and downloads a time budget.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from app.playout.agent.cache import AudioCache, CorruptDownload
from app.playout.agent.client import (
    PlayoutClient,
    ServerRefused,
    ServerUnavailable,
    ServerUnreachable,
)
from app.playout.agent.config import AgentConfig
from app.playout.agent.decide import PlayoutSlot
from app.playout.agent.journal import Journal, Part
from app.playout.agent.schemas import EmergencyNotice, parse_emergencies, parse_items

log = logging.getLogger("loaxa.agent")

# The playlists after tomorrow's are pulled this often: they only matter if the server is
# lost for days, and every device asking for a week every minute would be 4 times the load
# of today and tomorrow (ETag revalidations, but requests all the same).
AHEAD_POLL_SECONDS = 900.0


class Backoff:
    """Exponential backoff with jitter, on the agent's clock (it never sleeps itself)."""

    def __init__(self, base: float, cap: float, rng: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self.failures = 0
        self.next_at: datetime | None = None

    def ready(self, now: datetime) -> bool:
        """Whether a new attempt may be made now."""
        return self.next_at is None or now >= self.next_at

    def failed(self, now: datetime) -> float:
        """Note a failure; the delay before the next attempt (half fixed, half random)."""
        # The exponent is bounded: after a thousand failures (three days offline) 2**n
        # no longer fits a float, and every step of the loop would fail on it.
        delay = min(self.cap, self.base * 2 ** min(self.failures, 32))
        delay = delay / 2 + delay / 2 * self._rng()
        self.failures += 1
        self.next_at = now + timedelta(seconds=delay)
        return delay

    def succeeded(self) -> None:
        """Note a success: back to immediate attempts."""
        self.failures = 0
        self.next_at = None

    def not_before(self, at: datetime) -> datetime:
        """`at`, or the end of the backoff when that is later."""
        return max(at, self.next_at) if self.next_at else at


@dataclass(frozen=True)
class Pulled:
    """What a playlist pull changed: a stored playlist, the station's zone in the journal."""

    playlists: bool = False
    zone: bool = False


class ServerSync:
    """Keeps the journal and the cache in step with the server, one due channel at a time."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        client: PlayoutClient,
        journal: Journal,
        cache: AudioCache,
        now: datetime,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.client = client
        self.journal = journal
        self.cache = cache
        self._rng = rng
        # When each channel is next due; `pulled_days` are (today, tomorrow) of the last
        # complete pull, so a new local day pulls at once; `pulled_ahead` the later days
        # of the last complete pull of those.
        self.next_emergency_poll = now
        self.next_playlist_pull = now
        # Poll intervals: the configured ones, or the push safety net's (use_push).
        self.emergency_every = config.emergency_poll_seconds
        self.playlist_every = config.playlist_poll_seconds
        self.ahead_every = AHEAD_POLL_SECONDS
        self.next_ahead_pull = now
        self.pulled_ahead: tuple[date, ...] | None = None
        self.next_upload = now
        self.pulled_days: tuple[date, date] | None = None
        self.downloading = False  # a download ran out of its budget: step again soon
        self._failing: set[str] = set()
        base, cap = config.retry_base_seconds, config.retry_max_seconds
        self.playlist_backoff = Backoff(base, min(cap, config.playlist_poll_seconds), rng)
        self.upload_backoff = Backoff(base, cap, rng)
        self._download_backoff: dict[str, Backoff] = {}
        self._batch_size = config.upload_batch_size
        stored = journal.get_state("emergencies")
        self.emergencies: list[EmergencyNotice] = (
            parse_emergencies(json.loads(stored)) if stored else []
        )
        self._emergencies_etag = journal.get_state("emergencies_etag")
        # Whether the list came from the server's last answer (only then can it cancel).
        self.emergencies_fresh = False

    # Failures, once per channel.

    def _failed(self, channel: str, what: str, exc: Exception) -> None:
        # A refusal (4xx) is an error: the token, the device or the server needs fixing.
        if channel not in self._failing:
            self._failing.add(channel)
            if isinstance(exc, ServerRefused):
                log.error("%s refused by the server (%s); will retry", what, exc)
            else:
                log.warning("%s failed (%s); will retry, playing from the cache", what, exc)
        else:
            log.debug("%s failed again (%s)", what, exc)

    def _ok(self, channel: str) -> None:
        if channel in self._failing:
            self._failing.discard(channel)
            log.info("%s works again", channel)

    # Emergencies.

    def poll_emergencies(self, now: datetime) -> bool:
        """Poll the active emergencies when due; whether the server answered."""
        if now < self.next_emergency_poll:
            return False
        self.next_emergency_poll = now + timedelta(seconds=self.emergency_every)
        try:
            fetched = self.client.emergencies(etag=self._emergencies_etag)
        except (ServerUnavailable, ServerRefused) as exc:
            self.emergencies_fresh = False
            self._failed("emergencies", "emergency poll", exc)
            return False
        self._ok("emergencies")
        self.emergencies_fresh = True
        if fetched.changed:
            known = {(n.kind, n.id) for n in self.emergencies}
            self.emergencies = parse_emergencies(fetched.body)
            self._emergencies_etag = fetched.etag
            self.journal.set_state("emergencies", json.dumps(fetched.body, ensure_ascii=False))
            if fetched.etag:
                self.journal.set_state("emergencies_etag", fetched.etag)
            for notice in self.emergencies:
                if (notice.kind, notice.id) not in known:
                    what = "live session" if notice.is_live else "emergency"
                    log.warning("%s %s %r is active", what, notice.id, notice.title)
        return True

    def use_push(self, connected: bool, now: datetime) -> None:
        """Poll as a safety net while push is connected, as configured when it is not (and
        then at once if a slow poll was due later than a normal one would be)."""
        config = self.config
        if connected:
            self.emergency_every = config.push_emergency_poll_seconds
            self.playlist_every = config.push_playlist_poll_seconds
            # Every change to a later day is pushed too (and pulls them all at once).
            self.ahead_every = config.push_ahead_poll_seconds
            return
        self.emergency_every = config.emergency_poll_seconds
        self.playlist_every = config.playlist_poll_seconds
        self.ahead_every = AHEAD_POLL_SECONDS
        self.next_ahead_pull = min(
            self.next_ahead_pull, now + timedelta(seconds=AHEAD_POLL_SECONDS)
        )
        soon = now + timedelta(seconds=self.emergency_every)
        self.next_emergency_poll = min(self.next_emergency_poll, soon)
        soon = now + timedelta(seconds=self.playlist_every)
        self.next_playlist_pull = min(self.next_playlist_pull, soon)

    def pushed(self, kinds: set[str], now: datetime) -> None:
        """A push message said what changed: poll it now."""
        if kinds & {"alert", "token"}:
            self.next_emergency_poll = now
        if "playlist" in kinds:
            self.next_playlist_pull = now
            self.next_ahead_pull = now
            self.playlist_backoff.succeeded()

    # Playlists.

    def pull_playlists(self, now: datetime, days: tuple[date, ...]) -> Pulled:
        """Pull the playlists of `days` (today, tomorrow, the days after) when due, into the
        journal: today's and tomorrow's every `playlist_poll_seconds`, the later ones (which
        change seldom, and only matter if the server is lost for days) every
        AHEAD_POLL_SECONDS, and a day new to the list at once."""
        near, ahead = (days[0], days[1]), days[2:]
        ahead_due = bool(ahead) and (ahead != self.pulled_ahead or now >= self.next_ahead_pull)
        if near == self.pulled_days and now < self.next_playlist_pull and not ahead_due:
            return Pulled()
        if not self.playlist_backoff.ready(now):
            return Pulled()
        failed = changed = zone_changed = False
        for day in near + (ahead if ahead_due else ()):
            stored = self.journal.playlist(day)
            try:
                fetched = self.client.playlist(day, etag=stored.etag if stored else None)
            except ServerUnavailable as exc:
                self._failed("playlists", f"playlist of {day}", exc)
                failed = True
                if isinstance(exc, ServerUnreachable):
                    break
                continue  # tomorrow's may well work when today's does not
            except ServerRefused as exc:
                if exc.status_code == 404:
                    log.info("no playlist for %s yet", day)
                    continue
                self._failed("playlists", f"playlist of {day}", exc)
                failed = True
                continue
            if fetched.changed:
                body = fetched.body
                items = parse_items(body)
                self.journal.save_playlist(day, etag=fetched.etag, body=body, fetched_at=now)
                changed = True
                zone = body.get("timezone")
                if isinstance(zone, str) and zone != self.journal.get_state("timezone"):
                    self.journal.set_state("timezone", zone)
                    zone_changed = True
                log.info("playlist of %s: %d items (ETag %s)", day, len(items), fetched.etag)
            elif stored is not None:
                self.journal.touch_playlist(day, fetched_at=now)
        if failed:
            self.playlist_backoff.failed(now)
            return Pulled(changed, zone_changed)
        self._ok("playlists")
        self.playlist_backoff.succeeded()
        self.pulled_days = near
        self.next_playlist_pull = now + timedelta(seconds=self.playlist_every)
        if ahead_due:
            self.pulled_ahead = ahead
            self.next_ahead_pull = now + timedelta(seconds=self.ahead_every)
        return Pulled(changed, zone_changed)

    # Audio.

    def ensure_audio(
        self, slot: PlayoutSlot, budget_s: float | None, now: datetime
    ) -> Literal["done", "partial", "failed"]:
        """Have the slot's file in the cache: download it (within `budget_s`, None: all)."""
        sha = slot.sha256
        if sha is None:  # a relayed stream: nothing to download
            return "done"
        if self.cache.has(sha):
            return "done"
        backoff = self._download_backoff.setdefault(
            sha, Backoff(self.config.retry_base_seconds, self.config.retry_max_seconds, self._rng)
        )
        if not backoff.ready(now):
            return "failed"
        url = self.client.audio_url(sha, slot.audio_url)
        for _attempt in range(2):
            try:
                complete = self.cache.fetch(sha, url, budget_s=budget_s)
                self._ok("audio")
                if complete:
                    backoff.succeeded()
                    return "done"
                return "partial"
            except CorruptDownload as exc:
                log.warning("%s; fetching it again", exc)
            except ServerUnavailable as exc:
                self._failed("audio", f"download of {sha[:12]}", exc)
                break
            except ServerRefused as exc:
                self._failed("audio", f"download of {sha[:12]}", exc)
                break
        backoff.failed(now)
        return "failed"

    def prefetch(self, slots: Sequence[PlayoutSlot], budget_s: float, now: datetime) -> None:
        """Download the files of `slots` in order until `budget_s` (wall time) is spent."""
        deadline = time.monotonic() + budget_s
        self.downloading = False
        for slot in slots:
            if slot.sha256 is None or self.cache.has(slot.sha256):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.downloading = True
                return
            if self.ensure_audio(slot, remaining, now) == "partial":
                self.downloading = True
                return

    # As-run.

    def upload_soon(self, now: datetime) -> None:
        """Make the as-run upload due now (an event was just finished)."""
        self.next_upload = now

    def upload(self, now: datetime) -> None:
        """Send a batch of finished as-run events when due, and record the server's answer."""
        if now < self.next_upload or not self.upload_backoff.ready(now):
            return
        batch = self.journal.pending_uploads(self._batch_size)
        if not batch:
            self.next_upload = now + timedelta(seconds=self.config.upload_interval_seconds)
            return
        try:
            answer = self.client.post_as_run([p.as_run() for p in batch])
        except ServerUnavailable as exc:
            self._failed("as-run", "as-run upload", exc)
            self.upload_backoff.failed(now)
            return
        except ServerRefused as exc:
            if exc.status_code in (401, 403, 404, 405):
                # The device or the server is misconfigured, not the events: keep them.
                self._failed("as-run", "as-run upload", exc)
                self.upload_backoff.failed(now)
            elif len(batch) == 1:
                reason = f"HTTP {exc.status_code}: {exc.detail}"
                self.journal.mark_rejected(batch[0].event_id, reason)
                log.error("as-run event %s rejected: %s", batch[0].event_id, reason)
            else:
                # One bad event must not hold back the rest: send smaller batches to find it.
                self._batch_size = max(1, len(batch) // 2)
                log.warning("as-run batch refused (%s); retrying in smaller batches", exc)
            return
        self._ok("as-run")
        if self._settle(batch, answer):
            self.upload_backoff.succeeded()
        else:
            self.upload_backoff.failed(now)  # keep the unanswered ones; do not hammer
        more = len(batch) == self._batch_size
        self._batch_size = self.config.upload_batch_size
        if more:
            self.next_upload = now
        else:
            self.next_upload = now + timedelta(seconds=self.config.upload_interval_seconds)

    def _settle(self, batch: list[Part], answer: dict[str, object]) -> bool:
        """Record the server's answer; whether it answered for every event sent."""

        def ids(key: str) -> list[str]:
            value = answer.get(key)
            out = []
            for entry in value if isinstance(value, list) else []:
                if isinstance(entry, dict):
                    entry = entry.get("event_id")
                if isinstance(entry, str):
                    out.append(entry)
            return out

        sent = {p.event_id for p in batch}
        accepted = [e for e in ids("accepted") if e in sent]
        duplicates = [e for e in ids("duplicates") if e in sent]
        self.journal.mark_uploaded(accepted, "accepted")
        self.journal.mark_uploaded(duplicates, "duplicate")
        settled = set(accepted) | set(duplicates)
        rejected = answer.get("rejected")
        for entry in rejected if isinstance(rejected, list) else []:
            if isinstance(entry, dict) and entry.get("event_id") in sent:
                reason = str(entry.get("reason") or "no reason given")
                self.journal.mark_rejected(str(entry["event_id"]), reason)
                settled.add(str(entry["event_id"]))
                log.error("as-run event %s rejected by the server: %s", entry["event_id"], reason)
        if accepted or duplicates:
            log.info("as-run: %d accepted, %d already known", len(accepted), len(duplicates))
        unsettled = sent - settled
        if unsettled:
            log.warning("the server did not answer for %d as-run events", len(unsettled))
        return not unsettled

    # Sleeping.

    def wake_times(self, now: datetime, days: tuple[date, ...], *, uploads: bool) -> list[datetime]:
        """When each channel is next due (a new local day's pull is due at once)."""
        wake = [self.next_emergency_poll]
        if self.pulled_days != (days[0], days[1]):
            wake.append(self.playlist_backoff.not_before(now))
        else:
            wake.append(self.playlist_backoff.not_before(self.next_playlist_pull))
        if uploads:
            wake.append(self.upload_backoff.not_before(self.next_upload))
        return wake
