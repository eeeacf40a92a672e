""" "Nói trực tiếp" on a 360 px phone, in a real browser (Debian's chromium, Playwright) whose
fake microphone plays a tone: the console's WebSocket feeds the session's mount on a real
hub (`loaxa hub`, Icecast), the real agent of the station's PC plays that tone within 5 s
of the first frame on the mount, "Kết thúc" returns it to its schedule, and the session's
recording is kept on target loudness.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    SETUP,
    Person,
    _bearer,
    _free_port,
)
from tests.helpers import PASSWORD
from tests.streams.test_live import Running, on_air, tone_seconds

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TONE_HZ = 880


class Hub:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Hub]]:
    """A seeded loaxa server and its hub (`loaxa hub`), each a process, on free ports."""
    data_dir = tmp_path_factory.mktemp("browser-live")
    hub_port, port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOAXA_")}
    env.update(
        LOAXA_DATA_DIR=str(data_dir),
        LOAXA_SECRET_KEY="browser-test-secret-" + "x" * 40,
        LOAXA_ADMIN_PASSWORD=PASSWORD,
        LOAXA_TTS_GTTS_ENDPOINT="http://127.0.0.1:9/",
        LOAXA_ICECAST_PORT=str(hub_port),
        PYTHONPATH=str(ROOT),
    )
    subprocess.run([sys.executable, "-c", SETUP], env=env, cwd=ROOT, check=True)
    base = f"http://127.0.0.1:{port}"
    log = (data_dir / "server.log").open("wb")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "hub", "--port", str(hub_port),
             "--auth-url", f"{base}/api/v1/streams/listener"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        for url in (f"{base}/healthz", f"http://127.0.0.1:{hub_port}/status-json.xsl"):
            while True:
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise RuntimeError((data_dir / "server.log").read_text(errors="replace"))
                time.sleep(0.2)
        yield base, Hub(hub_port)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def tone_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Chromium whose fake microphone plays a tone (looped)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh (apt-get install chromium)")
    wav = tmp_path_factory.mktemp("mic") / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency={TONE_HZ}:duration=20", "-af", "volume=0.5",
         "-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le", str(wav)],
        check=True,
    )  # fmt: skip
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        yield chromium
        chromium.close()


def test_speak_live_from_a_phone_reaches_the_station_pc_within_5_s(
    tone_browser: object, live_server: tuple[str, Hub], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, hub = live_server
    admin = _bearer(base, "admin")
    station_id = httpx.get(f"{base}/api/v1/stations", headers=admin).json()[0]["id"]
    r = httpx.post(
        f"{base}/api/v1/devices",
        json={"name": "Máy phát thử", "station_id": station_id},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    agent = Running(base, r.json()["token"], tmp_path / "pc")
    official = Person(tone_browser, base, 360)
    page = official.page
    try:
        official.sign_in("approver1")
        page.goto("/emergency")
        page.get_by_role("button", name="Nói trực tiếp").click()
        expect(page.get_by_role("button", name="Kết thúc")).to_be_visible()
        live_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        live = httpx.get(f"{base}/api/v1/live/{live_id}", headers=admin).json()
        mount = live["source"]["mount"]
        page.get_by_role("button", name="Nói trực tiếp").click()
        expect(page.get_by_role("status").last).to_contain_text("Đang phát trực tiếp")
        deadline = time.monotonic() + 15
        while not on_air(hub, mount):  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the console's feed never reached the mount"
            time.sleep(0.1)
        first_frame = time.monotonic()
        while not any(tone_seconds(p, TONE_HZ) >= 0.5 for p in agent.heard.glob("stream-*.raw")):
            assert time.monotonic() - first_frame < 5, (
                "no tone from the player within 5 s",
                [
                    (p.name, p.stat().st_size, tone_seconds(p, TONE_HZ))
                    for p in agent.heard.glob("*")
                ],
            )
            time.sleep(0.1)
        official.shot("live-speaking")
        page.wait_for_timeout(4000)
        page.get_by_role("button", name="Kết thúc").click()
        expect(page.get_by_role("status").first).to_contain_text("Đã kết thúc phát trực tiếp")
        deadline = time.monotonic() + 10
        while agent.playing:
            assert time.monotonic() < deadline, "the device did not leave the live session"
            time.sleep(0.1)
    finally:
        agent.stop()
    deadline = time.monotonic() + 60
    while True:
        live = httpx.get(f"{base}/api/v1/live/{live_id}", headers=admin).json()
        if live["recording_ms"] is not None or live["recording_note"] is not None:
            break
        assert time.monotonic() < deadline, "the recording was not kept"
        time.sleep(0.5)
    assert live["recording_note"] is None and live["recording_ms"] >= 3000, live
    assert abs(live["recording_loudness_lufs"] + 16) <= 1.0, live
    official.close()
