"""Shared by the TTS tests: gTTS out of its cool-down, and a Google that never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from app.tts.engines import GTTS_COOLDOWN


@pytest.fixture(autouse=True)
def fresh_gtts_cooldown() -> Iterator[None]:
    """The process-wide breaker would carry one test's outage into the next."""
    GTTS_COOLDOWN.reset()
    yield
    GTTS_COOLDOWN.reset()


class SilentGoogle:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers.

    Google as it looks when it hangs: the connection is made, the request is sent, nothing
    comes back. ``accepted`` counts the connections.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.02)
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    @property
    def accepted(self) -> int:
        time.sleep(0.1)  # a connection just made is accepted within one poll
        return len(self.connections)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)  # held open, never read, never answered

    def __enter__(self) -> SilentGoogle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.connections:
            conn.close()
        self.server.close()


@pytest.fixture
def silent_google() -> Iterator[SilentGoogle]:
    with SilentGoogle() as server:
        yield server
