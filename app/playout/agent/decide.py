"""What the agent plays, when, and from where: the play/skip rules, with no I/O.

Every function here is given what it needs (the slot, its parts in the journal, the active
emergencies, `now`) and answers; none reads a clock, the network, the cache or the journal,
so each rule can be tested by itself. The loop (`loop.py`) reads and writes; this decides.

The rules, in one place:
- An item plays at its planned start. Up to `start_grace_seconds` late it still plays whole.
- Later than that, it never plays once its slot has ended, nor over `max_late_seconds` late.
  Within those bounds `late_policy` decides: "skip" gives it up; "trim" joins it where it
  would be now (offset = lateness) unless less than `min_remaining_seconds` would be left.
- Two items that overlap: the playlist says which wins (``yields_to``, the server's
  precedence: emergency, then priority, then the commune's programme, then the village's).
  An item that yields to another one in the playlists is given up at its start ("yields
  to ..."), and does not resume if it was playing when its winner came in; a winner whose
  start has come interrupts a playing item that yields to it.
- An emergency plays whole, at once, interrupting any item; one that expired before it
  could start is failed. It is stopped only when a fresh server answer no longer lists it
  (an expiry during playback does not cut it off).
- A live session (a notice of kind "live") plays its stream from when it appears until a
  fresh server answer no longer lists it. One of ``emergency`` priority is treated as an
  emergency (it interrupts anything, nothing interrupts it); a ``normal`` one interrupts
  playlist items but waits for, and is interrupted by, emergencies, and takes up again
  after them while it lasts.
- An occurrence cut short (an emergency, a restart, the player's failure) resumes where it
  would be now, counted from its first part's planned start, while its slot lasts and at
  least `min_remaining_seconds` remain; under "skip" it stays cut short, except that a
  player that failed within the start grace is retried from the beginning.
- A player's failure is retried `player_retries` times, at most once a second; an
  occurrence that played, was failed by a rule, or was cancelled is done.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from app.playout.agent.config import AgentConfig
from app.playout.agent.journal import Part
from app.playout.agent.schemas import EmergencyNotice, PlaylistItem

# Notes on journal events. Player trouble ("player ...") is retried `player_retries` times.
PLAYER_FAILED = "player failed"
PLAYER_KILLED = "player killed"
CANCELLED = "emergency cancelled"
LIVE_ENDED = "live session ended"
LIVE_SPAN = timedelta(hours=12)  # a live session's slot: it ends when the server says so
AGENT_STOPPED = "agent stopped during playback"


@dataclass(frozen=True)
class PlayoutSlot:
    """Something to air: a playlist item at its planned start, or an emergency."""

    occurrence: str
    title: str
    broadcast_id: int | None
    emergency_id: int | None
    sha256: str | None  # None for a relayed stream
    audio_url: str | None
    starts_at: datetime
    ends_at: datetime
    duration_ms: int
    expires_at: datetime | None = None
    event_key: str | None = None
    yields_to: tuple[str, ...] = ()
    stream_url: str | None = None  # a relay: the hub's mount
    fallback_sha256: str | None = None  # what fills a relay's dropout
    fallback_audio_url: str | None = None
    fallback_ms: int = 0
    live_id: int | None = None
    live_urgent: bool = False  # a live session of emergency priority

    @property
    def is_live(self) -> bool:
        """Whether this is a live session (a stream until the server ends it)."""
        return self.live_id is not None

    @property
    def is_urgent(self) -> bool:
        """Whether nothing interrupts this: an emergency, or a live session of emergency
        priority."""
        return self.is_emergency or self.live_urgent

    @property
    def is_stream(self) -> bool:
        """Whether this relays a stream (no file to cache)."""
        return self.stream_url is not None

    @property
    def fallback_slot(self) -> PlayoutSlot | None:
        """A relay's fallback as a slot whose audio the cache must have."""
        if self.fallback_sha256 is None:
            return None
        return replace(
            self,
            sha256=self.fallback_sha256,
            audio_url=self.fallback_audio_url,
            stream_url=None,
            duration_ms=self.fallback_ms,
        )

    @property
    def is_emergency(self) -> bool:
        """Whether this is an emergency announcement."""
        return self.emergency_id is not None

    @property
    def duration_s(self) -> float:
        """The audio's length in seconds."""
        return self.duration_ms / 1000


