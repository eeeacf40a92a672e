"""The playout agent against a real HTTP server on 127.0.0.1 (a fake of the playout API).

The agent's client, cache, journal and loop are the real code; the player is a real process
(ffmpeg decoding in real time to a null output). Tests that need whole days or a midnight use
a clock the test controls: either a simulated one that the agent's sleep advances (with the
dry-run player, which takes a file's time on that clock), or the real clock shifted to just
before a local midnight (with the real player).
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app import __version__
from app.playout.agent import (
    Agent,
    AgentConfig,
    ConfigError,
    DryRunPlayer,
    JournalLocked,
    SubprocessPlayer,
    load_config,
)
from app.playout.agent.decide import AGENT_STOPPED
from app.playout.agent.journal import Part
from tests.playout.agent_fixtures import NULL_PLAYER, TIMEZONE, TOKEN, FakeServer, make_tone

ZONE = ZoneInfo(TIMEZONE)
REPO = Path(__file__).resolve().parents[2]


# Fixtures and helpers.


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Short MP3 tones, each with its own content (and so its own sha256)."""
    folder = tmp_path_factory.mktemp("tones")
    spec = {
        "one": (1, 440),
        "one_b": (1, 550),
        "one_c": (1, 660),
        "two": (2, 330),
        "four": (4, 220),
        "ten": (10, 247),
    }
    return {
        name: make_tone(folder / f"{name}.mp3", seconds=seconds, frequency=freq)
        for name, (seconds, freq) in spec.items()
    }


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    """Agents made by a test; closed (players stopped) at the end."""
    made: list[Agent] = []
    yield made
    for agent in made:
        agent.close()


def make_config(tmp_path: Path, server: FakeServer, **overrides: Any) -> AgentConfig:
    """A config with quick timings for tests."""
    values: dict[str, Any] = {
        "server_url": server.base_url,
        "device_token": TOKEN,
        "cache_dir": tmp_path / "cache",
        "journal": tmp_path / "journal.sqlite",
        "player_command": NULL_PLAYER,
        "late_policy": "trim",
        "start_grace_seconds": 0.5,
        "max_late_seconds": 60,
        "min_remaining_seconds": 0.3,
        "overrun_grace_seconds": 5,
        "playlist_poll_seconds": 0.5,
        "emergency_poll_seconds": 0.3,
        "upload_interval_seconds": 0.3,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1,
        "connect_timeout_seconds": 1,
        "read_timeout_seconds": 3,
        "heartbeat_seconds": 0.2,
        "tick_seconds": 0.05,
        "housekeeping_seconds": 600,
    }
    values.update(overrides)
    return AgentConfig.model_validate(values)


def new_agent(agents: list[Agent], config: AgentConfig, **kwargs: Any) -> Agent:
    kwargs.setdefault("player", SubprocessPlayer(config.player_command))
    agent = Agent(config, **kwargs)
    agents.append(agent)
    return agent


def publish(server: FakeServer, items: list[dict[str, Any]]) -> None:
    """Replace the playlists with these items, each in the playlist of its local day."""
    days: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        day = datetime.fromisoformat(item["starts_at"]).astimezone(ZONE).date().isoformat()
        days.setdefault(day, []).append(item)
    with server.lock:
        server.playlists.clear()
        server.playlists.update(days)


def drive(agent: Agent, done: Callable[[], bool], *, timeout: float) -> None:
    """Step the agent on the real clock until `done()`; errors in a step fail the test."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the agent"
        time.sleep(min(agent.step(), 0.05))


def parts_of(agent: Agent, broadcast_id: int) -> list[Part]:
    return [p for p in agent.journal.events() if p.broadcast_id == broadcast_id]


def final(agent: Agent, broadcast_id: int, *statuses: str) -> bool:
    return [p.status for p in parts_of(agent, broadcast_id)] == list(statuses)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def server_events(server: FakeServer) -> list[dict[str, Any]]:
    with server.lock:
        return sorted(server.as_run.values(), key=lambda e: e["started_at"])


class SimClock:
    """A clock that moves only when the agent sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def simulate(agent: Agent, clock: SimClock, until: datetime) -> None:
    """Step the agent on a simulated clock, sleeping (advancing the clock) as it asks.

    The sleep is taken exactly: a retry's random jitter can leave the clock a few
    milliseconds before a start, and a rounded-up sleep would then start it late.
    Only a step with nothing to wait for (0 s) moves the clock by a fixed 10 ms.
    """
    while clock.now < until:
        seconds = agent.step()
        clock.advance(seconds if seconds > 0 else 0.01)


