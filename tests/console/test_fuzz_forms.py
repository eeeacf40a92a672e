"""Fuzzing the console's forms: every POST route of every console page, as every role and
signed out, with generated field values (Hypothesis): never a 5xx, neither on the answer to
the post nor on the page it redirects to (where a refusal is shown again).

The values mix what people type and what attackers send: Vietnamese text, control
characters, superscript and other non-ASCII digits ("²" passes str.isdigit()), 30-digit
numbers, very long text, the ids that exist and ones that do not. Most posts carry the
session's CSRF token, so they reach the forms' checks rather than stopping at the token.

Budget: CONSOLE_FUZZ_EXAMPLES cases (default 120, some tens of seconds) in the default run;
`-m fuzz` adds the long run with LOAXA_CONSOLE_FUZZ_EXAMPLES (default 1500).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from app.console.router import ROUTERS
from app.console.routing import ConsoleRoute
from app.db import unit_of_work
from tests.console.helpers import TOKEN, make_segment, sign_in

ROLES = ("signed-out", "viewer", "editor", "approver", "admin")
# Signing out would leave the rest of the run signed out: it has its own tests.
SKIPPED = {"/signout"}
FIELDS = [
    "title", "topic", "programme", "target_month", "script", "village_ids", "version",
    "engine", "replace", "audio_id", "reason", "segment_id", "scope", "op", "add",
    "username", "password", "full_name", "role", "station_id", "disabled", "name",
    "hotline", "network", "report_number_pattern", "report_signer_name",
    "report_signer_title", "report_recipients", "village_name", "weekdays", "time", "clear",
    "by", "day", "week", "weekday", "min", "max", "place", "next", "_page",
]
NASTY = [
    "²", "١٢", "１２", "1" * 30, "-1", "0", "00", "2147483648", "9" * 19, "1e3", " 7 ", "",
    "\x00", "Tin\x07\x1b[31m", "x" * 25_000, "2024-13", "9999-01", "24:00", "99:99",
    "up:²", "down:1", "remove:999999999999", "add", "save", "villages", "station", "1:²",
    "1:", ":1", "/admin", "//evil.example", "/api/v1/segments", "cchc", "espeak", "auto",
    "1", "2", "3", "Hành chính", "Đường Đông", "\u0301", "\ud7ff", "{n}/BC", "{n}{n}",
]
text_values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
fields = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=8)),
    st.one_of(text_values, st.lists(text_values, min_size=2, max_size=3)),
    max_size=8,
)


def _post_routes() -> list[ConsoleRoute]:
    found = []
    for router in ROUTERS:
        for route in router.routes:
            posts = isinstance(route, ConsoleRoute) and "POST" in route.methods
            if posts and route.path not in SKIPPED:
                found.append(route)
    return found


ROUTES = _post_routes()
PARAM = re.compile(r"\{(\w+)\}")


def _settings(examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a failure reproduces
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
def clients(
    browser_client: Callable[[], TestClient], station: dict[str, Any]
) -> dict[str, Any]:
    made: dict[str, Any] = {}
    for role in ROLES:
        client = browser_client()
        if role != "signed-out":
            sign_in(client, "admin" if role == "admin" else f"{role}1")
        found = TOKEN.search(client.get("/").text)
        made[role] = (client, found[1] if found else "")
    # Something for the ids to find: a draft without a script (so that "Đọc thử" refuses
    # at once instead of spending seconds reading), and the station's first village.
    segment_id = make_segment("editor1")
    with unit_of_work() as db:
        from app.segments.models import Segment

        segment = db.get(Segment, segment_id)
        assert segment is not None
        segment.script = None
    made["ids"] = [str(segment_id), str(station["station_id"]), str(station["village_ids"][0])]
    return made


def _fuzz(clients: dict[str, Any], data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(ROUTES), label="route")
    role = data.draw(st.sampled_from(ROLES), label="role")
    client, token = clients[role]
    path = route.path
    for name in PARAM.findall(route.path):
        value = data.draw(
            st.sampled_from([*clients["ids"], "999999", "cchc", "village-weekly"]), label=name
        )
        path = path.replace("{" + name + "}", value)
    body: dict[str, Any] = data.draw(fields, label="fields")
    if data.draw(st.booleans(), label="with token") or data.draw(st.booleans()):
        body["csrf_token"] = token
    files = None
    if route.path.endswith(("/audio", "/new")) and data.draw(st.booleans(), label="file"):
        files = {"file": ("a.mp3", data.draw(st.binary(max_size=300), label="bytes"))}
    r = client.post(path, data=body, files=files, follow_redirects=False)
    assert r.status_code < 500, (role, path, body, r.text[:500])
    if r.status_code in (302, 303):
        shown = client.get(r.headers["location"].split("#")[0], follow_redirects=False)
        assert shown.status_code < 500, (role, path, body, "then", r.headers["location"])


EXAMPLES = int(os.environ.get("CONSOLE_FUZZ_EXAMPLES", "120"))
LONG_EXAMPLES = int(os.environ.get("LOAXA_CONSOLE_FUZZ_EXAMPLES", "1500"))


def test_console_forms_never_answer_5xx(clients: dict[str, Any]) -> None:
    """Every console POST route, every role and signed out: no 5xx (the default run)."""
    given(data=st.data())(_settings(EXAMPLES)(lambda data: _fuzz(clients, data)))()


@pytest.mark.fuzz
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_console_forms_never_answer_5xx_long(clients: dict[str, Any]) -> None:
    """The same, with LOAXA_CONSOLE_FUZZ_EXAMPLES cases (`-m fuzz`)."""
    given(data=st.data())(_settings(LONG_EXAMPLES)(lambda data: _fuzz(clients, data)))()


def test_the_fuzzer_reaches_every_console_form() -> None:
    """A new page's form is fuzzed without being named here."""
    paths = {r.path for r in ROUTES}
    for expected in ("/segments/new", "/segments/{segment_id}/audio/restore", "/admin/users/new",
                     "/devices/new", "/emergency/confirm", "/schedule/{broadcast_id}/rundown",
                     "/signin"):
        assert expected in paths
