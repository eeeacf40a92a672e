"""Admins manage users through the API: list, change role, disable, reset the password."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.db import unit_of_work
from tests.helpers import PASSWORD, login, make_station, make_user


def test_admin_lists_changes_disables_and_resets_users(client: TestClient) -> None:
    st = make_station(villages=0)
    editor_id = make_user("bientap", Role.editor, st["station_id"])
    make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    editor = login(client, "bientap")

    assert client.get("/api/v1/users", headers=editor).status_code == 403
    listed = client.get("/api/v1/users", headers=admin).json()
    assert [u["username"] for u in listed] == ["bientap", "quantri"]

    r = client.patch(f"/api/v1/users/{editor_id}", json={"role": "approver"}, headers=admin)
    assert r.status_code == 200 and r.json()["role"] == "approver"
    assert (
        client.patch(f"/api/v1/users/{editor_id}", json={"role": "x"}, headers=admin).status_code
        == 422
    )
    assert (
        client.patch("/api/v1/users/999", json={"role": "viewer"}, headers=admin).status_code == 404
    )

    # Disabled: the token issued before stops working at once, and no new one is issued.
    assert client.get("/api/v1/users/me", headers=editor).status_code == 200
    r = client.patch(f"/api/v1/users/{editor_id}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get("/api/v1/users/me", headers=editor).status_code == 401
    bad = client.post("/api/v1/auth/token", data={"username": "bientap", "password": PASSWORD})
    assert bad.status_code == 401
    client.patch(f"/api/v1/users/{editor_id}", json={"disabled": False}, headers=admin)
    # Enabled again: the old token stays dead (issue 21, finding 4); a new sign-in works.
    assert client.get("/api/v1/users/me", headers=editor).status_code == 401
    editor = login(client, "bientap")
    assert client.get("/api/v1/users/me", headers=editor).status_code == 200

    new = "mật-khẩu-mới-đủ-dài"
    r = client.post(f"/api/v1/users/{editor_id}/password", json={"password": new}, headers=admin)
    assert r.status_code == 204
    assert (
        client.post(
            f"/api/v1/users/{editor_id}/password", json={"password": "short"}, headers=admin
        ).status_code
        == 422
    )
    # The reset revokes the tokens issued under the old password (whoever holds one, the
    # reason for a reset), and the old password signs in no more.
    revoked = client.get("/api/v1/users/me", headers=editor)
    assert revoked.status_code == 401
    assert "password changed" in revoked.json()["detail"]
    assert client.get("/api/v1/users/me", headers=login(client, "bientap", new)).status_code == 200
    old = client.post("/api/v1/auth/token", data={"username": "bientap", "password": PASSWORD})
    assert old.status_code == 401

    with unit_of_work(write=False) as db:
        actions = db.scalars(
            select(AuditEvent.action).where(
                AuditEvent.entity == "user", AuditEvent.entity_id == editor_id
            )
        ).all()
    assert actions.count("user.update") == 3 and "user.password" in actions


def test_the_last_active_admin_cannot_be_demoted_or_disabled(client: TestClient) -> None:
    make_station(villages=0)
    first = make_user("quantri", Role.admin)
    admin = login(client, "quantri")
    for change in ({"role": "approver"}, {"disabled": True}):
        r = client.patch(f"/api/v1/users/{first}", json=change, headers=admin)
        assert r.status_code == 409 and "last active admin" in r.json()["detail"]
    second = make_user("quantri2", Role.admin)
    r = client.patch(f"/api/v1/users/{first}", json={"role": "approver"}, headers=admin)
    assert r.status_code == 200 and r.json()["station_id"] is not None
    other = login(client, "quantri2")
    r = client.patch(f"/api/v1/users/{second}", json={"disabled": True}, headers=other)
    assert r.status_code == 409
