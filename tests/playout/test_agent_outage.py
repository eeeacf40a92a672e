"""The playout agent cut off from the server for three days, then back.

It keeps the playlists and audio of the coming days (`prefetch_days`, default 7), so it
plays every item of those three days from its cache, and once the server is back every
as-run event arrives exactly once. With the old horizon (tomorrow only) the same outage
loses what was scheduled after tomorrow: the setting is what makes the difference. The
server is the wire-level fake (tests/playout/agent_fixtures.py), the clock simulated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.playout.agent import Agent, DryRunPlayer
from tests.playout.agent_fixtures import FakeServer, make_tone
from tests.playout.test_agent import ZONE, SimClock, _sim_config, new_agent, publish, simulate

pytestmark = pytest.mark.faults

START = datetime(2024, 3, 4, 9, 0, tzinfo=ZONE)  # a Monday morning
OUTAGE = timedelta(days=3)
TIMES = (time(7, 0), time(12, 0), time(17, 30))  # three slots a day


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    made: list[Agent] = []
    yield made
    for agent in made:
        agent.close()


def _week(server: FakeServer, folder: Path) -> list[dict[str, Any]]:
    """Three items a day for five days, each day with audio of its own."""
    items = []
    for day in range(5):
        digest = server.add_audio(
            make_tone(folder / f"day{day}.mp3", seconds=2, frequency=300 + 40 * day)
        )
        for n, at in enumerate(TIMES):
            starts = datetime.combine(START.date() + timedelta(days=day), at, tzinfo=ZONE)
            items.append(server.item(100 * day + n, starts, digest, duration_ms=120_000))
    return items


@pytest.mark.parametrize("prefetch_days", [7, 1])
def test_three_days_cut_off_from_the_server(
    tmp_path: Path, server: FakeServer, agents: list[Agent], prefetch_days: int
) -> None:
    items = _week(server, tmp_path)
    publish(server, items)
    clock = SimClock(START)
    config = _sim_config(tmp_path, server, prefetch_days=prefetch_days).model_copy(
        update={"emergency_poll_seconds": 60}  # a simulated day in about a second
    )
    agent = new_agent(agents, config, player=DryRunPlayer(clock), clock=clock, sleep=clock.advance)
    simulate(agent, clock, START + timedelta(minutes=2))
    cached = {i["sha256"] for i in items if agent.cache.has(i["sha256"])}

    server.stop()
    back_at = START + timedelta(minutes=2) + OUTAGE
    simulate(agent, clock, back_at)
    during = [i for i in items if START < datetime.fromisoformat(i["starts_at"]) < back_at]
    played = {p.broadcast_id: p for p in agent.journal.events() if p.status == "played"}

    if prefetch_days == 1:
        # Tomorrow's audio was there; the two days after were never fetched.
        assert len(cached) == 2
        lost = [i for i in during if i["broadcast_id"] not in played]
        assert {i["broadcast_id"] // 100 for i in lost} == {2, 3}
        return

    assert len(cached) == 5  # every day's audio, before the cut
    assert len(during) == 9
    for item in during:
        part = played[item["broadcast_id"]]
        assert part.started_at == datetime.fromisoformat(item["starts_at"])
    outage_parts = [p for p in agent.journal.events() if p.planned_start > START]
    assert {p.upload for p in outage_parts} == {"pending"}

    server.start()
    simulate(agent, clock, clock.now + timedelta(minutes=10))
    events = agent.journal.events()
    assert {p.upload for p in events} == {"accepted"}
    assert set(server.as_run) == {p.event_id for p in events}
    posted = Counter(e["event_id"] for batch in server.as_run_posts for e in batch)
    assert set(posted.values()) == {1}, "an as-run event was sent twice"
    assert {e["broadcast_id"] for e in server.as_run.values()} >= {
        i["broadcast_id"] for i in during
    }
