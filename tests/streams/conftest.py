"""Real Icecast servers for the hub's tests: the hub loaxa runs, and an upstream (another
Icecast fed by ffmpeg on its own mount, as a national station's server would be).

icecast2 is installed by scripts/bootstrap.sh: without it these tests fail, never skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.streams.config import Layout, Secrets, default_layout
from app.streams.hub import Icecast

UP_MOUNT = "/vov1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _icecast2() -> str:
    found = shutil.which("icecast2")
    assert found, "icecast2 is missing: scripts/bootstrap.sh installs it (apt icecast2)"
    return found


@dataclass
class Upstream:
    """A radio station's own Icecast, its programme fed by ffmpeg (a tone) on UP_MOUNT."""

    icecast: Icecast
    feeder: subprocess.Popen[bytes] | None = None
    frequency: int = 440
    cuts: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.icecast.base}{UP_MOUNT}"

    def feed(self) -> None:
        self.feeder = subprocess.Popen(
            [
                "ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi",
                "-i", f"sine=frequency={self.frequency}:sample_rate=44100",
                "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k",
                "-content_type", "audio/mpeg", "-f", "mp3",
                f"icecast://source:{self.icecast.secrets.source}@127.0.0.1:"
                f"{self.icecast.layout.port}{UP_MOUNT}",
            ],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: self.on_air(), 15, "the upstream's mount to come on air")

    def cut(self) -> None:
        assert self.feeder is not None
        self.feeder.terminate()
        self.feeder.wait(timeout=10)
        self.feeder = None

    def on_air(self) -> bool:
        sources = self.icecast.sources() or {}
        return bool(sources.get(UP_MOUNT, {}).get("stream_start_iso8601"))

    def listeners(self) -> int:
        """How many connections the upstream serves (the hub's relay is one)."""
        return int((self.icecast.sources() or {}).get(UP_MOUNT, {}).get("listeners", 0))

    def stop(self) -> None:
        if self.feeder is not None:
            self.cut()
        self.icecast.stop()


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    _icecast2()
    port = free_port()
    base = default_layout(port=port)
    layout = Layout(
        port=port,
        bind="127.0.0.1",
        auth_url="http://127.0.0.1:9/unused",
        log_dir=base.log_dir.with_name(base.log_dir.name + "-upstream"),
        run_as=base.run_as,
        burst_bytes=4096,  # a live station's server: what it sends is what is on air
    )
    folder = tmp_path / "upstream"
    if base.run_as is not None:
        folder = Path(f"/run/loaxa-test-upstream-{port}")
    icecast = Icecast(layout, Secrets("up-source", "up-relay", "up-admin"), folder)
    icecast.configure([])
    icecast.start()
    assert icecast.wait_ready(), "the upstream Icecast did not start"
    up = Upstream(icecast)
    up.feed()
    try:
        yield up
    finally:
        up.stop()
        if base.run_as is not None:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Hub:
    port: int
    thread: threading.Thread
    stop: threading.Event

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def hub(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Hub]:
    """The hub as `loaxa hub` runs it (app.streams.hub.run_hub), on a free port, asking the
    real loaxa server (server_url) about its listeners; playlists name that port."""
    from app.config import get_settings
    from app.streams.hub import run_hub

    _icecast2()
    port = free_port()
    monkeypatch.setenv("LOAXA_ICECAST_PORT", str(port))
    get_settings.cache_clear()
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            run_hub(
                stop=stop,
                port=port,
                auth_url=f"{server_url}/api/v1/streams/listener",
                secrets_dir=tmp_path / "hub",
                tick=0.5,
            )
        ),
        daemon=True,
    )
    thread.start()
    wait_for(
        lambda: _answers(f"http://127.0.0.1:{port}/status-json.xsl") or result,
        20,
        "the hub to come up",
    )
    assert not result, f"the hub exited with {result}"
    try:
        yield Hub(port, thread, stop)
    finally:
        stop.set()
        thread.join(timeout=20)
        monkeypatch.delenv("LOAXA_ICECAST_PORT")
        get_settings.cache_clear()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
