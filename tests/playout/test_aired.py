"""One rule for "aired", in playout and in the report: the master in force when it played."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
from app.playout.aired import MasterHistory, is_aired
from app.reports import service as reports
from app.reports.period import Period
from tests.helpers import make_station, staff
from tests.playout.helpers import approved_segment, broadcast, device, pink, short_windows

AS_RUN = "/api/v1/playout/as-run"
T = datetime(2024, 3, 16, 10, 0, tzinfo=UTC)


def test_the_master_in_force_when_it_played() -> None:
    h = MasterHistory(
        [
            (T - timedelta(days=5), None),  # rundown set
            (T - timedelta(days=4), "a"),  # assembled
            (T + timedelta(hours=1), None),  # rundown changed after the airing
            (T + timedelta(hours=2), "b"),  # assembled again
        ]
    )
    assert is_aired("played", "a", T, h)
    assert not is_aired("interrupted", "a", T, h)
    assert not is_aired("played", "b", T, h)  # not yet the master then
    assert not is_aired("played", "a", T + timedelta(hours=1, minutes=30), h)  # no master
    assert not is_aired("played", "a", T + timedelta(hours=3), h)  # outdated by then
    assert is_aired("played", "b", T + timedelta(hours=3), h)
    # A PC clock running behind: before the first record, the first master.
    assert is_aired("played", "a", T - timedelta(days=10), h)
    # No recorded master at all: nothing to check against.
    assert is_aired("played", "x", T, MasterHistory())
    assert is_aired("played", "x", T, MasterHistory([(T, None)]))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {name: pink(d / f"{name}.mp3", 2, seed=n) for n, name in enumerate("ab")}


def _event(event_id: str, b: dict[str, Any], sha: str, start: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "broadcast_id": b["id"],
        "sha256": sha,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(milliseconds=b["master_duration_ms"])).isoformat(),
        "status": "played",
    }


def test_rundown_changed_after_airing_playout_and_report_agree(
    client: TestClient, session: Session, clips: dict[str, Path]
) -> None:
    ids = make_station()
    sid = ids["station_id"]
    h = staff(client, sid)
    short_windows()
    a = approved_segment(client, h, clips["a"], title="Tin A")
    b_seg = approved_segment(client, h, clips["b"], title="Tin B")
    pc = device(client, h["admin"], sid)

    def at(when: datetime) -> None:
        clock.set_now(lambda: when)

    # March: assembled a week ahead, aired at 17:00 local (10:00 UTC), the PC reports late.
    at(T - timedelta(days=7))
    march = broadcast(
        client, h, station_id=sid, starts_at="2024-03-16T17:00:00+07:00", segment_ids=[a["id"]]
    )
    # April: assembled, then changed the day before; a PC that kept the old playlist plays
    # the outdated master.
    april = broadcast(
        client, h, station_id=sid, starts_at="2024-04-20T17:00:00+07:00", segment_ids=[a["id"]]
    )
    at(T + timedelta(hours=2))
    for b in (march, april):
        r = client.put(
            f"/api/v1/broadcasts/{b['id']}/rundown",
            json={"segment_ids": [b_seg["id"]]},
            headers=h["approver"],
        )
        assert r.status_code == 200, r.text
        r = client.post(f"/api/v1/broadcasts/{b['id']}/assemble", headers=h["approver"])
        assert r.status_code == 200, r.text
        assert r.json()["master_sha256"] != b["master_sha256"]

    at(datetime(2024, 4, 21, 0, 0, tzinfo=UTC))
    april_start = datetime(2024, 4, 20, 10, 0, tzinfo=UTC)
    r = client.post(
        AS_RUN,
        json=[
            _event("mar-1", march, march["master_sha256"], T),
            _event("apr-1", april, april["master_sha256"], april_start),
        ],
        headers=pc["h"],
    )
    assert r.status_code == 200 and r.json()["accepted"] == ["mar-1", "apr-1"], r.text

    def status(b: dict[str, Any]) -> str:
        got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()
        return str(got["status"])

    # Playout: March aired (its master then); April did not (outdated by then).
    assert (status(march), status(april)) == ("aired", "assembled")

    at(datetime(2024, 5, 10, 0, 0, tzinfo=UTC))
    report = reports.compliance_report(session, station_id=sid, period=Period(2024))
    rows = {m.month: m for m in report.months}
    assert (rows["2024-03"].aired, rows["2024-03"].broadcasts[0].state) == (1, "aired")
    assert rows["2024-03"].aired_ms == march["master_duration_ms"]
    assert (rows["2024-04"].aired, rows["2024-04"].broadcasts[0].state) == (0, "missed")
    assert rows["2024-04"].result == "not-aired"
