"""The agent's loop: pull playlists, cache audio, play on time, report as-run, obey emergencies.

One thread does everything, a step at a time; nothing in a step blocks for long (the player
is a subprocess, downloads stop after a time budget and resume by Range next step, network
calls have short timeouts), so an emergency poll is never held up by a big download.

The loop ties two halves together and keeps the journal in step with the player: the rules
of what plays when live in `decide.py` (no I/O), the traffic with the server in `sync.py`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.playout.agent.cache import AudioCache
from app.playout.agent.client import PlayoutClient
from app.playout.agent.config import DEFAULT_TIMEZONE, AgentConfig
from app.playout.agent.decide import (
    AGENT_STOPPED,
    CANCELLED,
    DONE,
    LIVE_ENDED,
    PLAYER_FAILED,
    Decision,
    Ending,
    PlayoutSlot,
    PlayPolicy,
    after_exit,
    after_restart,
    audio_to_keep,
    decide,
    emergency_active,
    emergency_cancelled,
    emergency_slots,
    item_slots,
    live_ended,
    local_days,
    next_start,
    overran,
    planned_times,
    start_candidates,
    wanted_slots,
    winner_over,
)
from app.playout.agent.journal import STREAM, Journal, Part
from app.playout.agent.player import Playback, Player, PlayerError
from app.playout.agent.push import Push
from app.playout.agent.relay import RelayPlayback, mount_on_air, with_token
from app.playout.agent.schemas import PlaylistItem, parse_items
from app.playout.agent.sync import ServerSync

log = logging.getLogger("loaxa.agent")

Clock = Callable[[], datetime]


def _relayed(playback: Playback) -> tuple[int, int, int] | None:
    """What a relay part heard (relayed ms, dropouts, dropout ms); None for a file."""
    if not isinstance(playback, RelayPlayback):
        return None
    report = playback.report()
    return report.relayed_ms, report.dropout_count, report.dropout_ms


def utc_now() -> datetime:
    """The real time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass
