"""Shared by the trust tests: a real loaxa server on a loopback port, a gTTS stub, a world."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.config import get_settings
from app.tts.engines import GTTS_COOLDOWN
from tests.world import World, build_world


@pytest.fixture
def server_url(database_url: str) -> Iterator[str]:
    """The real loaxa app served by uvicorn in this process, on a free loopback port."""
    from app.main import create_app

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(), log_level="warning", lifespan="off", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


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
