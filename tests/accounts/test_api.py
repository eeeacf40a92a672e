"""Sign-in, tokens and roles through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app import clock
from app.accounts.models import Role
from tests.helpers import PASSWORD, login, make_station, make_user


def test_token_is_issued_for_the_right_password_and_opens_the_api(client: TestClient) -> None:
    make_station(villages=0)
    make_user("bientap", Role.editor)
    r = client.post("/api/v1/auth/token", data={"username": "bientap", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "bientap"
    assert me.json()["role"] == "editor"


def test_wrong_password_and_unknown_user_get_the_same_401(client: TestClient) -> None:
    make_station(villages=0)
    make_user("bientap", Role.editor)
    wrong = client.post("/api/v1/auth/token", data={"username": "bientap", "password": "nope-nope"})
    unknown = client.post("/api/v1/auth/token", data={"username": "ghost", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "incorrect username or password"}


def test_no_token_gets_401_and_a_forged_one_too(client: TestClient) -> None:
    r = client.get("/api/v1/segments")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    forged = client.get("/api/v1/segments", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401


def test_token_expires_by_the_loaxa_clock(client: TestClient) -> None:
    make_station(villages=0)
    make_user("bientap", Role.editor)
    start = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    clock.set_now(lambda: start)
    headers = login(client, "bientap")
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    clock.set_now(lambda: start + timedelta(hours=8, seconds=1))
    r = client.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_only_admins_create_users_and_names_are_unique(client: TestClient) -> None:
    make_user("quantri", Role.admin)
    make_station(villages=0)
    make_user("bientap", Role.editor)
    admin, editor = login(client, "quantri"), login(client, "bientap")
    body = {"username": "pheduyet", "password": "một-mật-khẩu", "role": "approver"}
    assert client.post("/api/v1/users", json=body, headers=editor).status_code == 403
    created = client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201
    assert created.json()["role"] == "approver"
    assert "password" not in created.json() and "password_hash" not in created.json()
    again = client.post("/api/v1/users", json=body, headers=admin)
    assert again.status_code == 409
    assert "pheduyet" in again.json()["detail"]
    assert login(client, "pheduyet", "một-mật-khẩu")


def test_user_creation_rejects_bad_roles_and_short_passwords(client: TestClient) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    r = client.post(
        "/api/v1/users",
        json={"username": "x1", "password": "short", "role": "chief"},
        headers=admin,
    )
    assert r.status_code == 422
    assert "password" in r.json()["detail"] and "role" in r.json()["detail"]


def test_viewer_is_refused_every_write(client: TestClient) -> None:
    ids = make_station()
    make_user("lanhdao", Role.viewer, ids["station_id"])
    viewer = login(client, "lanhdao")
    writes = [
        ("post", "/api/v1/segments", {"title": "t", "programme": "cchc", "topic": "progress"}),
        ("post", "/api/v1/stations", {"name": "Xuân Hòa"}),
        ("post", f"/api/v1/stations/{ids['station_id']}/villages", {"name": "Thôn 9"}),
        ("post", "/api/v1/devices", {"name": "PC", "station_id": ids["station_id"]}),
        ("post", "/api/v1/users", {"username": "abc", "password": "12345678", "role": "admin"}),
    ]
    for method, path, body in writes:
        r = client.request(method.upper(), path, json=body, headers=viewer)
        assert r.status_code == 403, (path, r.text)
        assert "role" in r.json()["detail"]
    assert client.get("/api/v1/segments", headers=viewer).status_code == 200


def test_health_and_readiness_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


def test_staff_belong_to_a_station_and_see_only_it(client: TestClient) -> None:
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    # No station yet: staff cannot be created without one.
    body = {"username": "bientap", "password": "một-mật-khẩu", "role": "editor"}
    r = client.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 422 and "station_id is required" in r.json()["detail"]
    first = make_station("Xuân Phúc", villages=0)["station_id"]
    # One station: staff created without station_id belong to it.
    r = client.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["station_id"] == first
    second = make_station("Xuân Hòa", villages=0)["station_id"]
    r = client.post("/api/v1/users", json={**body, "username": "bientap2"}, headers=admin)
    assert r.status_code == 422
    editor = login(client, "bientap", "một-mật-khẩu")
    assert [s["id"] for s in client.get("/api/v1/stations", headers=editor).json()] == [first]
    assert client.get(f"/api/v1/stations/{second}", headers=editor).status_code == 404
    r = client.post(
        "/api/v1/segments",
        json={"title": "T", "programme": "cchc", "topic": "other", "station_id": second},
        headers=editor,
    )
    assert r.status_code == 404
