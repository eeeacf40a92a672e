"""A station with one user of each role, and signed-in console clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.accounts.models import Role
from tests.console.helpers import sign_in
from tests.helpers import make_station, make_user


@pytest.fixture
def station(database_url: str) -> dict[str, object]:
    """Xuân Phúc with three villages, and users viewer1, editor1, approver1, admin."""
    st = make_station()
    for role in (Role.viewer, Role.editor, Role.approver):
        make_user(f"{role.value}1", role, st["station_id"])  # type: ignore[arg-type]
    make_user("admin", Role.admin)
    return st


@pytest.fixture
def browser_client(station: dict[str, object]) -> Iterator[Callable[[], TestClient]]:
    """A function giving a fresh, signed-out console client (its own cookie jar)."""
    from app.main import create_app

    app = create_app()
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def as_role(browser_client: Callable[[], TestClient]) -> Callable[[str], TestClient]:
    """A function giving a console client signed in as `<role>1` (or `admin`)."""

    def make(role: str) -> TestClient:
        client = browser_client()
        sign_in(client, "admin" if role == "admin" else f"{role}1")
        return client

    return make
