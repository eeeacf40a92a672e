"""The month's work at the service and API level: "Tự động xếp" proposes exactly what the
scheduler's fill saves (one rule) and saves nothing itself; a segment that already aired in
another column is placed again only when someone confirms it (409 otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import unit_of_work
from app.errors import Conflict
from app.schedule import filling
from app.schedule import service as schedule
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations.models import Programme
from tests.helpers import make_station, staff
from tests.schedule.test_broadcasts_api import approved_segment, new_broadcast, pink


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station(villages=0)
    with unit_of_work() as session:
        # The rule is data: a 20 to 40 second column keeps the test audio short.
        session.execute(
            update(Programme)
            .where(Programme.code == "cchc")
            .values(min_duration_ms=20_000, max_duration_ms=40_000)
        )
    return {**ids, "h": staff(client, ids["station_id"])}


def _rundown(broadcast_id: int) -> list[int]:
    with unit_of_work(write=False) as s:
        return schedule.rundown_segment_ids(s, broadcast_id)


def test_the_proposal_is_what_the_fill_saves_and_saves_nothing(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    first = approved_segment(client, world, pink(tmp_path / "a.mp3", 12, 1), "Trước")
    second = approved_segment(client, world, pink(tmp_path / "b.mp3", 10, 2), "Sau")
    third = approved_segment(client, world, pink(tmp_path / "c.mp3", 25, 3), "Quá dài")
    b = new_broadcast(client, world).json()
    with unit_of_work() as s:
        proposed = filling.propose(s, s.get_one(Broadcast, b["id"]))
    # By approval age, while the total stays within 40 s: the 25 s one no longer fits.
    assert proposed.segment_ids == [first["id"], second["id"]]
    assert proposed.offered == 3 and proposed.missing_ms == 0
    assert third["id"] not in proposed.segment_ids
    assert _rundown(b["id"]) == []  # a proposal is only shown
    with unit_of_work() as s:
        saved = filling.fill_rundown(s, s.get_one(Broadcast, b["id"]))
    assert saved is not None and saved.segment_ids == proposed.segment_ids
    assert _rundown(b["id"]) == proposed.segment_ids


def test_a_proposal_with_nothing_to_offer_says_so(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    b = new_broadcast(client, world).json()
    with unit_of_work() as s:
        none = filling.propose(s, s.get_one(Broadcast, b["id"]))
    assert none.segment_ids == [] and none.offered == 0 and none.missing_ms > 0
    approved_segment(client, world, pink(tmp_path / "long.mp3", 45, 4), "Dài hơn khung")
    with unit_of_work() as s:
        too_long = filling.propose(s, s.get_one(Broadcast, b["id"]))
    assert too_long.segment_ids == [] and too_long.offered == 1


def _aired_column(client: TestClient, world: dict, segment_ids: list[int]) -> int:
    """February's column with these segments, aired."""
    feb = new_broadcast(client, world, "2024-02-17T17:00:00+07:00").json()
    r = client.put(
        f"/api/v1/broadcasts/{feb['id']}/rundown",
        json={"segment_ids": segment_ids},
        headers=world["h"]["approver"],
    )
    assert r.status_code == 200, r.text
    with unit_of_work() as s:
        s.get_one(Broadcast, feb["id"]).status = BroadcastStatus.aired.value
    return int(feb["id"])


def test_a_segment_that_aired_elsewhere_needs_confirm_aired(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    old = approved_segment(client, world, pink(tmp_path / "a.mp3", 12, 1), "Tin tháng 2")
    new = approved_segment(client, world, pink(tmp_path / "b.mp3", 10, 2), "Tin tháng 3")
    feb = _aired_column(client, world, [old["id"]])
    march = new_broadcast(client, world).json()
    approver = world["h"]["approver"]
    url = f"/api/v1/broadcasts/{march['id']}/rundown"

    r = client.put(url, json={"segment_ids": [new["id"], old["id"]]}, headers=approver)
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert f"segment {old['id']} aired in broadcast {feb}" in detail and "confirm_aired" in detail
    assert _rundown(march["id"]) == []  # nothing written

    ok = client.put(
        url, json={"segment_ids": [new["id"], old["id"]], "confirm_aired": True}, headers=approver
    )
    assert ok.status_code == 200, ok.text
    assert _rundown(march["id"]) == [new["id"], old["id"]]
    # Once placed, reordering does not ask again; a segment never aired is never asked about.
    again = client.put(url, json={"segment_ids": [old["id"], new["id"]]}, headers=approver)
    assert again.status_code == 200, again.text
    assert client.put(url, json={"segment_ids": [new["id"]]}, headers=approver).status_code == 200


def test_the_service_names_where_it_aired(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    old = approved_segment(client, world, pink(tmp_path / "a.mp3", 12, 1), "Tin tháng 2")
    feb = _aired_column(client, world, [old["id"]])
    march = new_broadcast(client, world).json()
    with unit_of_work() as s:
        broadcast = s.get_one(Broadcast, march["id"])
        with pytest.raises(Conflict) as refused:
            schedule.set_rundown(s, broadcast=broadcast, segment_ids=[old["id"]])
        assert isinstance(refused.value, schedule.AiredElsewhere)
        assert refused.value.aired == {old["id"]: [feb]}
        assert "2024-02-17 17:00" in refused.value.message
        # The fill never proposes it: it sits in another column of the programme.
        assert filling.propose(s, broadcast).segment_ids == []
