"""The listening copy in a real browser: Debian's chromium (Playwright) against a real loaxa
server. A segment's audio uploaded through the API gets its light copy after the answer;
the console's player on a 360 px phone then plays that copy (AAC in MP4), as long as the
playout file, not the full MP3."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.console.test_browser import Person, _bearer, browser, server  # noqa: F401

pytestmark = pytest.mark.browser

NEWS = "Kính thưa bà con, Ủy ban nhân dân xã thông báo lịch tiếp công dân trong tháng này. "


def test_the_console_player_plays_the_light_copy_in_chromium(
    browser: object,  # noqa: F811
    server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    wav = tmp_path / "tin.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(wav), NEWS * 3], check=True)
    editor = _bearer(server, "editor1")
    created = httpx.post(f"{server}/api/v1/segments", headers=editor, json={
        "title": "Tin nghe thử", "programme": "cchc", "topic": "policy"})  # fmt: skip
    segment_id = int(created.json()["id"])
    with wav.open("rb") as fh:
        answer = httpx.put(
            f"{server}/api/v1/segments/{segment_id}/audio",
            headers=editor, files={"file": ("tin.wav", fh, "audio/wav")}, timeout=120,
        )  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["listen_url"] is None  # made after this answer, never before it
    deadline = time.monotonic() + 60
    while True:
        segment = httpx.get(f"{server}/api/v1/segments/{segment_id}", headers=editor).json()
        if segment["listen_url"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert segment["listen_url"], "no listening copy within a minute"
    light = httpx.get(f"{server}{segment['listen_url']}", headers=editor)
    full = httpx.get(f"{server}/api/v1/audio/{segment['audio_sha256']}", headers=editor)
    assert light.headers["content-type"] == "audio/mp4"
    assert len(light.content) <= len(full.content) / 4

    person = Person(browser, server, 360)
    person.sign_in("editor1")
    page = person.page  # type: ignore[attr-defined]
    page.goto(f"/segments/{segment_id}")
    player = page.locator("audio[controls]").first
    src = player.get_attribute("src") or ""
    copy_sha = segment["listen_url"].rsplit("/", 1)[1]
    assert src == f"/files/audio/{copy_sha}.m4a"
    played = player.evaluate(
        """async (audio) => {
            audio.muted = true;
            if (audio.readyState < 1) {
                await new Promise((ok, fail) => {
                    audio.addEventListener("loadedmetadata", ok, {once: true});
                    audio.addEventListener("error", () => fail(String(audio.error.code)));
                    audio.load();
                });
            }
            await audio.play();
            await new Promise((ok) => setTimeout(ok, 1200));
            audio.pause();
            return {duration: audio.duration, at: audio.currentTime, error: audio.error};
        }"""
    )
    assert played["error"] is None
    assert played["at"] > 0.5  # it played
    assert abs(played["duration"] * 1000 - segment["duration_ms"]) <= 50
    person.shot("segment-listen")
    person.close()