# Real time, real player.


def test_plays_each_item_at_its_time_and_reports_it(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a, b = server.add_audio(tones["one"]), server.add_audio(tones["one_b"])
    t0 = datetime.now(UTC)
    items = [
        server.item(1, t0 + timedelta(seconds=1.5), a, duration_ms=1000),
        server.item(2, t0 + timedelta(seconds=3.5), b, duration_ms=1000),
    ]
    publish(server, items)
    agent = new_agent(agents, make_config(tmp_path, server))

    drive(agent, lambda: len(server.as_run) == 2, timeout=10)

    events = server_events(server)
    assert [e["broadcast_id"] for e in events] == [1, 2]
    assert {e["status"] for e in events} == {"played"}
    for event, item in zip(events, items, strict=True):
        assert event["sha256"] == item["sha256"]
        assert abs(at(event["started_at"]) - at(item["starts_at"])) < timedelta(seconds=0.4)
        # The player really ran, in real time, to the end of the file.
        played = at(event["ended_at"]) - at(event["started_at"])
        assert timedelta(seconds=0.9) < played < timedelta(seconds=2)
    assert (agent.config.cache_dir / f"{a}.mp3").read_bytes() == tones["one"]
    assert {p.upload for p in agent.journal.events()} == {"accepted"}
    # Every request carries the device's token, the agent version and the free disk space.
    for seen in server.seen:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["x-loaxa-agent-version"] == __version__
        assert int(seen.headers["x-loaxa-free-disk-bytes"]) > 0
    today = t0.astimezone(ZONE).date()
    asked = {s.query["date"] for s in server.requests("/api/v1/playout/playlist")}
    assert {today.isoformat(), (today + timedelta(days=1)).isoformat()} <= asked


def test_server_down_all_day_plays_from_cache_and_reports_later(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a, b = server.add_audio(tones["one"]), server.add_audio(tones["one_b"])
    t0 = datetime.now(UTC)
    items = [
        server.item(11, t0 + timedelta(seconds=1.5), a, duration_ms=1000),
        server.item(12, t0 + timedelta(seconds=3.3), b, duration_ms=1000),
    ]
    publish(server, items)
    agent = new_agent(agents, make_config(tmp_path, server))
    drive(agent, lambda: agent.cache.has(a) and agent.cache.has(b), timeout=5)

    server.stop()
    drive(agent, lambda: final(agent, 11, "played") and final(agent, 12, "played"), timeout=8)
    assert server.as_run == {}
    assert {p.upload for p in agent.journal.events()} == {"pending"}
    for part, item in zip(agent.journal.events(), items, strict=True):
        assert abs(part.started_at - at(item["starts_at"])) < timedelta(seconds=0.4)

    # Back online; the first answer is lost on the way, so the agent sends the batch again.
    server.lose_as_run_answer_once = True
    server.start()
    drive(
        agent,
        lambda: all(p.upload != "pending" for p in agent.journal.events()),
        timeout=10,
    )
    assert {p.upload for p in agent.journal.events()} == {"duplicate"}
    assert len(server.as_run) == 2
    assert len(server.as_run_posts) >= 2
    first, second = ({e["event_id"] for e in post} for post in server.as_run_posts[:2])
    assert first == second == set(server.as_run)


def test_corrupted_download_is_detected_and_fetched_again(
    tmp_path: Path,
    server: FakeServer,
    tones: dict[str, bytes],
    agents: list[Agent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = server.add_audio(tones["one"])
    server.corrupt_once.add(a)
    publish(
        server, [server.item(21, datetime.now(UTC) + timedelta(minutes=5), a, duration_ms=1000)]
    )
    agent = new_agent(agents, make_config(tmp_path, server))

    with caplog.at_level(logging.WARNING, logger="loaxa.agent"):
        drive(agent, lambda: agent.cache.has(a), timeout=5)

    assert [s.status for s in server.requests(f"/api/v1/audio/{a}")] == [200, 200]
    assert "did not match its sha256" in caplog.text
    assert (agent.config.cache_dir / f"{a}.mp3").read_bytes() == tones["one"]
    assert not (agent.config.cache_dir / f"{a}.part").exists()


def test_partial_download_is_resumed_with_range(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a = server.add_audio(tones["one"])
    server.truncate_once[a] = 3000
    publish(
        server, [server.item(22, datetime.now(UTC) + timedelta(minutes=5), a, duration_ms=1000)]
    )
    agent = new_agent(agents, make_config(tmp_path, server))

    drive(agent, lambda: agent.cache.has(a), timeout=5)

    gets = server.requests(f"/api/v1/audio/{a}")
    assert [(g.headers.get("range"), g.status) for g in gets] == [
        (None, 200),
        ("bytes=3000-", 206),
    ]
    assert (agent.config.cache_dir / f"{a}.mp3").read_bytes() == tones["one"]
    assert not (agent.config.cache_dir / f"{a}.part").exists()


def test_changed_playlist_plays_the_new_item_and_not_the_removed_one(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a, b, c = (server.add_audio(tones[n]) for n in ("one", "one_b", "one_c"))
    t0 = datetime.now(UTC)
    kept = server.item(31, t0 + timedelta(seconds=2.0), a, duration_ms=1000)
    removed = server.item(32, t0 + timedelta(seconds=3.8), b, duration_ms=1000)
    publish(server, [kept, removed])
    agent = new_agent(agents, make_config(tmp_path, server))
    drive(agent, lambda: agent.cache.has(a) and agent.cache.has(b), timeout=5)

    added = server.item(33, t0 + timedelta(seconds=3.6), c, duration_ms=1000)
    publish(server, [kept, added])
    drive(
        agent,
        lambda: (
            final(agent, 31, "played")
            and final(agent, 33, "played")
            and datetime.now(UTC) > t0 + timedelta(seconds=5.0)
        ),
        timeout=10,
    )

    assert parts_of(agent, 32) == []
    assert 32 not in {e["broadcast_id"] for e in server_events(server)}
    playlist_gets = server.requests("/api/v1/playout/playlist")
    assert any(g.status == 304 and g.headers.get("if-none-match") for g in playlist_gets)
    # Housekeeping dropped the audio no stored playlist refers to any more.
    assert not (agent.config.cache_dir / f"{b}.mp3").exists()
    assert (agent.config.cache_dir / f"{c}.mp3").exists()


def _players_of(cache_dir: Path) -> list[int]:
    """Pids of processes playing a file from `cache_dir`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(cache_dir).encode() in cmdline and b"ffmpeg" in cmdline:
                pids.append(int(entry.name))
    return pids


def _journal_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM events ORDER BY part").fetchall()
        except sqlite3.OperationalError:
            return []
    return [dict(r) for r in rows]


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_agent_killed_mid_item_resumes_it_without_replaying_it(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes]
) -> None:
    """`loaxa agent` as a real process, SIGKILLed during an item, then started again.

    The item lasts 10 s so that the second agent, a cold Python process, has time to start
    before it ends even on a busy machine (with 4 s it sometimes did not, at load 10)."""
    a = server.add_audio(tones["ten"])
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        f'server_url = "{server.base_url}"\n'
        'token_file = "token"\n'
        'cache_dir = "cache"\n'
        'journal = "journal.sqlite"\n'
        f'player_command = "{NULL_PLAYER}"\n'
        'late_policy = "trim"\n'
        "start_grace_seconds = 0.5\n"
        "min_remaining_seconds = 0.3\n"
        "playlist_poll_seconds = 0.3\n"
        "emergency_poll_seconds = 0.5\n"
        "upload_interval_seconds = 0.3\n"
        "retry_base_seconds = 0.2\n"
        "retry_max_seconds = 1\n"
        "heartbeat_seconds = 0.2\n"
        "tick_seconds = 0.05\n"
    )
    journal, cache_dir = tmp_path / "journal.sqlite", tmp_path / "cache"

    def start_agent(log_name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log_name).open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "app.cli", "agent", "--config", str(config)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    first = start_agent("agent1.log")
    try:
        # Publish only once the agent is up, so that a slow start cannot make it late.
        _wait(lambda: bool(server.requests("/api/v1/playout/playlist")), timeout=30)
        starts_at = datetime.now(UTC) + timedelta(seconds=1.5)
        publish(server, [server.item(41, starts_at, a, duration_ms=10_000)])
        _wait(lambda: any(r["status"] == "playing" for r in _journal_rows(journal)), timeout=10)
        _wait(lambda: bool(_players_of(cache_dir)), timeout=2)
        _wait(lambda: datetime.now(UTC) > starts_at + timedelta(seconds=0.8), timeout=5)
    finally:
        first.kill()
        first.wait(timeout=10)
    killed_at = datetime.now(UTC)
    if os.environ.get("LOAXA_TEST_NO_POSIX"):
        # Linux with prctl hidden (test_portable.py) has nothing that ends an orphan player;
        # Windows has its job object (tested apart). End it here to test the resume.
        for pid in _players_of(cache_dir):
            os.kill(pid, signal.SIGKILL)
    # The player does not outlive the agent (it would play over the next one).
    _wait(lambda: not _players_of(cache_dir), timeout=3)

    second = start_agent("agent2.log")
    try:
        _wait(lambda: len(server.as_run) == 2, timeout=25)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0

    rows = _journal_rows(journal)
    assert [(r["part"], r["status"]) for r in rows] == [(0, "interrupted"), (1, "played")]
    cut, resumed = rows
    assert cut["note"] == AGENT_STOPPED
    assert at(cut["ended_at"]) <= killed_at
    assert at(cut["ended_at"]) > killed_at - timedelta(seconds=1)
    # Resumed where it should be by now, not from the start, and it ends on time.
    assert at(resumed["started_at"]) > killed_at
    assert resumed["offset_ms"] > 1000
    assert abs(at(resumed["ended_at"]) - (starts_at + timedelta(seconds=10))) < timedelta(
        seconds=0.6
    )
    assert {e["status"] for e in server.as_run.values()} == {"interrupted", "played"}
    assert {r["upload"] for r in rows} == {"accepted"}


def test_restart_mid_item_with_skip_policy_records_it_interrupted(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a = server.add_audio(tones["two"])
    starts_at = datetime.now(UTC) + timedelta(seconds=1.2)
    publish(server, [server.item(42, starts_at, a, duration_ms=2000)])
    config = make_config(tmp_path, server, late_policy="skip")
    crashed = new_agent(agents, config)
    drive(
        crashed,
        lambda: (
            crashed.current is not None and datetime.now(UTC) > starts_at + timedelta(seconds=0.5)
        ),
        timeout=6,
    )
    # A crash: the player dies with the agent, and the agent finalises nothing.
    assert crashed.current is not None
    process = crashed.current.playback.process  # type: ignore[attr-defined]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    crashed.current = None
    with pytest.raises(JournalLocked):
        Agent(config, player=SubprocessPlayer(config.player_command))
    crashed.close()  # only lets go of the journal (lock): the crashed agent wrote nothing more

    agent = new_agent(agents, config)
    drive(
        agent,
        lambda: len(server.as_run) == 1 and datetime.now(UTC) > starts_at + timedelta(seconds=2.3),
        timeout=6,
    )
    [part] = parts_of(agent, 42)
    assert (part.status, part.note, part.upload) == ("interrupted", AGENT_STOPPED, "accepted")
    assert agent.current is None


def test_items_around_local_midnight(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    """Yesterday's last item runs past midnight; today's first plays though today's pull fails."""
    midnight = datetime(2025, 1, 1, tzinfo=ZONE).astimezone(UTC)
    shift = midnight - timedelta(seconds=2.5) - datetime.now(UTC)

    def clock() -> datetime:
        return datetime.now(UTC) + shift

    late = server.add_audio(tones["two"])
    early = server.add_audio(tones["one"])
    evening = server.item(51, midnight - timedelta(seconds=1.0), late, duration_ms=2000)
    morning = server.item(52, midnight + timedelta(seconds=2.2), early, duration_ms=1000)
    publish(server, [evening, morning])
    assert set(server.playlists) == {"2024-12-31", "2025-01-01"}
    agent = new_agent(agents, make_config(tmp_path, server), clock=clock)
    drive(agent, lambda: agent.cache.has(late) and agent.cache.has(early), timeout=2)
    # From now on every playlist request fails: after midnight the agent cannot pull its day.
    server.unavailable = lambda request: request.url.path.endswith("/playlist")

    drive(agent, lambda: len(server.as_run) == 2, timeout=8)

    events = {e["broadcast_id"]: e for e in server_events(server)}
    assert events[51]["status"] == events[52]["status"] == "played"
    assert at(events[51]["started_at"]) < midnight < at(events[51]["ended_at"])
    assert abs(at(events[52]["started_at"]) - at(morning["starts_at"])) < timedelta(seconds=0.4)
    failed_pulls = {
        s.query["date"] for s in server.requests("/api/v1/playout/playlist") if s.status == 503
    }
    assert "2025-01-01" in failed_pulls
    pulled = {s.query["date"] for s in server.requests("/api/v1/playout/playlist")}
    # Today and the prefetch horizon after it, on each side of midnight.
    horizon = agent.config.prefetch_days
    assert pulled == {
        (date(2024, 12, 31) + timedelta(days=n)).isoformat() for n in range(horizon + 2)
    }


def test_emergency_interrupts_the_item_which_then_resumes(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a = server.add_audio(tones["four"])
    e = server.add_audio(tones["one"])
    starts_at = datetime.now(UTC) + timedelta(seconds=1.5)
    publish(server, [server.item(61, starts_at, a, duration_ms=4000)])
    agent = new_agent(agents, make_config(tmp_path, server))
    posted: list[datetime] = []

    def declare() -> None:
        posted.append(datetime.now(UTC))
        server.add_emergency(5, e, duration_ms=1000)

    timer = threading.Timer(
        (starts_at + timedelta(seconds=0.8) - datetime.now(UTC)).total_seconds(), declare
    )
    timer.start()
    try:
        drive(agent, lambda: final(agent, 61, "interrupted", "played"), timeout=10)
    finally:
        timer.cancel()
    drive(agent, lambda: len(server.as_run) == 3, timeout=3)

    cut, resumed = parts_of(agent, 61)
    [alert] = [p for p in agent.journal.events() if p.emergency_id == 5]
    assert alert.status == "played"
    assert alert.started_at - posted[0] < timedelta(seconds=2)  # the contract allows 30 s
    assert cut.ended_at is not None and alert.ended_at is not None
    assert cut.ended_at <= alert.started_at
    assert resumed.started_at >= alert.ended_at
    assert resumed.offset_ms > 1500
    assert resumed.ended_at is not None
    assert abs(resumed.ended_at - (starts_at + timedelta(seconds=4))) < timedelta(seconds=0.6)
    reported = {e["event_id"]: e for e in server_events(server)}
    assert reported[alert.event_id]["broadcast_id"] is None
    assert reported[alert.event_id]["emergency_id"] == 5
    assert reported[cut.event_id]["status"] == "interrupted"
    # Still active on the server, but played once only.
    quiet_until = resumed.ended_at + timedelta(seconds=0.8)
    drive(agent, lambda: datetime.now(UTC) > quiet_until, timeout=3)
    assert len([p for p in agent.journal.events() if p.emergency_id == 5]) == 1


def test_of_two_overlapping_items_only_the_winner_plays(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    village, commune = server.add_audio(tones["two"]), server.add_audio(tones["one"])
    t0 = datetime.now(UTC)
    # The village's item starts first but yields to the commune's, which overlaps it.
    publish(
        server,
        [
            server.item(
                71, t0 + timedelta(seconds=1.5), village, duration_ms=2000, yields_to=(72,)
            ),
            server.item(72, t0 + timedelta(seconds=2.5), commune, duration_ms=1000),
        ],
    )
    agent = new_agent(agents, make_config(tmp_path, server))
    drive(agent, lambda: len(server.as_run) == 2, timeout=10)

    events = {e["broadcast_id"]: e for e in server_events(server)}
    assert events[71]["status"] == "failed" and events[72]["status"] == "played"
    [given_up] = parts_of(agent, 71)
    assert given_up.note == "yields to b72 (Chuyên mục CCHC 72)"
    assert abs(at(events[72]["started_at"]) - (t0 + timedelta(seconds=2.5))) < timedelta(
        seconds=0.4
    )


def test_a_winner_that_joins_the_playlist_interrupts_the_item_that_yields_to_it(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    village, commune = server.add_audio(tones["four"]), server.add_audio(tones["one"])
    t0 = datetime.now(UTC)
    alone = server.item(81, t0 + timedelta(seconds=1.5), village, duration_ms=4000)
    publish(server, [alone])
    agent = new_agent(agents, make_config(tmp_path, server))
    drive(agent, lambda: [p.status for p in parts_of(agent, 81)] == ["playing"], timeout=5)
    # The commune's programme is assembled meanwhile; it overlaps, and wins.
    winner = server.item(82, t0 + timedelta(seconds=3.5), commune, duration_ms=1000)
    publish(server, [{**alone, "yields_to": ["b82"]}, winner])
    drive(agent, lambda: final(agent, 82, "played"), timeout=10)

    [cut] = parts_of(agent, 81)
    [played] = parts_of(agent, 82)
    assert cut.status == "interrupted" and cut.note == "interrupted by b82"
    assert cut.ended_at is not None and cut.ended_at <= played.started_at
    # Its slot lasts until t0 + 5.5 s, but an item cut short by its winner stays so.
    drive(agent, lambda: datetime.now(UTC) > t0 + timedelta(seconds=6), timeout=5)
    assert [p.status for p in parts_of(agent, 81)] == ["interrupted"]


# Simulated clock, dry-run player (it takes each file's time on the agent's clock).


def _sim_config(tmp_path: Path, server: FakeServer, **overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {
        "start_grace_seconds": 5,
        "min_remaining_seconds": 3,
        "emergency_poll_seconds": 10,
        "playlist_poll_seconds": 600,
        "upload_interval_seconds": 60,
        "retry_base_seconds": 5,
        "retry_max_seconds": 300,
        "heartbeat_seconds": 5,
        "tick_seconds": 5,
        "housekeeping_seconds": 3600,
    }
    values.update(overrides)
    return make_config(tmp_path, server, **values)


def test_offline_for_a_day_and_a_night_on_a_simulated_clock(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a, b = server.add_audio(tones["one"]), server.add_audio(tones["one_b"])
    start = datetime(2024, 3, 5, 20, 0, tzinfo=ZONE)
    plan = [
        (101, datetime(2024, 3, 5, 21, 0, tzinfo=ZONE), a, 900_000),
        # Runs past midnight: the evening's playlist, finished on the next day.
        (102, datetime(2024, 3, 5, 23, 55, tzinfo=ZONE), b, 600_000),
        (103, datetime(2024, 3, 6, 0, 5, tzinfo=ZONE), a, 600_000),
        (104, datetime(2024, 3, 6, 7, 0, tzinfo=ZONE), b, 720_000),
    ]
    publish(server, [server.item(i, s, d, duration_ms=ms) for i, s, d, ms in plan])
    clock = SimClock(start)
    # Each failed poll costs real time; polling emergencies every minute (unvalidated, the
    # real limit is 10 s) keeps a simulated half day to about a second.
    config = _sim_config(tmp_path, server).model_copy(update={"emergency_poll_seconds": 60})
    agent = new_agent(agents, config, player=DryRunPlayer(clock), clock=clock, sleep=clock.advance)
    simulate(agent, clock, start + timedelta(minutes=1))
    assert agent.cache.has(a) and agent.cache.has(b)

    server.stop()
    simulate(agent, clock, datetime(2024, 3, 6, 8, 0, tzinfo=ZONE))
    parts = agent.journal.events()
    assert [(p.broadcast_id, p.status) for p in parts] == [(i, "played") for i, *_ in plan]
    for part, (_, starts, _, ms) in zip(parts, plan, strict=True):
        assert part.started_at == starts
        assert part.ended_at == starts + timedelta(milliseconds=ms)
    assert {p.upload for p in parts} == {"pending"}

    server.start()
    simulate(agent, clock, clock.now + timedelta(minutes=6))
    assert len(server.as_run) == 4
    assert {p.upload for p in agent.journal.events()} == {"accepted"}


def test_rejected_as_run_is_kept_with_its_reason_and_not_sent_again(
    tmp_path: Path,
    server: FakeServer,
    tones: dict[str, bytes],
    agents: list[Agent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = server.add_audio(tones["one"])
    start = datetime(2024, 6, 1, 9, 0, tzinfo=ZONE)
    server.reject_broadcast_ids.add(72)
    publish(
        server,
        [
            server.item(71, start + timedelta(seconds=10), a, duration_ms=1000),
            server.item(72, start + timedelta(seconds=30), a, duration_ms=1000),
        ],
    )
    clock = SimClock(start)
    agent = new_agent(
        agents,
        _sim_config(tmp_path, server),
        player=DryRunPlayer(clock),
        clock=clock,
        sleep=clock.advance,
    )
    with caplog.at_level(logging.ERROR, logger="loaxa.agent"):
        simulate(agent, clock, start + timedelta(minutes=10))

    [ok] = parts_of(agent, 71)
    [bad] = parts_of(agent, 72)
    assert ok.upload == "accepted"
    assert (bad.upload, bad.reject_reason) == ("rejected", "unknown broadcast")
    assert "unknown broadcast" in caplog.text
    sent = [e["event_id"] for post in server.as_run_posts for e in post]
    assert sent.count(bad.event_id) == 1


def test_late_start_is_trimmed_or_skipped(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    """The PC comes up after some items' start: trim plays from the offset, within limits."""
    a = server.add_audio(tones["one"])
    start = datetime(2024, 6, 2, 9, 0, tzinfo=ZONE)
    publish(
        server,
        [
            # 20 minutes late: beyond max_late_seconds (60), not played.
            server.item(81, start - timedelta(minutes=20), a, duration_ms=1_800_000),
            # 20 s late: trimmed.
            server.item(82, start - timedelta(seconds=20), a, duration_ms=600_000),
        ],
    )
    for policy, expected in (("trim", "played"), ("skip", "failed")):
        clock = SimClock(start)
        folder = tmp_path / policy
        config = _sim_config(folder, server, late_policy=policy, max_late_seconds=60)
        agent = new_agent(
            agents, config, player=DryRunPlayer(clock), clock=clock, sleep=clock.advance
        )
        simulate(agent, clock, start + timedelta(minutes=11))
        [too_late] = parts_of(agent, 81)
        assert too_late.status == "failed" and "max_late_seconds" in (too_late.note or "")
        [trimmed] = parts_of(agent, 82)
        assert trimmed.status == expected
        if policy == "trim":
            assert trimmed.offset_ms == 20_000
            assert trimmed.ended_at == start + timedelta(seconds=580)
    # Never-started items are reported too ("failed"), and the server takes them.
    assert sorted(e["status"] for e in server.as_run.values()) == ["failed"] * 3 + ["played"]


def test_dry_run_logs_and_reports_nothing(
    tmp_path: Path,
    server: FakeServer,
    tones: dict[str, bytes],
    agents: list[Agent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = server.add_audio(tones["one"])
    start = datetime(2024, 6, 3, 9, 0, tzinfo=ZONE)
    publish(server, [server.item(91, start + timedelta(seconds=10), a, duration_ms=1000)])
    clock = SimClock(start)
    config = _sim_config(tmp_path, server)
    agent = new_agent(
        agents,
        config,
        player=DryRunPlayer(clock),
        clock=clock,
        sleep=clock.advance,
        dry_run=True,
    )
    with caplog.at_level(logging.INFO, logger="loaxa.agent"):
        simulate(agent, clock, start + timedelta(minutes=2))

    file = config.cache_dir / f"{a}.mp3"
    assert (
        f"would play {file} at {(start + timedelta(seconds=10)).astimezone(UTC).isoformat()}"
        in (caplog.text)
    )
    assert server.requests("/api/v1/playout/as-run") == []
    assert not config.journal.exists()


def test_failing_player_is_retried_then_reported_failed(
    tmp_path: Path, server: FakeServer, tones: dict[str, bytes], agents: list[Agent]
) -> None:
    a = server.add_audio(tones["one"])
    start = datetime(2024, 6, 4, 9, 0, tzinfo=ZONE)
    publish(server, [server.item(95, start + timedelta(seconds=10), a, duration_ms=600_000)])
    clock = SimClock(start)
    config = _sim_config(
        tmp_path, server, player_command="sh -c 'exit 3' {file} {offset_s}", player_retries=2
    )
    agent = new_agent(agents, config, clock=clock, sleep=clock.advance)
    # The player is a real process: give it real time to fail before the clock moves on.
    while clock.now < start + timedelta(minutes=2):
        clock.advance(min(max(agent.step(), 0.01), 1.0))
        time.sleep(0.01 if agent.current is None else 0.05)

    parts = parts_of(agent, 95)
    assert [p.status for p in parts] == ["failed"] * 3
    assert all("exit code 3" in (p.note or "") for p in parts)
    assert [p.offset_ms > 0 for p in parts] == [False, True, True]
    assert len(server.as_run) == 3


# Configuration and player.


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "scripts" / "agent.example.toml")
    assert config.emergency_poll_seconds <= 10
    assert config.late_policy == "trim"
    assert config.token_file == Path("/etc/loaxa/agent.token")
    assert config.journal.is_absolute()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("emergency_poll_seconds = 30\n", "less than or equal to 10"),
        ('late_policy = "trim"\nplayer_command = "ffplay {file}"\n', "{offset_s}"),
        ('device_token = "dev_x"\n', "exactly one of"),
        ("colour = 3\n", "colour"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        'server_url = "http://127.0.0.1:9"\ntoken_file = "t"\ncache_dir = "c"\n'
        'journal = "j.sqlite"\n' + extra
    )
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_config(path)


def test_relative_paths_are_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("dev_abc\n")
    path = tmp_path / "agent.toml"
    path.write_text(
        'server_url = "http://127.0.0.1:9/"\ntoken_file = "tok"\ncache_dir = "c"\n'
        'journal = "state/j.sqlite"\n'
    )
    config = load_config(path)
    assert config.cache_dir == tmp_path / "c"
    assert config.journal == tmp_path / "state" / "j.sqlite"
    assert config.token() == "dev_abc"
    assert config.server_url == "http://127.0.0.1:9"


def test_player_command_placeholders() -> None:
    player = SubprocessPlayer("mpv --no-video --start={offset_s} {file}")
    assert player.argv(Path("/cache/a b.mp3"), 2.5) == [
        "mpv",
        "--no-video",
        "--start=2.500",
        "/cache/a b.mp3",
    ]


def test_naive_dates_never_reach_the_journal(tmp_path: Path) -> None:
    from app.playout.agent.journal import Journal

    journal = Journal(tmp_path / "j.sqlite")
    with pytest.raises(ValueError, match="naive"):
        journal.save_playlist(
            date(2024, 1, 1),
            etag=None,
            body={},
            fetched_at=datetime(2024, 1, 1),  # noqa: DTZ001
        )
    journal.close()