class _Current:
    slot: PlayoutSlot
    part: Part
    playback: Playback
    last_heartbeat: datetime


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
        self.policy = PlayPolicy.from_config(config)
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
        self._stop_requested = False
        self._recovered = False
        # Memos only (the journal is the record), forgotten at each housekeeping: the
        # occurrences decided for good, and those whose audio was missing when due.
        self._done: set[str] = set()
        self._waiting_logged: set[str] = set()
        self._slots_key: tuple[object, ...] | None = None
        self._playlists_version = 0
        self._zone = self._load_zone()
        self._slots: list[PlayoutSlot] = []
        now = self.now()
        self._next_housekeeping = now + timedelta(seconds=config.housekeeping_seconds)
        self.sync = ServerSync(
            config, client=self.client, journal=self.journal, cache=self.cache, now=now, rng=rng
        )
        self.push: Push | None = None
        self._push_client: PlayoutClient | None = None
        if config.push and not dry_run and client is None:
            self.push = self._make_push()

    def _make_push(self) -> Push:
        asker = PlayoutClient(
            server_url=self.config.server_url,
            token=self.config.token(),
            cache_dir=self.config.cache_dir,
            connect_timeout=self.config.connect_timeout_seconds,
            read_timeout=self.config.read_timeout_seconds,
        )
        self._push_client = asker
        push = Push(
            lambda refresh: asker.push_info(refresh=refresh),
            self.config.token,
            retry_base=self.config.push_retry_base_seconds,
            retry_max=self.config.push_retry_max_seconds,
        )
        self.client.push_state = lambda: push.state
        return push

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

    def _days(self, now: datetime) -> tuple[date, ...]:
        return local_days(now, self._zone, self.config.prefetch_days)

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
                if self.push is not None:
                    if self.push.wait(piece):
                        break  # a push message: act on it now
                else:
                    self._sleep(piece)
                delay -= piece

    def step(self) -> float:
        """Do what is due now; the seconds until another step is useful."""
        now = self.now()
        if not self._recovered:
            self._recover(now)
        self._pushed(now)
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
            now = self.now()
            self._stop_current(now, Ending("interrupted", now, AGENT_STOPPED))
        if self.push is not None:
            self.push.stop()
        if self._push_client is not None:
            self._push_client.close()
        self.client.close()
        self.journal.close()

    # Recovery after a restart.

    def _recover(self, now: datetime) -> None:
        self._recovered = True
        for part in self.journal.playing():
            ending = after_restart(part)
            self.journal.finish(
                part.event_id, status=ending.status, ended_at=ending.ended_at, note=ending.note
            )
            if ending.status == "played":
                log.info("%s had finished before the restart", part.occurrence)
            else:
                log.warning(
                    "%s was playing when the agent stopped (last seen %s): interrupted",
                    part.occurrence,
                    ending.ended_at.isoformat(),
                )

    # Playback.

    def _watch(self, now: datetime) -> None:
        cur = self.current
        if cur is None:
            return
        code = cur.playback.poll()
        if code is None:
            if cur.slot.is_emergency and emergency_cancelled(
                cur.slot, self.sync.emergencies, now, fresh=self.sync.emergencies_fresh
            ):
                log.warning("emergency %s was cancelled: stopping it", cur.slot.emergency_id)
                self._stop_current(now, Ending("interrupted", now, CANCELLED))
            elif live_ended(cur.slot, self.sync.emergencies, fresh=self.sync.emergencies_fresh):
                log.info("live session %s ended: back to the schedule", cur.slot.live_id)
                self._stop_current(now, Ending("played", now, LIVE_ENDED))
            elif overran(cur.part, now, self.config.overrun_grace_seconds):
                log.warning("the player overran %s; stopping it", cur.slot.occurrence)
                # The audio itself ended on time: report that, not the hung player's time.
                ending = Ending("played", cur.part.expected_end, "player overran the file; stopped")
                self._stop_current(now, ending)
            elif (now - cur.last_heartbeat).total_seconds() >= self.config.heartbeat_seconds:
                self.journal.heartbeat(cur.part.event_id, now)
                cur.last_heartbeat = now
            return
        self.current = None
        ending = after_exit(code, now, stopping=self._stop_requested)
        self.journal.finish(
            cur.part.event_id,
            status=ending.status,
            ended_at=ending.ended_at,
            note=ending.note,
            relayed=_relayed(cur.playback),
        )
        if ending.status == "played":
            log.info("played %s", cur.slot.occurrence)
        elif ending.note != AGENT_STOPPED:
            log.error("%s: %s", cur.slot.occurrence, ending.note)
        self.sync.upload_soon(now)

    def _stop_current(self, now: datetime, ending: Ending) -> None:
        cur = self.current
        assert cur is not None
        cur.playback.stop()
        self.current = None
        self.journal.finish(
            cur.part.event_id,
            status=ending.status,
            ended_at=ending.ended_at,
            note=ending.note,
            relayed=_relayed(cur.playback),
        )
        log.info("stopped %s (%s): %s", cur.slot.occurrence, ending.status, ending.note)
        self.sync.upload_soon(now)

    def _start_due(self, now: datetime) -> None:
        current = None if self.current is None else self.current.slot
        emergencies = emergency_slots(self.sync.emergencies)
        items = self._item_slots(now)
        for slot in start_candidates(current, emergencies, items, now):
            decision = self._evaluate(slot, now)
            if decision.action != "play":
                continue
            if slot.sha256 is not None and not self.cache.has(slot.sha256):
                if slot.is_emergency:
                    continue  # being downloaded by the emergency poll
                if slot.occurrence not in self._waiting_logged:
                    self._waiting_logged.add(slot.occurrence)
                    log.warning("%s is due but its audio is not cached yet", slot.occurrence)
                continue
            if self.current is not None:  # an item, interrupted by an emergency or its winner
                by = (
                    f"emergency {slot.emergency_id}"
                    if slot.is_emergency
                    else f"live session {slot.live_id}"
                    if slot.is_live
                    else slot.event_key
                )
                self._stop_current(now, Ending("interrupted", now, f"interrupted by {by}"))
            self._play(slot, decision.offset_s, now)
            return

    def _evaluate(self, slot: PlayoutSlot, now: datetime) -> Decision:
        """Decide about `slot`; a failure is recorded as a failed part, and then it is done."""
        if slot.occurrence in self._done:
            return DONE
        parts = self.journal.parts(slot.occurrence)
        decision = decide(
            slot,
            parts,
            now,
            self.policy,
            notices=self.sync.emergencies,
            winner=winner_over(slot, self._item_slots(now)),
        )
        if decision.action == "fail":
            note = decision.note
            if slot.sha256 is not None and not self.cache.has(slot.sha256):
                note = f"audio not available; {note}"
            at = slot.starts_at
            self.journal.add_part(
                occurrence=slot.occurrence,
                broadcast_id=slot.broadcast_id,
                emergency_id=slot.emergency_id,
                sha256=slot.sha256 or STREAM,
                planned_start=slot.starts_at,
                planned_end=slot.ends_at,
                duration_ms=slot.duration_ms,
                offset_ms=0,
                started_at=at,
                ended_at=at,
                status="failed",
                note=note,
            )
            log.warning("%s not played: %s", slot.occurrence, note)
            self.sync.upload_soon(now)
            decision = DONE
        if decision.action == "done":
            self._done.add(slot.occurrence)
        return decision

    def _play(self, slot: PlayoutSlot, offset_s: float, now: datetime) -> None:
        planned_start, planned_end = planned_times(slot, self.journal.parts(slot.occurrence), now)
        # Written (and fsynced) before the player starts: a crash from here on is seen
        # by the next agent as "this was playing".
        part = self.journal.add_part(
            occurrence=slot.occurrence,
            broadcast_id=slot.broadcast_id,
            emergency_id=slot.emergency_id,
            sha256=slot.sha256 or STREAM,
            planned_start=planned_start,
            planned_end=planned_end,
            duration_ms=slot.duration_ms,
            offset_ms=round(offset_s * 1000),
            started_at=now,
        )
        try:
            playback = self._start_player(slot, offset_s, planned_end)
        except PlayerError as exc:
            note = f"{PLAYER_FAILED}: {exc}"
            self.journal.finish(part.event_id, status="failed", ended_at=now, note=note)
            log.error("%s: %s", slot.occurrence, note)
            return
        self.current = _Current(slot=slot, part=part, playback=playback, last_heartbeat=now)
        what = f"emergency {slot.emergency_id}" if slot.is_emergency else slot.occurrence
        if slot.is_live:
            what = f"live session {slot.live_id}"
        log.info("playing %s %r from %.1f s (part %d)", what, slot.title, offset_s, part.part)

    def _start_player(self, slot: PlayoutSlot, offset_s: float, ends_at: datetime) -> Playback:
        if slot.stream_url is None:
            assert slot.sha256 is not None
            path = self.cache.path(slot.sha256)
            return self.player.start(path, offset_s=offset_s, duration_s=slot.duration_s)
        fallback = None
        if slot.fallback_sha256 is not None and self.cache.has(slot.fallback_sha256):
            fallback = self.cache.path(slot.fallback_sha256)
        stream_url = slot.stream_url
        return RelayPlayback(
            self.player,
            with_token(stream_url, self.config.token()),
            ends_at=ends_at,
            clock=self.now,
            fallback=fallback,
            fallback_s=slot.fallback_ms / 1000,
            backoff_base_s=self.config.relay_retry_base_seconds,
            backoff_max_s=self.config.relay_retry_max_seconds,
            on_air=lambda: mount_on_air(stream_url),
        )

    # What there is to play.

    def _item_slots(self, now: datetime) -> list[PlayoutSlot]:
        days = self._days(now)
        key = (days, self._playlists_version)
        if key != self._slots_key:
            items: list[PlaylistItem] = []
            for day in days:
                playlist = self.journal.playlist(day)
                if playlist is not None:
                    items += parse_items(playlist.body)
            self._slots = item_slots(items)
            self._slots_key = key
        return self._slots

    # The server.

    def _pushed(self, now: datetime) -> None:
        """Start push once; follow its state; poll at once what a message says changed."""
        if self.push is None:
            return
        self.push.start()
        self.sync.use_push(self.push.connected, now)
        kinds = self.push.take()
        if kinds:
            log.info("push: %s changed", ", ".join(sorted(kinds)))
            self.sync.pushed(set(kinds), now)

    def _poll_emergencies(self, now: datetime) -> None:
        if not self.sync.poll_emergencies(now):
            return
        for slot in emergency_slots(self.sync.emergencies):
            if (
                slot.is_emergency
                and slot.occurrence not in self._done
                and emergency_active(self.sync.emergencies, slot.emergency_id, now)
                and not self.journal.parts(slot.occurrence)
            ):
                self.sync.ensure_audio(slot, None, now)  # all of it, now: it plays at once

    def _pull_playlists(self, now: datetime) -> None:
        pulled = self.sync.pull_playlists(now, self._days(now)[1:])
        if pulled.playlists:
            self._playlists_version += 1
            self._next_housekeeping = now
        if pulled.zone:
            self._zone = self._load_zone()

    def _prefetch(self, now: datetime) -> None:
        budget = self.config.download_budget_seconds
        upcoming = next_start(self._item_slots(now), self._done, now)
        if upcoming is not None:
            # Never hold up the next start for a download of something later.
            budget = min(budget, max((upcoming - now).total_seconds() - 0.1, 0.25))
        wanted = wanted_slots(
            emergency_slots(self.sync.emergencies),
            self._item_slots(now),
            self.sync.emergencies,
            self._done,
            now,
        )
        self.sync.prefetch(wanted, budget, now)

    def _upload(self, now: datetime) -> None:
        if not self.dry_run:  # a dry run's events are pretence: the server must not count them
            self.sync.upload(now)

    def _housekeep(self, now: datetime) -> None:
        if self.dry_run or now < self._next_housekeeping:
            return
        self._next_housekeeping = now + timedelta(seconds=self.config.housekeeping_seconds)
        days = self._days(now)
        yesterday, today = days[0], days[1]
        if self.journal.playlist(today) is None:
            return  # without today's playlist there is no telling what is still needed
        playlists: dict[date, list[PlaylistItem]] = {}
        for day in days:
            stored = self.journal.playlist(day)
            if stored is not None:
                playlists[day] = parse_items(stored.body)
        playing = [p.sha256 for p in self.journal.playing() if not p.is_stream]
        if self.current is not None:
            slot = self.current.slot
            playing += [sha for sha in (slot.sha256, slot.fallback_sha256) if sha is not None]
        keep = audio_to_keep(
            playlists,
            yesterday=yesterday,
            notices=self.sync.emergencies,
            playing=playing,
            now=now,
        )
        self.cache.prune(keep)
        self._done.clear()
        self._waiting_logged.clear()
        self.journal.drop_playlists_before(yesterday)
        self._playlists_version += 1
        self.journal.prune_events(now - timedelta(days=self.config.journal_retention_days))

    # Sleeping.

    def _idle_seconds(self, now: datetime) -> float:
        wake = self.sync.wake_times(now, self._days(now)[1:], uploads=not self.dry_run)
        upcoming = next_start(self._item_slots(now), self._done, now)
        if upcoming is not None:
            wake.append(upcoming)
        cap = self.config.emergency_poll_seconds
        if self.current is not None:
            wake.append(self.current.part.expected_end)
            wake.append(
                self.current.last_heartbeat + timedelta(seconds=self.config.heartbeat_seconds)
            )
            cap = self.config.tick_seconds
        if self.sync.downloading:
            cap = self.config.tick_seconds
        seconds = min((w - now).total_seconds() for w in wake)
        return min(max(seconds, 0.0), cap)
