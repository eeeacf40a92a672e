"""A commune's first month from the README's main command, on a 360 px phone: the editor
adds one segment by text-to-speech for the column being prepared and submits it; the
approver approves it, lets "Tự động xếp" fill the rundown and assembles the column. The
service is `loaxa up` as a real process (its scheduler makes the plan); every post is
followed by a reload that must create nothing twice, a refused one too; and the counted
actions (taps and fields filled) stay within the goal of 30."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.console.journey import (
    APPROVER,
    CHROMIUM,
    ROOT,
    Commune,
    first_month,
    running_commune,
    script_of,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GOAL_ACTIONS = 30
SHOTS = ROOT / "var" / "screenshots"


@pytest.fixture(scope="module")
def commune(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Commune]:
    with running_commune(tmp_path_factory.mktemp("journey")) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_a_month_from_nothing_to_assembled_on_a_phone(commune: Commune, browser: object) -> None:
    # One segment long enough for the 10-15 minute column: some 11 minutes read aloud.
    script = script_of(11 * 60 + 30)
    outcome = first_month(
        commune, browser, [("Kết quả cải cách hành chính tháng này", script)], shots=SHOTS
    )
    assert outcome.actions <= GOAL_ACTIONS, [(s.name, s.actions) for s in outcome.steps]
    assert outcome.reloads >= 4

    # What the API sees: one approved segment, in the column, which is assembled.
    headers = commune.token(APPROVER)
    column = httpx.get(f"{commune.base}/api/v1/broadcasts/{outcome.column['id']}",
                       headers=headers).json()
    assert column["status"] == "assembled" and column["master_sha256"]
    rundown = httpx.get(f"{commune.base}/api/v1/broadcasts/{column['id']}/rundown",
                        headers=headers).json()
    segments = [i for i in rundown["items"] if i["kind"] == "segment"]
    assert len(segments) == 1 and rundown["compliant"]
    listed = httpx.get(f"{commune.base}/api/v1/segments", headers=headers).json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "approved"

    # After assembling, the page is at the player, not at its top.
    page = outcome.approver.page
    assert page.url.endswith("#master")
    assert page.evaluate("window.scrollY") > 0
    for hands in (outcome.editor, outcome.approver):
        overflow = hands.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
    assert Path(SHOTS / "journey-01-bientap-sign-in.png").exists()
