"""The segment queue through the HTTP API: workflow, bad input, concurrent edits."""

from __future__ import annotations

import threading
import unicodedata

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_station, staff

SCRIPT = (
    "Thực hiện Kế hoạch số 04/KH-UBND ngày 04/01/2024 của UBND xã về thực hiện Cải cách "
    "hành chính xã Xuân Phúc năm 2024."
)


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


def _create(client: TestClient, headers: dict, **over) -> dict:
    body = {
        "title": "Kết quả CCHC quý I",
        "programme": "cchc",
        "topic": "progress",
        "script": SCRIPT,
        "target_month": "2024-03",
        **over,
    }
    r = client.post("/api/v1/segments", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_editor_and_approver_run_the_whole_workflow(client: TestClient, world: dict) -> None:
    editor, approver = world["h"]["editor"], world["h"]["approver"]
    seg = _create(client, editor, village_ids=world["village_ids"][:2])
    assert seg["status"] == "draft" and seg["version"] == 1
    assert seg["village_ids"] == world["village_ids"][:2]
    sid = seg["id"]

    submitted = client.post(f"/api/v1/segments/{sid}/submit", headers=editor)
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"

    rejected = client.post(
        f"/api/v1/segments/{sid}/reject", json={"reason": "Thiếu số liệu tháng 3"}, headers=approver
    )
    assert rejected.json()["status"] == "draft"
    assert rejected.json()["rejection_reason"] == "Thiếu số liệu tháng 3"

    version = rejected.json()["version"]
    fixed = client.patch(
        f"/api/v1/segments/{sid}",
        json={"script": SCRIPT + " Tháng 3 tiếp nhận 125 hồ sơ.", "version": version},
        headers=editor,
    )
    assert fixed.status_code == 200, fixed.text
    client.post(f"/api/v1/segments/{sid}/submit", headers=editor)
    approved = client.post(f"/api/v1/segments/{sid}/approve", headers=approver)
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved" and approved.json()["approved_at"]

    # Approved content is frozen for editors.
    late = client.patch(
        f"/api/v1/segments/{sid}",
        json={"title": "khác", "version": approved.json()["version"]},
        headers=editor,
    )
    assert late.status_code == 409 and "approved" in late.json()["detail"]

    listed = client.get(
        "/api/v1/segments?status=approved&programme=cchc&month=2024-03",
        headers=world["h"]["viewer"],
    ).json()
    assert [s["id"] for s in listed["items"]] == [sid]

    trail = client.get(
        f"/api/v1/audit?entity=segment&entity_id={sid}", headers=world["h"]["admin"]
    ).json()["items"]
    assert [e["action"] for e in trail] == [
        "segment.approve",
        "segment.submit",
        "segment.update",
        "segment.reject",
        "segment.submit",
        "segment.create",
    ]
    update = trail[2]
    assert update["actor"] == "editor1"
    assert update["before"]["script"] == SCRIPT
    assert update["after"]["script"].endswith("125 hồ sơ.")


def test_transitions_out_of_order_are_refused(client: TestClient, world: dict) -> None:
    editor, approver = world["h"]["editor"], world["h"]["approver"]
    sid = _create(client, editor)["id"]
    r = client.post(f"/api/v1/segments/{sid}/approve", headers=approver)
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"segment {sid} is draft; only submitted segments can be approved"
    )
    assert (
        client.post(
            f"/api/v1/segments/{sid}/reject", json={"reason": "x"}, headers=approver
        ).status_code
        == 409
    )
    # Editors cannot approve their own work.
    client.post(f"/api/v1/segments/{sid}/submit", headers=editor)
    assert client.post(f"/api/v1/segments/{sid}/approve", headers=editor).status_code == 403
    assert (
        client.post(
            f"/api/v1/segments/{sid}/reject", json={"reason": ""}, headers=approver
        ).status_code
        == 422
    )
    assert client.get(f"/api/v1/segments/{sid}", headers=editor).json()["status"] == "submitted"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"title": "x" * 1_000_000}, "title: String should have at most 200 characters"),
        ({"target_month": "2024-13"}, "month must be YYYY-MM with a month from 01 to 12"),
        ({"programme": "weather"}, "unknown programme 'weather'"),
        ({"village_ids": [9999]}, "unknown village id(s) for station"),
        ({"topic": "gossip"}, "topic: Input should be"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"title": 12}, "title: Input should be a valid string"),
        ({"title": "  "}, "title: Value error, must not be empty"),
        ({"title": "bad\x07bell"}, "control character"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(
    client: TestClient, world: dict, body: dict, needle: str
) -> None:
    editor = world["h"]["editor"]
    full = {"title": "Tin", "programme": "cchc", "topic": "progress", **body}
    r = client.post("/api/v1/segments", json=full, headers=editor)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert client.get("/api/v1/segments", headers=editor).json()["total"] == 0


def test_text_is_stored_nfc(client: TestClient, world: dict) -> None:
    decomposed = unicodedata.normalize("NFD", "Biểu dương cá nhân làm tốt công tác CCHC")
    seg = _create(client, world["h"]["editor"], title=decomposed, script=decomposed)
    fetched = client.get(f"/api/v1/segments/{seg['id']}", headers=world["h"]["editor"]).json()
    assert fetched["title"] == unicodedata.normalize("NFC", decomposed)
    assert fetched["script"] == unicodedata.normalize("NFC", decomposed)


def test_stale_write_is_refused_and_the_first_edit_survives(
    client: TestClient, world: dict
) -> None:
    editor = world["h"]["editor"]
    seg = _create(client, editor)
    r = client.get(f"/api/v1/segments/{seg['id']}", headers=editor)
    etag = r.headers["ETag"]
    first = client.patch(
        f"/api/v1/segments/{seg['id']}",
        json={"title": "Bản của chị Lan"},
        headers={**editor, "If-Match": etag},
    )
    assert first.status_code == 200
    second = client.patch(
        f"/api/v1/segments/{seg['id']}",
        json={"title": "Bản của anh Minh"},
        headers={**editor, "If-Match": etag},
    )
    assert second.status_code == 412
    assert "has changed" in second.json()["detail"]
    no_version = client.patch(
        f"/api/v1/segments/{seg['id']}", json={"title": "Không phiên bản"}, headers=editor
    )
    assert no_version.status_code == 428
    final = client.get(f"/api/v1/segments/{seg['id']}", headers=editor).json()
    assert final["title"] == "Bản của chị Lan"


def test_racing_edits_one_wins_one_is_told(client: TestClient, world: dict) -> None:
    editor = world["h"]["editor"]
    seg = _create(client, editor)
    results: list[int] = []
    barrier = threading.Barrier(8)

    def edit(n: int) -> None:
        barrier.wait()
        r = client.patch(
            f"/api/v1/segments/{seg['id']}",
            json={"title": f"Bản {n}", "version": 1},
            headers=editor,
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 1
    assert all(code in (409, 412) for code in results if code != 200)
    final = client.get(f"/api/v1/segments/{seg['id']}", headers=editor).json()
    assert final["version"] == 2


def test_delete_only_while_draft_and_foreign_ids_are_404(client: TestClient, world: dict) -> None:
    editor, approver = world["h"]["editor"], world["h"]["approver"]
    keep = _create(client, editor)
    client.post(f"/api/v1/segments/{keep['id']}/submit", headers=editor)
    assert client.delete(f"/api/v1/segments/{keep['id']}", headers=editor).status_code == 409
    gone = _create(client, editor)
    assert client.delete(f"/api/v1/segments/{gone['id']}", headers=editor).status_code == 204
    assert client.get(f"/api/v1/segments/{gone['id']}", headers=editor).status_code == 404
    assert client.post(f"/api/v1/segments/{gone['id']}/submit", headers=editor).status_code == 404

    # Staff of another commune do not see this commune's segments.
    other = make_station("Xuân Hòa", villages=0)
    from app.accounts.models import Role
    from tests.helpers import login, make_user

    make_user("editor_xh", Role.editor, other["station_id"])
    foreign = login(client, "editor_xh")
    assert client.get(f"/api/v1/segments/{keep['id']}", headers=foreign).status_code == 404
    assert client.get("/api/v1/segments", headers=foreign).json()["total"] == 0
    # ... while the approver of Xuân Phúc still sees it.
    assert client.get(f"/api/v1/segments/{keep['id']}", headers=approver).status_code == 200


def test_list_is_newest_first_and_paginated(client: TestClient, world: dict) -> None:
    editor = world["h"]["editor"]
    ids = [
        _create(client, editor, title=f"Tin {n}", target_month=f"2024-{n:02d}")["id"]
        for n in range(1, 8)
    ]
    page1 = client.get("/api/v1/segments?limit=3", headers=editor).json()
    page2 = client.get("/api/v1/segments?limit=3&offset=3", headers=editor).json()
    assert page1["total"] == 7
    assert [s["id"] for s in page1["items"]] == ids[::-1][:3]
    assert [s["id"] for s in page2["items"]] == ids[::-1][3:6]
    march = client.get("/api/v1/segments?month=2024-03", headers=editor).json()
    assert [s["title"] for s in march["items"]] == ["Tin 3"]
    bad = client.get("/api/v1/segments?month=2024-13", headers=editor)
    assert bad.status_code == 422 and "month" in bad.json()["detail"]
    assert client.get("/api/v1/segments?limit=0", headers=editor).status_code == 422
