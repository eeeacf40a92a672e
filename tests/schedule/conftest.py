"""Fixtures shared by the scheduling tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.config import get_settings


class _Hook(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A local webhook receiver, configured for this process and the ones it starts."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.bodies = []
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    monkeypatch.setattr(get_settings(), "warnings_webhook_url", url)
    monkeypatch.setenv("LOAXA_WARNINGS_WEBHOOK_URL", url)
    try:
        yield _Hook.bodies
    finally:
        server.shutdown()
