"""Text-to-speech through the API: preview, drafting with espeak-ng, fallback, cache."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import clock
from app.config import get_settings
from tests.helpers import make_station, staff
from tests.tts.conftest import SilentGoogle

SCRIPT = (
    "Kính thưa bà con! UBND xã thông báo: Bộ phận tiếp nhận và trả kết quả làm việc "
    "từ 7h30 đến 17h00 các ngày trong tuần.\n\nMọi phản ánh xin gọi đường dây nóng 0237.3868.115."
)


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


class _Refusing(BaseHTTPRequestHandler):
    """Google's endpoint as it looks when it is rate-limiting us."""

    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.send_response(429)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_gtts(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Refusing]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Refusing.hits = 0
    monkeypatch.setattr(
        get_settings(), "tts_gtts_endpoint", f"http://127.0.0.1:{server.server_address[1]}"
    )
    monkeypatch.setattr(get_settings(), "tts_timeout_seconds", 2.0)
    try:
        yield _Refusing
    finally:
        server.shutdown()


def _segment(client: TestClient, h: dict, script: str = SCRIPT) -> dict:
    r = client.post(
        "/api/v1/segments",
        json={
            "title": "Thông báo",
            "programme": "cchc",
            "topic": "one-stop-desk",
            "script": script,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_preview_reads_abbreviations_and_the_station_dictionary(
    client: TestClient, world: dict
) -> None:
    editor = world["h"]["editor"]
    r = client.get("/api/v1/tts/preview", params={"text": "UBND xã họp lúc 7h30."}, headers=editor)
    assert r.status_code == 200
    assert r.json()["text"] == "Ủy ban nhân dân xã họp lúc bảy giờ ba mươi phút."
    put = client.put(
        f"/api/v1/stations/{world['station_id']}/abbreviations",
        json={"entries": {"BHXH": "bảo hiểm xã hội"}},
        headers=editor,
    )
    assert put.status_code == 200
    r = client.get("/api/v1/tts/preview", params={"text": "Nộp BHXH đúng hạn."}, headers=editor)
    assert r.json()["text"] == "Nộp bảo hiểm xã hội đúng hạn."
    empty = client.get("/api/v1/tts/preview", params={"text": "   "}, headers=editor)
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert (
        client.get(
            "/api/v1/tts/preview", params={"text": "x"}, headers=world["h"]["viewer"]
        ).status_code
        == 403
    )


def test_espeak_drafts_audio_once_and_the_cache_answers_again(
    client: TestClient, world: dict
) -> None:
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    r = client.post(f"/api/v1/segments/{seg['id']}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tts_engine"] == "espeak" and body["cached"] is False
    assert body["duration_ms"] > 5_000
    # Normalised towards -16 LUFS; espeak-ng's peaky speech hits the -1 dBFS ceiling first
    # (no limiter yet), so it may come out quieter, never louder.
    assert -23.0 <= body["loudness_lufs"] <= -15.0
    other = _segment(client, editor)
    again = client.post(
        f"/api/v1/segments/{other['id']}/tts", json={"engine": "espeak"}, headers=editor
    ).json()
    assert again["cached"] is True and again["audio_sha256"] == body["audio_sha256"]


def test_auto_falls_back_to_espeak_when_gtts_is_refused(
    client: TestClient, world: dict, refusing_gtts: type[_Refusing]
) -> None:
    editor = world["h"]["editor"]
    seg = _segment(client, editor, "Thông báo lịch tiếp công dân tháng 3.")
    r = client.post(f"/api/v1/segments/{seg['id']}/tts", json={"engine": "auto"}, headers=editor)
    assert r.status_code == 200, r.text
    assert r.json()["tts_engine"] == "espeak"
    assert refusing_gtts.hits >= 1  # gTTS really asked (the stub), then espeak-ng took over


@pytest.fixture
def hanging_gtts(silent_google: SilentGoogle) -> Iterator[SilentGoogle]:
    """LOAXA_TTS_GTTS_ENDPOINT at a Google that never answers, with a 0.3 s timeout."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOAXA_TTS_GTTS_ENDPOINT", silent_google.url)
        env.setenv("LOAXA_TTS_TIMEOUT_SECONDS", "0.3")
        get_settings.cache_clear()
        try:
            yield silent_google
        finally:
            env.undo()
            get_settings.cache_clear()


def test_auto_skips_a_hanging_google_for_the_cooldown(
    client: TestClient, world: dict, hanging_gtts: SilentGoogle
) -> None:
    editor = world["h"]["editor"]
    assert get_settings().tts_gtts_cooldown_seconds == 300  # the default: five minutes

    def draft(script: str) -> tuple[dict, float]:
        seg = _segment(client, editor, script)
        started = time.monotonic()
        r = client.post(
            f"/api/v1/segments/{seg['id']}/tts", json={"engine": "auto"}, headers=editor
        )
        assert r.status_code == 200, r.text
        assert r.json()["tts_engine"] == "espeak"
        return r.json(), time.monotonic() - started

    t0 = clock.now()
    clock.set_now(lambda: t0)
    first, first_s = draft("Thông báo lịch tiếp công dân tháng 3.")
    assert hanging_gtts.accepted == 3 and first_s > 3 * 0.3 + 1.5
    assert any("because gTTS failed" in w and "timeout" in w for w in first["warnings"])

    clock.set_now(lambda: t0 + timedelta(minutes=4))
    # Skipped: no connection made (what a wall-time comparison would only suggest).
    second, _ = draft("Thông báo lịch họp dân thôn 2.")
    assert hanging_gtts.accepted == 3  # straight to espeak-ng: no connection
    local = get_settings().tz
    until, at = (t0 + timedelta(minutes=5)).astimezone(local), t0.astimezone(local)
    assert any(
        f"gTTS skipped until {until:%H:%M} +07 after a failure at {at:%H:%M} +07" in w
        for w in second["warnings"]
    ), second["warnings"]

    clock.set_now(lambda: t0 + timedelta(minutes=5, seconds=1))
    third, _ = draft("Thông báo lịch tiêm phòng.")
    assert hanging_gtts.accepted == 6  # the cool-down is over: gTTS is asked again
    assert any("because gTTS failed" in w for w in third["warnings"])


def test_changing_a_pause_setting_misses_the_cache(
    client: TestClient, world: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = world["h"]["editor"]

    def draft() -> dict:
        seg = _segment(client, editor)
        r = client.post(
            f"/api/v1/segments/{seg['id']}/tts", json={"engine": "espeak"}, headers=editor
        )
        assert r.status_code == 200, r.text
        return r.json()

    first = draft()
    assert draft()["cached"] is True
    monkeypatch.setattr(get_settings(), "tts_paragraph_pause_ms", 1900)
    longer = draft()
    assert longer["cached"] is False and longer["audio_sha256"] != first["audio_sha256"]
    assert longer["duration_ms"] == pytest.approx(first["duration_ms"] + 1000, abs=60)
    monkeypatch.setattr(get_settings(), "tts_sentence_pause_ms", 100)
    assert draft()["cached"] is False
    monkeypatch.setattr(get_settings(), "tts_sentence_pause_ms", 350)
    again = draft()
    assert again["cached"] is True and again["audio_sha256"] == longer["audio_sha256"]


def test_gtts_alone_failing_is_a_503_and_the_segment_is_unchanged(
    client: TestClient, world: dict, refusing_gtts: type[_Refusing]
) -> None:
    editor = world["h"]["editor"]
    seg = _segment(client, editor, "Thông báo lịch tiếp công dân tháng 3.")
    r = client.post(f"/api/v1/segments/{seg['id']}/tts", json={"engine": "gtts"}, headers=editor)
    assert r.status_code == 503
    assert "text-to-speech failed" in r.json()["detail"] and "429" in r.json()["detail"]
    after = client.get(f"/api/v1/segments/{seg['id']}", headers=editor).json()
    assert after["audio_sha256"] is None and after["version"] == seg["version"]


@pytest.mark.parametrize(
    ("script", "status", "needle"),
    [("🎉🎉🎉", 422, "nothing"), ("\x00\x01", 422, "control")],
)
def test_unreadable_scripts_are_refused(
    client: TestClient, world: dict, script: str, status: int, needle: str
) -> None:
    editor = world["h"]["editor"]
    seg = client.post(
        "/api/v1/segments",
        json={"title": "T", "programme": "cchc", "topic": "other", "script": "tạm"},
        headers=editor,
    ).json()
    # Control characters cannot even be stored; emoji-only text can, but not be read.
    patch = client.patch(
        f"/api/v1/segments/{seg['id']}", json={"script": script, "version": 1}, headers=editor
    )
    if patch.status_code == 422:
        assert needle in patch.json()["detail"]
        return
    r = client.post(f"/api/v1/segments/{seg['id']}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == status
    assert needle in r.json()["detail"]


def test_script_less_and_approved_segments_get_clear_errors(
    client: TestClient, world: dict
) -> None:
    editor, approver = world["h"]["editor"], world["h"]["approver"]
    bare = client.post(
        "/api/v1/segments",
        json={"title": "T", "programme": "cchc", "topic": "other"},
        headers=editor,
    ).json()
    r = client.post(f"/api/v1/segments/{bare['id']}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 422 and "no script" in r.json()["detail"]
    seg = _segment(client, editor)
    assert client.post(f"/api/v1/segments/{seg['id']}/submit", headers=editor).status_code == 200
    approved = client.post(f"/api/v1/segments/{seg['id']}/approve", headers=approver)
    assert approved.json()["status"] == "approved"
    # Its text was approved before recording: it may get its first audio, and only that.
    r = client.post(f"/api/v1/segments/{seg['id']}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/segments/{seg['id']}/tts", json={"engine": "espeak"}, headers=editor)
    assert r.status_code == 409 and "draft" in r.json()["detail"]
    r = client.post(
        f"/api/v1/segments/{seg['id']}/tts", json={"engine": "festival"}, headers=editor
    )
    assert r.status_code == 422


def test_cli_tts_writes_a_playout_mp3(tmp_path: Path, database_url: str) -> None:
    out = tmp_path / "thong-bao.mp3"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "tts",
            "UBND xã thông báo lịch họp.",
            "-o",
            str(out),
            "--engine",
            "espeak",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "ủy ban nhân dân" in r.stdout.lower()
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,channels",
            "-of",
            "csv=p=0",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "mp3,1"
