"""The agent's loop: pull playlists, cache audio, play on time, report as-run, obey emergencies.

One thread does everything, a step at a time; nothing in a step blocks for long (the player
is a subprocess, downloads stop after a time budget and resume by Range next step, network
calls have short timeouts), so an emergency poll is never held up by a big download.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from app.playout.agent.cache import AudioCache, CorruptDownload
from app.playout.agent.client import (
    EmergencyNotice,
    PlaylistItem,
    PlayoutClient,
    ServerRefused,
    ServerUnavailable,
    ServerUnreachable,
    parse_emergencies,
    parse_items,
)
from app.playout.agent.config import AgentConfig
from app.playout.agent.journal import Journal, Part
from app.playout.agent.player import Playback, Player, PlayerError

log = logging.getLogger("loaxa.agent")

Clock = Callable[[], datetime]
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

# Notes on journal events. Player trouble ("player ...") is retried `player_retries` times.
PLAYER_FAILED = "player failed"
PLAYER_KILLED = "player killed"
CANCELLED = "emergency cancelled"
AGENT_STOPPED = "agent stopped during playback"


def utc_now() -> datetime:
    """The real time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Slot:
    """Something to air: a playlist item at its planned start, or an emergency."""

    occurrence: str
    title: str
    broadcast_id: int | None
    emergency_id: int | None
    sha256: str
    audio_url: str | None
    starts_at: datetime
    ends_at: datetime
    duration_ms: int
    expires_at: datetime | None = None

    @property
    def is_emergency(self) -> bool:
        """Whether this is an emergency announcement."""
        return self.emergency_id is not None

    @property
    def duration_s(self) -> float:
        """The audio's length in seconds."""
        return self.duration_ms / 1000


def item_slot(item: PlaylistItem) -> Slot:
    """The slot of a playlist item; its identity is the event key and the planned start."""
    starts_at = item.starts_at.astimezone(UTC)
    return Slot(
        occurrence=f"{item.event_key}@{starts_at.isoformat()}",
        title=item.title,
        broadcast_id=item.broadcast_id,
        emergency_id=None,
        sha256=item.sha256,
        audio_url=item.audio_url,
        starts_at=starts_at,
        ends_at=item.end.astimezone(UTC),
        duration_ms=item.duration_ms,
    )


def emergency_slot(notice: EmergencyNotice) -> Slot:
    """The slot of an emergency: it starts when the agent first plays it."""
    created = notice.created_at.astimezone(UTC)
    return Slot(
        occurrence=f"emergency-{notice.id}",
        title=notice.title,
        broadcast_id=None,
        emergency_id=notice.id,
        sha256=notice.sha256,
        audio_url=notice.audio_url,
        starts_at=created,
        ends_at=created + timedelta(milliseconds=notice.duration_ms),
        duration_ms=notice.duration_ms,
        expires_at=None if notice.expires_at is None else notice.expires_at.astimezone(UTC),
    )


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
        delay = min(self.cap, self.base * 2**self.failures)
        delay = delay / 2 + delay / 2 * self._rng()
        self.failures += 1
        self.next_at = now + timedelta(seconds=delay)
        return delay

    def succeeded(self) -> None:
        """Note a success: back to immediate attempts."""
        self.failures = 0
        self.next_at = None


@dataclass
class _Current:
    slot: Slot
    part: Part
    playback: Playback
    last_heartbeat: datetime


@dataclass(frozen=True)
class _Decision:
    action: Literal["wait", "play", "fail", "done"]
    offset_s: float = 0.0
    note: str = ""


_WAIT = _Decision("wait")
_DONE = _Decision("done")


@dataclass
class _Timers:
    emergencies: datetime
    playlists: datetime
    upload: datetime
    housekeeping: datetime
    pulled_days: tuple[date, date] | None = None
    downloading: bool = False
    failing: set[str] = field(default_factory=set)
    waiting_logged: set[str] = field(default_factory=set)


