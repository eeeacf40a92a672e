"""No traps in the segment queue through the API: withdrawing, deleting only one's own
draft, audio replaced and restored, search without diacritics, people's full names."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.accounts.models import Role
from tests.console.test_segments import tone_wav
from tests.helpers import login, make_station, make_user, staff


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


def _create(client: TestClient, headers: dict, **over: object) -> dict:
    body = {"title": "Kết quả CCHC quý I", "programme": "cchc", "topic": "progress"}
    r = client.post("/api/v1/segments", json={**body, **over}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_an_editor_withdraws_its_own_submission_but_not_an_approved_one(
    client: TestClient, world: dict
) -> None:
    editor, approver = world["h"]["editor"], world["h"]["approver"]
    make_user("editor2", Role.editor, world["station_id"])
    other = login(client, "editor2")
    sid = _create(client, editor, script="Kính thưa bà con.")["id"]
    assert client.post(f"/api/v1/segments/{sid}/submit", headers=editor).status_code == 200
    r = client.post(f"/api/v1/segments/{sid}/withdraw", headers=other)
    assert r.status_code == 403 and "only the editor who created" in r.json()["detail"]
    r = client.post(f"/api/v1/segments/{sid}/withdraw", headers=editor)
    assert r.status_code == 200 and r.json()["status"] == "draft"
    assert r.json()["submitted_at"] is None
    client.post(f"/api/v1/segments/{sid}/submit", headers=editor)
    assert client.post(f"/api/v1/segments/{sid}/approve", headers=approver).status_code == 200
    r = client.post(f"/api/v1/segments/{sid}/withdraw", headers=editor)
    assert r.status_code == 409 and "approved" in r.json()["detail"]
    assert client.get(f"/api/v1/segments/{sid}", headers=editor).json()["status"] == "approved"


def test_only_its_creator_deletes_a_draft(client: TestClient, world: dict) -> None:
    editor, admin = world["h"]["editor"], world["h"]["admin"]
    make_user("editor2", Role.editor, world["station_id"])
    other = login(client, "editor2")
    sid = _create(client, editor)["id"]
    r = client.delete(f"/api/v1/segments/{sid}", headers=other)
    assert r.status_code == 403 and "only the editor who created" in r.json()["detail"]
    assert client.get(f"/api/v1/segments/{sid}", headers=editor).status_code == 200
    assert client.delete(f"/api/v1/segments/{sid}", headers=editor).status_code == 204
    assert client.get(f"/api/v1/segments/{sid}", headers=editor).status_code == 404
    theirs = _create(client, other)["id"]
    assert client.delete(f"/api/v1/segments/{theirs}", headers=admin).status_code == 204


def test_replaced_audio_stays_in_the_history_and_comes_back(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    editor, viewer = world["h"]["editor"], world["h"]["viewer"]
    sid = _create(client, editor, script="Kính thưa bà con, xã thông báo.")["id"]
    with tone_wav(tmp_path / "a.wav", 2.0).open("rb") as fh:
        up = client.put(f"/api/v1/segments/{sid}/audio", files={"file": fh}, headers=editor)
    assert up.status_code == 200, up.text
    first = up.json()
    r = client.post(f"/api/v1/segments/{sid}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 200, r.text
    second_sha = client.get(f"/api/v1/segments/{sid}", headers=editor).json()["audio_sha256"]
    assert second_sha != first["audio_sha256"]

    history = client.get(f"/api/v1/segments/{sid}/audio-history", headers=viewer).json()
    assert [h["current"] for h in history] == [True, False]
    assert history[1]["sha256"] == first["audio_sha256"] and history[1]["origin"] == "upload"
    assert history[0]["origin"] == "tts" and history[0]["attached_by"] == "editor1"

    version = client.get(f"/api/v1/segments/{sid}", headers=editor).json()["version"]
    r = client.post(
        f"/api/v1/segments/{sid}/audio/restore",
        json={"audio_id": history[1]["audio_id"], "version": version - 1},
        headers=editor,
    )
    assert r.status_code == 412  # a stale restore never overwrites
    r = client.post(
        f"/api/v1/segments/{sid}/audio/restore",
        json={"audio_id": history[1]["audio_id"], "version": version},
        headers=editor,
    )
    assert r.status_code == 200 and r.json()["audio_sha256"] == first["audio_sha256"]
    again = client.get(f"/api/v1/segments/{sid}/audio-history", headers=editor).json()
    assert {h["sha256"] for h in again} == {first["audio_sha256"], second_sha}
    assert [h["sha256"] for h in again if h["current"]] == [first["audio_sha256"]]
    r = client.post(
        f"/api/v1/segments/{sid}/audio/restore", json={"audio_id": 999_999}, headers=editor
    )
    assert r.status_code == 404 and "never the audio" in r.json()["detail"]


def test_another_stations_audio_cannot_be_restored_or_listed(
    client: TestClient, world: dict, tmp_path: Path
) -> None:
    editor = world["h"]["editor"]
    sid = _create(client, editor, script="Kính thưa bà con.")["id"]
    with tone_wav(tmp_path / "a.wav", 2.0).open("rb") as fh:
        client.put(f"/api/v1/segments/{sid}/audio", files={"file": fh}, headers=editor)
    asset = client.get(f"/api/v1/segments/{sid}/audio-history", headers=editor).json()[0]
    other = make_station("Xuân Thái", villages=1)
    make_user("bientap2", Role.editor, other["station_id"])
    stranger = login(client, "bientap2")
    theirs = _create(client, stranger)["id"]
    listed = client.get(f"/api/v1/segments/{sid}/audio-history", headers=stranger)
    assert listed.status_code == 404
    r = client.post(
        f"/api/v1/segments/{sid}/audio/restore",
        json={"audio_id": asset["audio_id"]},
        headers=stranger,
    )
    assert r.status_code == 404
    # Nor made the audio of their own segment: it was never that segment's.
    r = client.post(
        f"/api/v1/segments/{theirs}/audio/restore",
        json={"audio_id": asset["audio_id"]},
        headers=stranger,
    )
    assert r.status_code == 404
    assert client.get(f"/api/v1/segments/{theirs}", headers=stranger).json()["audio_sha256"] is None


def test_an_approved_script_gets_its_first_audio_but_keeps_its_approved_audio(
    client: TestClient, world: dict
) -> None:
    editor, approver = world["h"]["editor"], world["h"]["approver"]
    sid = _create(client, editor, script="Kính thưa bà con, xã thông báo lịch họp.")["id"]
    client.post(f"/api/v1/segments/{sid}/submit", headers=editor)
    client.post(f"/api/v1/segments/{sid}/approve", headers=approver)
    r = client.post(f"/api/v1/segments/{sid}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 200, r.text
    seg = client.get(f"/api/v1/segments/{sid}", headers=editor).json()
    assert seg["status"] == "approved" and seg["audio_sha256"]
    r = client.post(f"/api/v1/segments/{sid}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 409  # approved audio changes only back in draft


def test_search_finds_words_whatever_their_case_and_diacritics(
    client: TestClient, world: dict
) -> None:
    editor = world["h"]["editor"]
    a = _create(client, editor, title="Cải cách Hành chính quý I")["id"]
    b = _create(client, editor, title="Lịch tiếp dân", script="Đường Đông Sơn sửa xong.")["id"]
    _create(client, editor, title="Tin khác 100%_")

    def found(q: str) -> list[int]:
        r = client.get("/api/v1/segments", params={"q": q}, headers=editor)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert found("hanh chinh") == [a]
    assert found("HÀNH   CHÍNH") == [a]
    assert found("duong dong son") == [b]  # đ/Đ → d
    assert found("tiep dan") == [b]
    assert found("%") == [s for s in found("100%_")]  # wildcards are plain characters
    assert found("hanh chinh xyz") == []
    long = client.get("/api/v1/segments", params={"q": "x" * 201}, headers=editor)
    assert long.status_code == 422


def test_users_have_a_full_name_shown_as_the_creator(client: TestClient, world: dict) -> None:
    admin = world["h"]["admin"]
    r = client.post(
        "/api/v1/users",
        json={
            "username": "lan.vh",
            "password": "mật-khẩu-dài",
            "role": "editor",
            "station_id": world["station_id"],
            "full_name": "Nguyễn Thị Lan",
        },
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["full_name"] == "Nguyễn Thị Lan"
    bad = client.post(
        "/api/v1/users",
        json={"username": "x.y", "password": "mật-khẩu-dài", "role": "editor",
              "station_id": world["station_id"], "full_name": "Lan\x1b[31m"},
        headers=admin,
    )
    assert bad.status_code == 422
    lan = login(client, "lan.vh", "mật-khẩu-dài")
    seg = _create(client, lan)
    assert seg["created_by"] == "lan.vh" and seg["created_by_name"] == "Nguyễn Thị Lan"
    r = client.patch(
        f"/api/v1/users/{r.json()['id']}", json={"full_name": "Nguyễn T. Lan"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["full_name"] == "Nguyễn T. Lan"