def item_slot(item: PlaylistItem) -> PlayoutSlot:
    """The slot of a playlist item; its identity is the event key and the planned start."""
    starts_at = item.starts_at.astimezone(UTC)
    return PlayoutSlot(
        occurrence=f"{item.event_key}@{starts_at.isoformat()}",
        title=item.title,
        broadcast_id=item.broadcast_id,
        emergency_id=None,
        sha256=item.sha256,
        audio_url=item.audio_url,
        starts_at=starts_at,
        ends_at=item.end.astimezone(UTC),
        duration_ms=item.duration_ms,
        event_key=item.event_key,
        yields_to=item.yields_to,
        stream_url=item.stream_url if item.kind == "stream" else None,
        fallback_sha256=item.fallback_sha256,
        fallback_audio_url=item.fallback_audio_url,
        fallback_ms=item.fallback_duration_ms or 0,
    )


def emergency_slot(notice: EmergencyNotice) -> PlayoutSlot:
    """The slot of an emergency (or a live session): it starts when the agent first plays it."""
    created = notice.created_at.astimezone(UTC)
    if notice.is_live:
        return PlayoutSlot(
            occurrence=f"live-{notice.id}",
            title=notice.title,
            broadcast_id=None,
            emergency_id=None,
            sha256=None,
            audio_url=None,
            starts_at=created,
            ends_at=created + LIVE_SPAN,
            duration_ms=int(LIVE_SPAN.total_seconds() * 1000),
            stream_url=notice.stream_url,
            live_id=notice.id,
            live_urgent=notice.priority == "emergency",
        )
    return PlayoutSlot(
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


def item_slots(items: Iterable[PlaylistItem]) -> list[PlayoutSlot]:
    """The slots of playlist items, in start order; an item in two days' playlists once."""
    slots: dict[str, PlayoutSlot] = {}
    for item in items:
        slot = item_slot(item)
        slots[slot.occurrence] = slot
    return sorted(slots.values(), key=lambda s: (s.starts_at, s.occurrence))


def emergency_slots(notices: Iterable[EmergencyNotice]) -> list[PlayoutSlot]:
    """The slots of emergencies and urgent live sessions, oldest first (the order in which
    they play); then the live sessions of normal priority."""
    slots = [emergency_slot(n) for n in sorted(notices, key=lambda n: n.created_at)]
    return [s for s in slots if s.is_urgent] + [s for s in slots if not s.is_urgent]


def local_days(now: datetime, zone: ZoneInfo, ahead: int = 1) -> tuple[date, ...]:
    """Yesterday, today and the `ahead` days after it in the station's zone: the playlists
    that matter now (yesterday's for an item that runs past midnight; the coming days' so
    that a cut from the server for days loses nothing of them)."""
    today = now.astimezone(zone).date()
    return tuple(today + timedelta(days=n) for n in range(-1, ahead + 1))


@dataclass(frozen=True)
class PlayPolicy:
    """The configuration's rules for late and failed starts (see AgentConfig)."""

    late_policy: Literal["skip", "trim"]
    start_grace_seconds: float
    max_late_seconds: float
    min_remaining_seconds: float
    player_retries: int

    @classmethod
    def from_config(cls, config: AgentConfig) -> PlayPolicy:
        """The policy an agent's configuration sets."""
        return cls(
            late_policy=config.late_policy,
            start_grace_seconds=config.start_grace_seconds,
            max_late_seconds=config.max_late_seconds,
            min_remaining_seconds=config.min_remaining_seconds,
            player_retries=config.player_retries,
        )


@dataclass(frozen=True)
class Decision:
    """What to do about a slot now: wait, play from `offset_s`, fail with a note, or done."""

    action: Literal["wait", "play", "fail", "done"]
    offset_s: float = 0.0
    note: str = ""


WAIT = Decision("wait")
DONE = Decision("done")


def emergency_active(
    notices: Sequence[EmergencyNotice], emergency_id: int | None, now: datetime
) -> bool:
    """Whether the emergency is among the active ones and has not expired."""
    for notice in notices:
        if notice.kind == "emergency" and notice.id == emergency_id:
            return notice.expires_at is None or now < notice.expires_at
    return False


def emergency_cancelled(
    slot: PlayoutSlot, notices: Sequence[EmergencyNotice], now: datetime, *, fresh: bool
) -> bool:
    """Whether a playing emergency was withdrawn and must stop now.

    Only a fresh answer from the server can cancel (a stale list says nothing); an
    emergency that expires while it plays is not cut off.
    """
    if not fresh:
        return False
    if any(n.kind == "emergency" and n.id == slot.emergency_id for n in notices):
        return False
    return slot.expires_at is None or now < slot.expires_at


def live_active(notices: Sequence[EmergencyNotice], live_id: int | None) -> bool:
    """Whether the server still lists the live session."""
    return any(n.is_live and n.id == live_id for n in notices)


def live_ended(slot: PlayoutSlot, notices: Sequence[EmergencyNotice], *, fresh: bool) -> bool:
    """Whether a playing live session was ended (only a fresh answer says so)."""
    return fresh and slot.is_live and not live_active(notices, slot.live_id)


def winner_over(slot: PlayoutSlot, items: Sequence[PlayoutSlot]) -> PlayoutSlot | None:
    """The item of the playlists that `slot` yields to, if any (the server's precedence)."""
    if not slot.yields_to or slot.is_emergency or slot.is_live:
        return None
    return next((other for other in items if other.event_key in slot.yields_to), None)


def decide(
    slot: PlayoutSlot,
    parts: Sequence[Part],
    now: datetime,
    policy: PlayPolicy,
    *,
    notices: Sequence[EmergencyNotice],
    winner: PlayoutSlot | None = None,
) -> Decision:
    """Whether and from where `slot` plays now, given its parts so far (the module's rules);
    `winner` is the item it yields to (winner_over), if any."""
    if winner is not None:
        if parts:
            return DONE  # cut short by its winner: it stays so
        return Decision("fail", note=f"yields to {winner.event_key} ({winner.title})")
    if slot.is_live:
        return _live(slot, parts, now, notices)
    if not parts:
        return _first_start(slot, now, policy)
    if any(p.status == "played" for p in parts):
        return DONE
    last = parts[-1]
    if last.status == "playing" or last.note == CANCELLED:
        return DONE
    player_failed = last.status == "failed" and (last.note or "").startswith(PLAYER_FAILED)
    if last.status == "failed" and not player_failed:
        return DONE
    if (last.note or "").startswith("player "):
        troubles = sum(1 for p in parts if (p.note or "").startswith("player "))
        if troubles > policy.player_retries:
            return DONE
        if last.ended_at and (now - last.ended_at).total_seconds() < 1.0:
            return WAIT
    if slot.is_emergency and not emergency_active(notices, slot.emergency_id, now):
        return DONE
    first = parts[0]
    offset = max((now - first.planned_start).total_seconds(), 0.0)
    if slot.is_stream:
        # A relay is live: after an emergency or a restart it carries on with what is on
        # air now, whatever the late policy, while its window lasts.
        if now >= first.planned_end or first.duration_ms / 1000 - offset < 1.0:
            return DONE
        return Decision("play", offset_s=offset)
    if policy.late_policy == "skip" and not (
        player_failed and offset <= policy.start_grace_seconds
    ):
        return DONE  # skip: what was cut short stays cut short
    if policy.late_policy == "skip":
        offset = 0.0
    remaining = first.duration_ms / 1000 - offset
    if now >= first.planned_end or remaining < policy.min_remaining_seconds:
        return DONE
    return Decision("play", offset_s=offset)


def _live(
    slot: PlayoutSlot, parts: Sequence[Part], now: datetime, notices: Sequence[EmergencyNotice]
) -> Decision:
    """A live session plays while the server lists it; after an interruption (an
    emergency, a restart, the player) it takes up again with what is on air now."""
    if not live_active(notices, slot.live_id) or now >= slot.ends_at:
        return DONE
    if parts and (parts[-1].status == "playing" or parts[-1].note == LIVE_ENDED):
        return DONE
    if parts and parts[-1].status == "played":
        return DONE
    if parts and parts[-1].ended_at and (now - parts[-1].ended_at).total_seconds() < 1.0:
        return WAIT
    return Decision("play")


def _first_start(slot: PlayoutSlot, now: datetime, policy: PlayPolicy) -> Decision:
    if slot.is_emergency:
        if slot.expires_at is not None and now >= slot.expires_at:
            return Decision("fail", note="the emergency expired before it could play")
        return Decision("play")
    late = (now - slot.starts_at).total_seconds()
    if late < 0:
        return WAIT
    if late <= policy.start_grace_seconds:
        return Decision("play")
    if now >= slot.ends_at:
        return Decision("fail", note="missed: not played in its slot")
    if slot.is_stream:  # live: join it where it is now, whatever the late policy
        return Decision("play", offset_s=late)
    if late > policy.max_late_seconds:
        return Decision("fail", note=f"{late:.0f} s late, over max_late_seconds")
    if policy.late_policy == "skip":
        return Decision("fail", note=f"{late:.0f} s late (late_policy skip)")
    if slot.duration_s - late < policy.min_remaining_seconds:
        return Decision("fail", note=f"{late:.0f} s late, too little left to play")
    return Decision("play", offset_s=late)


def start_candidates(
    current: PlayoutSlot | None,
    emergencies: Sequence[PlayoutSlot],
    items: Sequence[PlayoutSlot],
    now: datetime,
) -> list[PlayoutSlot]:
    """What may start now, in the order to try it (the first that `decide` plays wins).

    Emergencies first, oldest first: one may interrupt a playing item, but nothing
    interrupts an emergency (nor a live session of emergency priority). A live session of
    normal priority: after the emergencies; while it plays only they interrupt it. Items
    whose start has come: while nothing plays, or, while an item plays, those it yields to
    (its winners interrupt it).
    """
    if current is not None and current.is_urgent:
        return []
    if current is not None and current.is_live:
        return [s for s in emergencies if s.is_urgent]
    due = [s for s in items if s.starts_at <= now]
    if current is not None:
        # What it yields to as the playlists say now (a winner may have joined since it began).
        yields_to = next(
            (s.yields_to for s in items if s.occurrence == current.occurrence), current.yields_to
        )
        return [*emergencies, *(s for s in due if s.event_key in yields_to)]
    return [*emergencies, *due]


def planned_times(
    slot: PlayoutSlot, parts: Sequence[Part], now: datetime
) -> tuple[datetime, datetime]:
    """The planned start and end a new part of `slot` records.

    A resumed occurrence keeps its first part's; an emergency is planned from its first
    play (its own `starts_at` is only when it was created).
    """
    if slot.is_live:
        return now, slot.ends_at
    if parts:
        return parts[0].planned_start, parts[0].planned_end
    if slot.is_emergency:
        return now, now + timedelta(milliseconds=slot.duration_ms)
    return slot.starts_at, slot.ends_at


@dataclass(frozen=True)
class Ending:
    """How a part of playback ends in the journal."""

    status: Literal["played", "interrupted", "failed"]
    ended_at: datetime
    note: str | None = None


def after_exit(code: int, now: datetime, *, stopping: bool) -> Ending:
    """How a part ends when its player exits with `code` (negative: killed by a signal)."""
    if code == 0:
        return Ending("played", now)
    if stopping:
        # systemd signals the whole control group: the player went down with us.
        return Ending("interrupted", now, AGENT_STOPPED)
    if code < 0:
        return Ending("interrupted", now, f"{PLAYER_KILLED} by signal {-code}")
    return Ending("failed", now, f"{PLAYER_FAILED} with exit code {code}")


def after_restart(part: Part) -> Ending:
    """How a part the journal still holds as playing after a restart ends.

    Last seen alive within a second of the file's end, it played; else it was
    interrupted when it was last seen.
    """
    last_alive = part.heartbeat_at or part.started_at
    if last_alive >= part.expected_end - timedelta(seconds=1):
        return Ending("played", part.expected_end)
    return Ending("interrupted", last_alive, AGENT_STOPPED)


def overran(part: Part, now: datetime, grace_s: float) -> bool:
    """Whether a player still running at `now` has overrun its file by more than the grace."""
    return now >= part.expected_end + timedelta(seconds=grace_s)


def wanted_slots(
    emergencies: Sequence[PlayoutSlot],
    items: Sequence[PlayoutSlot],
    notices: Sequence[EmergencyNotice],
    done: Container[str],
    now: datetime,
) -> list[PlayoutSlot]:
    """What may still play, the active emergencies first: the audio to have in the cache."""
    wanted = [
        s
        for s in emergencies
        if s.is_emergency
        and s.occurrence not in done
        and emergency_active(notices, s.emergency_id, now)
    ]
    for s in items:
        if s.ends_at <= now or s.occurrence in done:
            continue
        if s.is_stream:  # nothing to download but the fallback that fills its dropouts
            if (fill := s.fallback_slot) is not None:
                wanted.append(fill)
        else:
            wanted.append(s)
    return wanted


def next_start(
    items: Sequence[PlayoutSlot], done: Container[str], now: datetime
) -> datetime | None:
    """When the next item that is not done starts after `now`, if any."""
    for slot in items:
        if slot.starts_at > now and slot.occurrence not in done:
            return slot.starts_at
    return None


def audio_to_keep(
    playlists: Mapping[date, Sequence[PlaylistItem]],
    *,
    yesterday: date,
    notices: Iterable[EmergencyNotice],
    playing: Iterable[str],
    now: datetime,
) -> set[str]:
    """The sha256 of every file the cache must keep: what may still play, or is playing.

    Yesterday's items only while they still run (past midnight).
    """
    keep: set[str] = set()
    for day, items in playlists.items():
        for i in items:
            if day != yesterday or i.end > now:
                keep |= {sha for sha in (i.sha256, i.fallback_sha256) if sha is not None}
    keep |= {n.sha256 for n in notices if n.sha256 is not None}
    keep |= set(playing)
    return keep