class Agent:
    """The playout agent of one device: call `step()` repeatedly, or `run()`."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        player: Player,
        client: PlayoutClient | None = None,
        journal: Journal | None = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        dry_run: bool = False,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.player = player
        self.dry_run = dry_run
        self._clock = clock
        self._sleep = sleep
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        self.client = client or PlayoutClient(
            server_url=config.server_url,
            token=config.token(),
            cache_dir=config.cache_dir,
            connect_timeout=config.connect_timeout_seconds,
            read_timeout=config.read_timeout_seconds,
        )
        # A dry run keeps its journal in memory: what it pretends to play must not count
        # as played when the agent later runs for real.
        self.journal = journal or Journal(":memory:" if dry_run else config.journal)
        self.cache = AudioCache(config.cache_dir, self.client)
        self.current: _Current | None = None
        self._rng = rng
        self._stop_requested = False
        self._recovered = False
        self._done: set[str] = set()
        self._slots_key: tuple[object, ...] | None = None
        self._playlists_version = 0
        self._zone = self._load_zone()
        self._slots: list[Slot] = []
        self._batch_size = config.upload_batch_size
        now = self.now()
        self._t = _Timers(
            emergencies=now,
            playlists=now,
            upload=now,
            housekeeping=now + timedelta(seconds=config.housekeeping_seconds),
        )
        base, cap = config.retry_base_seconds, config.retry_max_seconds
        self._playlist_backoff = Backoff(base, min(cap, config.playlist_poll_seconds), rng)
        self._upload_backoff = Backoff(base, cap, rng)
        self._download_backoff: dict[str, Backoff] = {}
        stored = self.journal.get_state("emergencies")
        self._emergencies = parse_emergencies(json.loads(stored)) if stored else []
        self._emergencies_etag = self.journal.get_state("emergencies_etag")
        self._emergencies_fresh = False

    # Time.

    def now(self) -> datetime:
        """The agent's clock, in UTC."""
        at = self._clock()
        if at.tzinfo is None:
            raise ValueError("the agent's clock must return aware datetimes")
        return at.astimezone(UTC)

    def timezone(self) -> ZoneInfo:
        """The station's zone: the config's, else the playlist's, else Asia/Ho_Chi_Minh."""
        return self._zone

    def _load_zone(self) -> ZoneInfo:
        name = self.config.timezone or self.journal.get_state("timezone") or DEFAULT_TIMEZONE
        try:
            return ZoneInfo(name)
        except (KeyError, ValueError):
            log.error("unknown time zone %r; using %s", name, DEFAULT_TIMEZONE)
            return ZoneInfo(DEFAULT_TIMEZONE)

    def _days(self, now: datetime) -> tuple[date, date, date]:
        today = now.astimezone(self._zone).date()
        return today - timedelta(days=1), today, today + timedelta(days=1)

    # The loop.

    def request_stop(self) -> None:
        """Ask `run()` to return after the current step (safe from a signal handler)."""
        self._stop_requested = True

    def run(self, until: datetime | None = None) -> None:
        """Step until `until` (or a stop request); playback in progress is left running."""
        while not self._stop_requested:
            if until is not None and self.now() >= until:
                return
            try:
                delay = self.step()
            except Exception:
                log.exception("agent step failed; carrying on")
                delay = 1.0
            if until is not None:
                delay = min(delay, max((until - self.now()).total_seconds(), 0.0))
            while delay > 0 and not self._stop_requested:
                piece = min(delay, 0.5)
                self._sleep(piece)
                delay -= piece

    def step(self) -> float:
        """Do what is due now; the seconds until another step is useful."""
        now = self.now()
        if not self._recovered:
            self._recover(now)
        self._watch(now)
        self._start_due(now)
        self._poll_emergencies(self.now())
        self._pull_playlists(self.now())
        self._watch(self.now())
        self._start_due(self.now())
        self._prefetch(self.now())
        self._start_due(self.now())  # what was waiting for its audio
        self._upload(self.now())
        self._housekeep(self.now())
        return self._idle_seconds(self.now())

    def close(self) -> None:
        """Stop any playback (recorded as interrupted) and release the journal and client."""
        if self.current is not None:
            self._stop_current(self.now(), "interrupted", AGENT_STOPPED)
        self.client.close()
        self.journal.close()

    # Recovery after a restart.

    def _recover(self, now: datetime) -> None:
        self._recovered = True
        for part in self.journal.playing():
            last_alive = part.heartbeat_at or part.started_at
            if last_alive >= part.expected_end - timedelta(seconds=1):
                self.journal.finish(part.event_id, status="played", ended_at=part.expected_end)
                log.info("%s had finished before the restart", part.occurrence)
            else:
                self.journal.finish(
                    part.event_id, status="interrupted", ended_at=last_alive, note=AGENT_STOPPED
                )
                log.warning(
                    "%s was playing when the agent stopped (last seen %s): interrupted",
                    part.occurrence,
                    last_alive.isoformat(),
                )

    # Playback.

    def _watch(self, now: datetime) -> None:
        cur = self.current
        if cur is None:
            return
        code = cur.playback.poll()
        if code is None:
            if cur.slot.is_emergency and self._emergency_cancelled(cur.slot, now):
                log.warning("emergency %s was cancelled: stopping it", cur.slot.emergency_id)
                self._stop_current(now, "interrupted", CANCELLED)
            elif now >= cur.part.expected_end + timedelta(
                seconds=self.config.overrun_grace_seconds
            ):
                log.warning("the player overran %s; stopping it", cur.slot.occurrence)
                # The audio itself ended on time: report that, not the hung player's time.
                self._stop_current(
                    now,
                    "played",
                    "player overran the file; stopped",
                    ended_at=cur.part.expected_end,
                )
            elif (now - cur.last_heartbeat).total_seconds() >= self.config.heartbeat_seconds:
                self.journal.heartbeat(cur.part.event_id, now)
                cur.last_heartbeat = now
            return
        self.current = None
        if code == 0:
            self.journal.finish(cur.part.event_id, status="played", ended_at=now)
            log.info("played %s", cur.slot.occurrence)
        elif self._stop_requested:
            # systemd signals the whole control group: the player went down with us.
            self.journal.finish(
                cur.part.event_id, status="interrupted", ended_at=now, note=AGENT_STOPPED
            )
        elif code < 0:
            note = f"{PLAYER_KILLED} by signal {-code}"
            self.journal.finish(cur.part.event_id, status="interrupted", ended_at=now, note=note)
            log.error("%s: %s", cur.slot.occurrence, note)
        else:
            note = f"{PLAYER_FAILED} with exit code {code}"
            self.journal.finish(cur.part.event_id, status="failed", ended_at=now, note=note)
            log.error("%s: %s", cur.slot.occurrence, note)
        self._t.upload = now

    def _stop_current(
        self, now: datetime, status: str, note: str, *, ended_at: datetime | None = None
    ) -> None:
        cur = self.current
        assert cur is not None
        cur.playback.stop()
        self.current = None
        self.journal.finish(cur.part.event_id, status=status, ended_at=ended_at or now, note=note)
        log.info("stopped %s (%s): %s", cur.slot.occurrence, status, note)
        self._t.upload = now

    def _emergency_active(self, emergency_id: int | None, now: datetime) -> bool:
        for notice in self._emergencies:
            if notice.id == emergency_id:
                return notice.expires_at is None or now < notice.expires_at
        return False

    def _emergency_cancelled(self, slot: Slot, now: datetime) -> bool:
        # Only a fresh answer from the server can cancel; an expiry during playback does not.
        if not self._emergencies_fresh:
            return False
        if any(n.id == slot.emergency_id for n in self._emergencies):
            return False
        return slot.expires_at is None or now < slot.expires_at

    def _decide(self, slot: Slot, parts: list[Part], now: datetime) -> _Decision:
        cfg = self.config
        if not parts:
            if slot.is_emergency:
                if slot.expires_at is not None and now >= slot.expires_at:
                    return _Decision("fail", note="the emergency expired before it could play")
                return _Decision("play")
            late = (now - slot.starts_at).total_seconds()
            if late < 0:
                return _WAIT
            if late <= cfg.start_grace_seconds:
                return _Decision("play")
            if now >= slot.ends_at:
                return _Decision("fail", note="missed: not played in its slot")
            if late > cfg.max_late_seconds:
                return _Decision("fail", note=f"{late:.0f} s late, over max_late_seconds")
            if cfg.late_policy == "skip":
                return _Decision("fail", note=f"{late:.0f} s late (late_policy skip)")
            if slot.duration_s - late < cfg.min_remaining_seconds:
                return _Decision("fail", note=f"{late:.0f} s late, too little left to play")
            return _Decision("play", offset_s=late)
        if any(p.status == "played" for p in parts):
            return _DONE
        last = parts[-1]
        if last.status == "playing" or last.note == CANCELLED:
            return _DONE
        player_failed = last.status == "failed" and (last.note or "").startswith(PLAYER_FAILED)
        if last.status == "failed" and not player_failed:
            return _DONE
        if (last.note or "").startswith("player "):
            troubles = sum(1 for p in parts if (p.note or "").startswith("player "))
            if troubles > cfg.player_retries:
                return _DONE
            if last.ended_at and (now - last.ended_at).total_seconds() < 1.0:
                return _WAIT
        if slot.is_emergency and not self._emergency_active(slot.emergency_id, now):
            return _DONE
        first = parts[0]
        offset = max((now - first.planned_start).total_seconds(), 0.0)
        if cfg.late_policy == "skip" and not (player_failed and offset <= cfg.start_grace_seconds):
            return _DONE  # skip: what was cut short stays cut short
        if cfg.late_policy == "skip":
            offset = 0.0
        remaining = first.duration_ms / 1000 - offset
        if now >= first.planned_end or remaining < cfg.min_remaining_seconds:
            return _DONE
        return _Decision("play", offset_s=offset)

    def _start_due(self, now: datetime) -> None:
        if self.current is not None and self.current.slot.is_emergency:
            return
        for slot in self._emergency_slots():
            decision = self._evaluate(slot, now)
            if decision.action != "play":
                continue
            if not self.cache.has(slot.sha256):
                continue  # being downloaded by the emergency poll
            if self.current is not None:
                self._stop_current(
                    now, "interrupted", f"interrupted by emergency {slot.emergency_id}"
                )
            self._play(slot, decision.offset_s, now)
            return
        if self.current is not None:
            return
        for slot in self._item_slots(now):
            if slot.starts_at > now:
                break
            decision = self._evaluate(slot, now)
            if decision.action != "play":
                continue
            if not self.cache.has(slot.sha256):
                if slot.occurrence not in self._t.waiting_logged:
                    self._t.waiting_logged.add(slot.occurrence)
                    log.warning("%s is due but its audio is not cached yet", slot.occurrence)
                continue
            self._play(slot, decision.offset_s, now)
            return

    def _evaluate(self, slot: Slot, now: datetime) -> _Decision:
        if slot.occurrence in self._done:
            return _DONE
        parts = self.journal.parts(slot.occurrence)
        decision = self._decide(slot, parts, now)
        if decision.action == "fail":
            if not self.cache.has(slot.sha256):
                decision = _Decision("fail", note=f"audio not available; {decision.note}")
            at = slot.starts_at
            self.journal.add_part(
                occurrence=slot.occurrence,
                broadcast_id=slot.broadcast_id,
                emergency_id=slot.emergency_id,
                sha256=slot.sha256,
                planned_start=slot.starts_at,
                planned_end=slot.ends_at,
                duration_ms=slot.duration_ms,
                offset_ms=0,
                started_at=at,
                ended_at=at,
                status="failed",
                note=decision.note,
            )
            log.warning("%s not played: %s", slot.occurrence, decision.note)
            self._t.upload = now
            decision = _DONE
        if decision.action == "done":
            self._done.add(slot.occurrence)
        return decision

    def _play(self, slot: Slot, offset_s: float, now: datetime) -> None:
        parts = self.journal.parts(slot.occurrence)
        if parts:
            planned_start, planned_end = parts[0].planned_start, parts[0].planned_end
        elif slot.is_emergency:
            planned_start = now
            planned_end = now + timedelta(milliseconds=slot.duration_ms)
        else:
            planned_start, planned_end = slot.starts_at, slot.ends_at
        # Written (and fsynced) before the player starts: a crash from here on is seen
        # by the next agent as "this was playing".
        part = self.journal.add_part(
            occurrence=slot.occurrence,
            broadcast_id=slot.broadcast_id,
            emergency_id=slot.emergency_id,
            sha256=slot.sha256,
            planned_start=planned_start,
            planned_end=planned_end,
            duration_ms=slot.duration_ms,
            offset_ms=round(offset_s * 1000),
            started_at=now,
        )
        path = self.cache.path(slot.sha256)
        try:
            playback = self.player.start(path, offset_s=offset_s, duration_s=slot.duration_s)
        except PlayerError as exc:
            note = f"{PLAYER_FAILED}: {exc}"
            self.journal.finish(part.event_id, status="failed", ended_at=now, note=note)
            log.error("%s: %s", slot.occurrence, note)
            return
        self.current = _Current(slot=slot, part=part, playback=playback, last_heartbeat=now)
        what = f"emergency {slot.emergency_id}" if slot.is_emergency else slot.occurrence
        log.info("playing %s %r from %.1f s (part %d)", what, slot.title, offset_s, part.part)

    # What there is to play.

    def _item_slots(self, now: datetime) -> list[Slot]:
        days = self._days(now)
        key = (days, self._playlists_version)
        if key != self._slots_key:
            slots: dict[str, Slot] = {}
            for day in days:
                playlist = self.journal.playlist(day)
                if playlist is not None:
                    for item in parse_items(playlist.body):
                        slot = item_slot(item)
                        slots[slot.occurrence] = slot
            self._slots = sorted(slots.values(), key=lambda s: (s.starts_at, s.occurrence))
            self._slots_key = key
        return self._slots

    def _emergency_slots(self) -> list[Slot]:
        return [emergency_slot(n) for n in sorted(self._emergencies, key=lambda n: n.created_at)]

    # Network: emergencies, playlists, audio, as-run.

    def _network_failed(self, channel: str, what: str, exc: Exception) -> None:
        # Logged once per channel until it works again: no flood while offline for days.
        # A refusal (4xx) is an error: the token, the device or the server needs fixing.
        if channel not in self._t.failing:
            self._t.failing.add(channel)
            if isinstance(exc, ServerRefused):
                log.error("%s refused by the server (%s); will retry", what, exc)
            else:
                log.warning("%s failed (%s); will retry, playing from the cache", what, exc)
        else:
            log.debug("%s failed again (%s)", what, exc)

    def _network_ok(self, channel: str) -> None:
        if channel in self._t.failing:
            self._t.failing.discard(channel)
            log.info("%s works again", channel)

    def _poll_emergencies(self, now: datetime) -> None:
        if now < self._t.emergencies:
            return
        self._t.emergencies = now + timedelta(seconds=self.config.emergency_poll_seconds)
        try:
            fetched = self.client.emergencies(etag=self._emergencies_etag)
        except (ServerUnavailable, ServerRefused) as exc:
            self._emergencies_fresh = False
            self._network_failed("emergencies", "emergency poll", exc)
            return
        self._network_ok("emergencies")
        self._emergencies_fresh = True
        if fetched.changed:
            known = {n.id for n in self._emergencies}
            self._emergencies = parse_emergencies(fetched.body)
            self._emergencies_etag = fetched.etag
            self.journal.set_state("emergencies", json.dumps(fetched.body, ensure_ascii=False))
            if fetched.etag:
                self.journal.set_state("emergencies_etag", fetched.etag)
            for notice in self._emergencies:
                if notice.id not in known:
                    log.warning("emergency %s %r is active", notice.id, notice.title)
        for slot in self._emergency_slots():
            if (
                slot.occurrence not in self._done
                and self._emergency_active(slot.emergency_id, now)
                and not self.journal.parts(slot.occurrence)
            ):
                self._ensure_audio(slot, None, now)  # all of it, now: it plays at once

    def _pull_playlists(self, now: datetime) -> None:
        days = self._days(now)[1:]
        if days == self._t.pulled_days and now < self._t.playlists:
            return
        if not self._playlist_backoff.ready(now):
            return
        failed = False
        for day in days:
            stored = self.journal.playlist(day)
            try:
                fetched = self.client.playlist(day, etag=stored.etag if stored else None)
            except ServerUnavailable as exc:
                self._network_failed("playlists", f"playlist of {day}", exc)
                failed = True
                if isinstance(exc, ServerUnreachable):
                    break
                continue  # tomorrow's may well work when today's does not
            except ServerRefused as exc:
                if exc.status_code == 404:
                    log.info("no playlist for %s yet", day)
                    continue
                self._network_failed("playlists", f"playlist of {day}", exc)
                failed = True
                continue
            if fetched.changed:
                body = fetched.body
                items = parse_items(body)
                self.journal.save_playlist(day, etag=fetched.etag, body=body, fetched_at=now)
                self._playlists_version += 1
                zone = body.get("timezone")
                if isinstance(zone, str) and zone != self.journal.get_state("timezone"):
                    self.journal.set_state("timezone", zone)
                    self._zone = self._load_zone()
                log.info("playlist of %s: %d items (ETag %s)", day, len(items), fetched.etag)
                self._t.housekeeping = now
            elif stored is not None:
                self.journal.touch_playlist(day, fetched_at=now)
        if failed:
            self._playlist_backoff.failed(now)
            return
        self._network_ok("playlists")
        self._playlist_backoff.succeeded()
        self._t.pulled_days = days
        self._t.playlists = now + timedelta(seconds=self.config.playlist_poll_seconds)

    def _ensure_audio(
        self, slot: Slot, budget_s: float | None, now: datetime
    ) -> Literal["done", "partial", "failed"]:
        sha = slot.sha256
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
                self._network_ok("audio")
                if complete:
                    backoff.succeeded()
                    return "done"
                return "partial"
            except CorruptDownload as exc:
                log.warning("%s; fetching it again", exc)
            except ServerUnavailable as exc:
                self._network_failed("audio", f"download of {sha[:12]}", exc)
                break
            except ServerRefused as exc:
                self._network_failed("audio", f"download of {sha[:12]}", exc)
                break
        backoff.failed(now)
        return "failed"

    def _wanted_slots(self, now: datetime) -> list[Slot]:
        wanted = [
            s
            for s in self._emergency_slots()
            if s.occurrence not in self._done and self._emergency_active(s.emergency_id, now)
        ]
        wanted += [
            s for s in self._item_slots(now) if s.ends_at > now and s.occurrence not in self._done
        ]
        return wanted

    def _prefetch(self, now: datetime) -> None:
        budget = self.config.download_budget_seconds
        upcoming = self._next_start(now)
        if upcoming is not None:
            # Never hold up the next start for a download of something later.
            budget = min(budget, max((upcoming - now).total_seconds() - 0.1, 0.25))
        deadline = time.monotonic() + budget
        self._t.downloading = False
        for slot in self._wanted_slots(now):
            if self.cache.has(slot.sha256):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._t.downloading = True
                return
            if self._ensure_audio(slot, remaining, now) == "partial":
                self._t.downloading = True
                return

    def _upload(self, now: datetime) -> None:
        if self.dry_run or now < self._t.upload or not self._upload_backoff.ready(now):
            return
        batch = self.journal.pending_uploads(self._batch_size)
        if not batch:
            self._t.upload = now + timedelta(seconds=self.config.upload_interval_seconds)
            return
        try:
            answer = self.client.post_as_run([p.as_run() for p in batch])
        except ServerUnavailable as exc:
            self._network_failed("as-run", "as-run upload", exc)
            self._upload_backoff.failed(now)
            return
        except ServerRefused as exc:
            if exc.status_code in (401, 403, 404, 405):
                # The device or the server is misconfigured, not the events: keep them.
                self._network_failed("as-run", "as-run upload", exc)
                self._upload_backoff.failed(now)
            elif len(batch) == 1:
                reason = f"HTTP {exc.status_code}: {exc.detail}"
                self.journal.mark_rejected(batch[0].event_id, reason)
                log.error("as-run event %s rejected: %s", batch[0].event_id, reason)
            else:
                # One bad event must not hold back the rest: send smaller batches to find it.
                self._batch_size = max(1, len(batch) // 2)
                log.warning("as-run batch refused (%s); retrying in smaller batches", exc)
            return
        self._network_ok("as-run")
        if self._settle(batch, answer):
            self._upload_backoff.succeeded()
        else:
            self._upload_backoff.failed(now)  # keep the unanswered ones; do not hammer
        more = len(batch) == self._batch_size
        self._batch_size = self.config.upload_batch_size
        if more:
            self._t.upload = now
        else:
            self._t.upload = now + timedelta(seconds=self.config.upload_interval_seconds)

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

    def _housekeep(self, now: datetime) -> None:
        if self.dry_run or now < self._t.housekeeping:
            return
        self._t.housekeeping = now + timedelta(seconds=self.config.housekeeping_seconds)
        yesterday, today, tomorrow = self._days(now)
        if self.journal.playlist(today) is None:
            return  # without today's playlist there is no telling what is still needed
        keep: set[str] = set()
        for day in (yesterday, today, tomorrow):
            stored = self.journal.playlist(day)
            if stored is not None:
                # Yesterday's items only while they still run (past midnight).
                items = parse_items(stored.body)
                keep |= {i.sha256 for i in items if day != yesterday or i.end > now}
        keep |= {n.sha256 for n in self._emergencies}
        keep |= {p.sha256 for p in self.journal.playing()}
        if self.current is not None:
            keep.add(self.current.slot.sha256)
        self.cache.prune(keep)
        # Memos only (the journal is the record): forget them so that they never grow.
        self._done.clear()
        self._t.waiting_logged.clear()
        self.journal.drop_playlists_before(yesterday)
        self._playlists_version += 1
        self.journal.prune_events(now - timedelta(days=self.config.journal_retention_days))

    # Sleeping.

    def _next_start(self, now: datetime) -> datetime | None:
        for slot in self._item_slots(now):
            if slot.starts_at > now and slot.occurrence not in self._done:
                return slot.starts_at
        return None

    def _idle_seconds(self, now: datetime) -> float:
        def later(at: datetime, backoff: Backoff) -> datetime:
            return max(at, backoff.next_at) if backoff.next_at else at

        wake = [self._t.emergencies]
        if self._t.pulled_days != self._days(now)[1:]:
            wake.append(later(now, self._playlist_backoff))
        else:
            wake.append(later(self._t.playlists, self._playlist_backoff))
        if not self.dry_run:
            wake.append(later(self._t.upload, self._upload_backoff))
        upcoming = self._next_start(now)
        if upcoming is not None:
            wake.append(upcoming)
        cap = self.config.emergency_poll_seconds
        if self.current is not None:
            wake.append(self.current.part.expected_end)
            wake.append(
                self.current.last_heartbeat + timedelta(seconds=self.config.heartbeat_seconds)
            )
            cap = self.config.tick_seconds
        if self._t.downloading:
            cap = self.config.tick_seconds
        seconds = min((w - now).total_seconds() for w in wake)
        return min(max(seconds, 0.0), cap)
