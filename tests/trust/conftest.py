"""Shared by the trust tests: a gTTS stub and a world (the real server is tests/conftest.py's)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import get_settings
from app.tts.engines import GTTS_COOLDOWN
from tests.world import World, build_world


class _BusyGoogle(BaseHTTPRequestHandler):
    """gTTS's endpoint answering 503 at once: "auto" falls back to espeak-ng quickly."""

    def do_POST(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_google(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """LOAXA_TTS_GTTS_ENDPOINT at a 127.0.0.1 stub: nothing leaves the machine."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BusyGoogle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(get_settings(), "tts_gtts_endpoint", url)
    monkeypatch.setattr(get_settings(), "tts_timeout_seconds", 2.0)
    GTTS_COOLDOWN.reset()
    try:
        yield url
    finally:
        GTTS_COOLDOWN.reset()
        server.shutdown()
        server.server_close()


@pytest.fixture
def world(client: TestClient, tmp_path: Path) -> World:
    return build_world(client, tmp_path)
