"""The agent's play/skip rules (app/playout/agent/decide.py), without a server, player or clock.

Each test states a situation (the slot, what the journal holds of it, the emergencies, `now`)
and checks what a listener would hear: whether it plays, and from which second.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.playout.agent.decide import (
    AGENT_STOPPED,
    CANCELLED,
    DONE,
    LIVE_ENDED,
    PLAYER_FAILED,
    WAIT,
    Decision,
    PlayoutSlot,
    PlayPolicy,
    after_exit,
    after_restart,
    audio_to_keep,
    decide,
    emergency_cancelled,
    emergency_slot,
    emergency_slots,
    item_slot,
    item_slots,
    live_ended,
    local_days,
    next_start,
    planned_times,
    start_candidates,
    wanted_slots,
    winner_over,
)
from app.playout.agent.journal import Part
from app.playout.agent.schemas import EmergencyNotice, PlaylistItem

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7: local midnight is 17:00 UTC
T0 = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)  # 08:00 local
SHA_A, SHA_B, SHA_E = "a" * 64, "b" * 64, "e" * 64

TRIM = PlayPolicy(
    late_policy="trim",
    start_grace_seconds=5,
    max_late_seconds=300,
    min_remaining_seconds=3,
    player_retries=2,
)
SKIP = replace(TRIM, late_policy="skip")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def item(
    key: str = "b1",
    *,
    start: datetime = T0,
    seconds: float = 60,
    ends_at: datetime | None = None,
    sha: str = SHA_A,
    yields_to: tuple[str, ...] = (),
) -> PlaylistItem:
    return PlaylistItem(
        event_key=key,
        broadcast_id=1,
        title=key,
        starts_at=start,
        ends_at=ends_at,
        duration_ms=round(seconds * 1000),
        sha256=sha,
        yields_to=yields_to,
    )


def notice(
    id: int = 7, *, created: datetime = T0, seconds: float = 20, expires: datetime | None = None
) -> EmergencyNotice:
    return EmergencyNotice(
        id=id,
        title="flood",
        sha256=SHA_E,
        duration_ms=round(seconds * 1000),
        created_at=created,
        expires_at=expires,
    )


def part(
    slot: PlayoutSlot,
    *,
    started: datetime,
    ended: datetime | None,
    status: str,
    note: str | None = None,
    number: int = 0,
    offset_s: float = 0,
    planned: tuple[datetime, datetime] | None = None,
) -> Part:
    """A part as the journal would hold it after it played from `started` to `ended`."""
    planned_start, planned_end = planned or (slot.starts_at, slot.ends_at)
    return Part(
        event_id=f"ev-{number}",
        occurrence=slot.occurrence,
        part=number,
        broadcast_id=slot.broadcast_id,
        emergency_id=slot.emergency_id,
        sha256=slot.sha256,
        planned_start=planned_start,
        planned_end=planned_end,
        duration_ms=slot.duration_ms,
        offset_ms=round(offset_s * 1000),
        started_at=started,
        ended_at=ended,
        heartbeat_at=None,
        status=status,
        note=note,
        upload="pending",
        reject_reason=None,
    )


def first_start(slot: PlayoutSlot, now: datetime, policy: PlayPolicy = TRIM) -> Decision:
    return decide(slot, [], now, policy, notices=[])


# A late start: whole, trimmed or skipped.


def test_an_item_waits_for_its_start_and_plays_whole_within_the_grace() -> None:
    slot = item_slot(item())
    assert first_start(slot, at(-0.001)) == WAIT
    assert first_start(slot, at(0)) == Decision("play", offset_s=0)
    assert first_start(slot, at(5)) == Decision("play", offset_s=0)  # the grace is inclusive


@pytest.mark.parametrize(
    ("late", "trimmed", "skipped"),
    [
        (5.0, Decision("play", offset_s=0), Decision("play", offset_s=0)),
        (5.5, Decision("play", offset_s=5.5), None),
        (40, Decision("play", offset_s=40), None),
    ],
)
def test_just_past_the_grace_trim_joins_where_the_item_is_and_skip_gives_it_up(
    late: float, trimmed: Decision, skipped: Decision | None
) -> None:
    slot = item_slot(item(seconds=60))
    assert first_start(slot, at(late), TRIM) == trimmed
    decision = first_start(slot, at(late), SKIP)
    if skipped is None:
        assert decision.action == "fail"
        assert decision.note == f"{late:.0f} s late (late_policy skip)"
    else:
        assert decision == skipped


def test_trim_stops_at_max_late_and_at_min_remaining() -> None:
    long = item_slot(item(seconds=600))
    assert first_start(long, at(300)) == Decision("play", offset_s=300)
    assert first_start(long, at(300.5)).note == "300 s late, over max_late_seconds"

    short = item_slot(item(seconds=60))
    assert first_start(short, at(57)) == Decision("play", offset_s=57)  # exactly 3 s left
    too_late = first_start(short, at(57.5))
    assert (too_late.action, too_late.note) == ("fail", "58 s late, too little left to play")


def test_an_item_whose_slot_has_ended_is_skipped_even_when_its_audio_would_fit() -> None:
    # The slot (30 s) is shorter than the audio (60 s): past the slot's end it never plays,
    # though max_late_seconds and min_remaining_seconds would allow a trimmed start.
    slot = item_slot(item(seconds=60, ends_at=at(30)))
    assert first_start(slot, at(29)) == Decision("play", offset_s=29)
    missed = first_start(slot, at(30))
    assert (missed.action, missed.note) == ("fail", "missed: not played in its slot")


def test_an_item_that_played_or_is_playing_never_plays_again() -> None:
    slot = item_slot(item())
    played = part(slot, started=at(0), ended=at(60), status="played")
    assert decide(slot, [played], at(10), TRIM, notices=[]) == DONE
    playing = part(slot, started=at(0), ended=None, status="playing")
    assert decide(slot, [playing], at(10), TRIM, notices=[]) == DONE


# Emergencies: they interrupt, and what they cut short resumes.


def test_an_emergency_interrupts_an_item_but_nothing_interrupts_an_emergency() -> None:
    news, music = item_slot(item("news", start=at(0))), item_slot(item("music", start=at(60)))
    flood = emergency_slot(notice())
    items = [news, music]

    # Nothing playing: the emergency comes first, then the items that are due.
    assert start_candidates(None, [flood], items, at(10)) == [flood, news]
    # An item playing: only the emergency may start (and so stop the item).
    assert start_candidates(news, [flood], items, at(70)) == [flood]
    assert start_candidates(news, [], items, at(70)) == []
    # An emergency playing: nothing else starts, not even another emergency.
    other = emergency_slot(notice(8, created=at(5)))
    assert start_candidates(flood, [flood, other], items, at(70)) == []


def test_a_new_emergency_plays_whole_at_once_unless_it_expired_first() -> None:
    flood = emergency_slot(notice(created=at(0), expires=at(600)))
    assert first_start(flood, at(599)) == Decision("play", offset_s=0)
    expired = first_start(flood, at(600))
    assert (expired.action, expired.note) == ("fail", "the emergency expired before it could play")
    # Its planned times run from its first play, not from when it was created.
    assert planned_times(flood, [], at(42)) == (at(42), at(62))


def test_the_item_an_emergency_cut_short_resumes_where_it_would_be_now() -> None:
    slot = item_slot(item(seconds=60))
    cut = part(
        slot,
        started=at(0),
        ended=at(10),
        status="interrupted",
        note="interrupted by emergency 7",
    )
    # The emergency took 20 s: the item goes on at 30 s, not at 10 s where it stopped.
    resumed = decide(slot, [cut], at(30), TRIM, notices=[])
    assert resumed == Decision("play", offset_s=30)
    assert planned_times(slot, [cut], at(30)) == (at(0), at(60))
    # Too little of it left, or under "skip": it stays cut short.
    assert decide(slot, [cut], at(57.5), TRIM, notices=[]) == DONE
    assert decide(slot, [cut], at(30), SKIP, notices=[]) == DONE


def test_an_interrupted_emergency_resumes_while_active_and_a_cancelled_one_never() -> None:
    active = notice(created=at(0), seconds=20)
    flood = emergency_slot(active)
    stopped = part(
        flood,
        started=at(0),
        ended=at(5),
        status="interrupted",
        note=AGENT_STOPPED,
        planned=(at(0), at(20)),
    )
    assert decide(flood, [stopped], at(8), TRIM, notices=[active]) == Decision("play", offset_s=8)
    # Withdrawn by the server meanwhile: it does not come back.
    assert decide(flood, [stopped], at(8), TRIM, notices=[]) == DONE
    cancelled = replace(stopped, note=CANCELLED)
    assert decide(flood, [cancelled], at(8), TRIM, notices=[active]) == DONE


def test_only_a_fresh_server_answer_cancels_a_playing_emergency() -> None:
    flood = emergency_slot(notice(created=at(0), expires=at(600)))
    assert emergency_cancelled(flood, [], at(10), fresh=True)
    assert not emergency_cancelled(flood, [], at(10), fresh=False)  # offline: play on
    assert not emergency_cancelled(flood, [notice(created=at(0))], at(10), fresh=True)
    # Gone from the list because it expired: it was not cancelled, it plays to its end.
    assert not emergency_cancelled(flood, [], at(600), fresh=True)


# The player: failures retried, exits and restarts recorded.


def test_a_failed_player_is_retried_a_second_later_then_given_up() -> None:
    slot = item_slot(item(seconds=60))
    note = f"{PLAYER_FAILED} with exit code 3"
    one = part(slot, started=at(0), ended=at(0.2), status="failed", note=note)
    assert decide(slot, [one], at(0.5), TRIM, notices=[]) == WAIT
    assert decide(slot, [one], at(1.2), TRIM, notices=[]) == Decision("play", offset_s=1.2)
    # Under "skip" a failure within the grace is retried from the start.
    assert decide(slot, [one], at(1.2), SKIP, notices=[]) == Decision("play", offset_s=0)
    three = [replace(one, part=n, event_id=f"ev-{n}") for n in range(3)]
    assert decide(slot, three, at(5), TRIM, notices=[]) == DONE  # player_retries = 2


def test_the_player_exit_decides_how_the_part_is_recorded() -> None:
    now = at(60)
    assert after_exit(0, now, stopping=False).status == "played"
    assert after_exit(-9, now, stopping=False).note == "player killed by signal 9"
    assert after_exit(3, now, stopping=False).note == "player failed with exit code 3"
    stopped = after_exit(-15, now, stopping=True)
    assert (stopped.status, stopped.note) == ("interrupted", AGENT_STOPPED)


def test_after_a_restart_a_part_seen_near_its_end_counts_as_played() -> None:
    slot = item_slot(item(seconds=60))
    alive_to_59 = replace(
        part(slot, started=at(0), ended=None, status="playing"), heartbeat_at=at(59.2)
    )
    ended = after_restart(alive_to_59)
    assert (ended.status, ended.ended_at) == ("played", at(60))
    alive_to_30 = replace(alive_to_59, heartbeat_at=at(30))
    ended = after_restart(alive_to_30)
    assert (ended.status, ended.ended_at, ended.note) == ("interrupted", at(30), AGENT_STOPPED)


# Local midnight.


def test_the_days_that_matter_turn_at_local_midnight_not_utc() -> None:
    before = datetime(2025, 3, 10, 16, 59, 59, tzinfo=UTC)  # 23:59:59 local
    after = before + timedelta(seconds=1)
    assert local_days(before, ZONE) == (date(2025, 3, 9), date(2025, 3, 10), date(2025, 3, 11))
    assert local_days(after, ZONE) == (date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12))


def test_an_item_across_midnight_plays_once_and_keeps_its_audio_until_it_ends() -> None:
    midnight = datetime(2025, 3, 10, 17, 0, tzinfo=UTC)  # 00:00 local, 11 March

    def late_show() -> PlaylistItem:
        return item("late", start=midnight - timedelta(minutes=3), seconds=600, sha=SHA_A)

    finished = item("early", start=midnight - timedelta(hours=2), seconds=60, sha=SHA_B)
    # The server lists an item that runs past midnight in both days' playlists.
    slots = item_slots([finished, late_show(), late_show()])
    assert [s.occurrence.split("@")[0] for s in slots] == ["early", "late"]

    now = midnight + timedelta(minutes=1)
    yesterday, today, _ = local_days(now, ZONE)
    # Its audio stays in the cache after midnight; yesterday's finished item does not.
    keep = audio_to_keep(
        {yesterday: [finished, late_show()], today: []},
        yesterday=yesterday,
        notices=[],
        playing=[],
        now=now,
    )
    assert keep == {SHA_A}
    # Joined after midnight (a restart at 00:01), it plays on from where it is.
    late_slot = slots[1]
    assert first_start(late_slot, now) == Decision("play", offset_s=240)
    assert wanted_slots([], slots, [], set(), now) == [late_slot]
    assert next_start(slots, set(), now) is None


# Two items overlap on one loudspeaker: the playlist says which wins, the agent follows.


def test_an_item_that_yields_to_another_in_the_playlists_is_given_up_at_its_start() -> None:
    village = item_slot(item("b2", start=at(300), seconds=600, yields_to=("b1",)))
    commune = item_slot(item("b1", start=at(0), seconds=600, sha=SHA_B))
    unrelated = item_slot(item("b3", start=at(900), seconds=60))
    assert village.yields_to == ("b1",) and village.event_key == "b2"
    assert winner_over(village, [commune, village, unrelated]) == commune
    assert winner_over(commune, [commune, village]) is None
    # The winner is not in the playlists (cancelled, or another day's): nothing to yield to.
    assert winner_over(village, [village, unrelated]) is None

    for policy in (TRIM, SKIP):
        decision = decide(village, [], at(300), policy, notices=[], winner=commune)
        assert decision == Decision("fail", note="yields to b1 (b1)")
        # Without a winner it plays as any item would.
        assert decide(village, [], at(300), policy, notices=[]) == Decision("play")
    # Cut short by its winner, it does not come back, even with time left in its slot.
    cut = part(village, started=at(300), ended=at(310), status="interrupted", note="b1")
    assert decide(village, [cut], at(920), TRIM, notices=[], winner=commune) == DONE
    assert decide(village, [cut], at(320), TRIM, notices=[]).action == "play"


def test_a_winner_interrupts_the_item_that_yields_to_it_and_nothing_else() -> None:
    loser = item_slot(item("b2", start=at(0), seconds=600, yields_to=("b1",)))
    winner = item_slot(item("b1", start=at(60), seconds=300, sha=SHA_B))
    other = item_slot(item("b3", start=at(30), seconds=60))
    flood = emergency_slot(notice(created=at(50)))
    items = [loser, other, winner]
    assert start_candidates(loser, [], items, at(59)) == []
    assert start_candidates(loser, [flood], items, at(60)) == [flood, winner]
    # A winner that joined the playlists after the item began: the fresh playlists count.
    began = replace(loser, yields_to=())
    assert start_candidates(began, [], items, at(60)) == [winner]
    # An item that yields to nothing is not interrupted by another item.
    assert start_candidates(other, [], items, at(60)) == []
    assert start_candidates(flood, [], items, at(60)) == []


# Live sessions (issue 24): a stream until the server ends it; emergency priority or normal.


def live_notice(
    id: int = 3, *, priority: str = "emergency", created: datetime = T0
) -> EmergencyNotice:
    return EmergencyNotice(
        kind="live",
        id=id,
        title="Họp khẩn",
        priority=priority,  # type: ignore[arg-type]
        stream_url="http://hub:8001/live-1-abc",
        created_at=created,
    )


def test_an_urgent_live_session_pre_empts_everything_and_a_normal_one_only_the_schedule() -> None:
    news = item_slot(item("news", start=at(0)))
    flood = emergency_slot(notice())
    urgent = emergency_slot(live_notice(priority="emergency"))
    normal = emergency_slot(live_notice(4, priority="normal"))
    assert urgent.is_live and urgent.is_urgent and urgent.stream_url
    assert normal.is_live and not normal.is_urgent and not normal.is_emergency
    # The slots of a poll: emergencies and urgent sessions first, normal sessions after.
    assert [
        s.occurrence for s in emergency_slots([live_notice(4, priority="normal"), notice()])
    ] == [
        "emergency-7",
        "live-4",
    ]
    # An item playing: an urgent session or a normal one interrupts it.
    assert start_candidates(news, [urgent], [news], at(10)) == [urgent]
    assert start_candidates(news, [normal], [news], at(10)) == [normal]
    # A normal session playing: only an emergency (or an urgent session) interrupts it.
    assert start_candidates(normal, [flood, normal], [news], at(10)) == [flood]
    assert start_candidates(normal, [normal], [news], at(10)) == []
    # An emergency or an urgent session playing: nothing else starts.
    assert start_candidates(flood, [flood, normal], [news], at(10)) == []
    assert start_candidates(urgent, [urgent, flood], [news], at(10)) == []
    # A live session yields to nothing in the playlists.
    assert winner_over(normal, [news]) is None


def test_a_live_session_plays_while_listed_resumes_after_an_emergency_and_stops_when_ended() -> (
    None
):
    listed = live_notice(priority="normal")
    normal = emergency_slot(listed)
    assert decide(normal, [], at(1), TRIM, notices=[listed]) == Decision("play")
    assert decide(normal, [], at(1), TRIM, notices=[]) == DONE
    cut = part(normal, started=at(1), ended=at(5), status="interrupted",
               note="interrupted by emergency 7")  # fmt: skip
    assert decide(normal, [cut], at(30), TRIM, notices=[listed]) == Decision("play")
    assert decide(normal, [cut], at(5.5), TRIM, notices=[listed]) == WAIT  # a second's pause
    ended = replace(cut, status="played", note=LIVE_ENDED)
    assert decide(normal, [ended], at(30), TRIM, notices=[listed]) == DONE
    assert live_ended(normal, [], fresh=True) and not live_ended(normal, [], fresh=False)
    assert not live_ended(normal, [listed], fresh=True)
    # Its slot runs from when it first plays; nothing to download or keep for it.
    assert planned_times(normal, [], at(42))[0] == at(42)
    assert wanted_slots([normal], [], [listed], set(), at(1)) == []
    assert (
        audio_to_keep({}, yesterday=date(2025, 3, 9), notices=[listed], playing=[], now=at(1))
        == set()
    )
