"""`loaxa up`, the README's main command: the web server and the scheduler run together,
the rolling plan exists soon after a fresh start, a part that dies comes back, and one
SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.schedule.models import Broadcast, SchedulerProcess
from tests.helpers import make_station

STARTED = re.compile(r"(web server|scheduler|stream hub|push broker) started \(pid (\d+)\)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Up:
    """A `loaxa up` process and what its log says."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.hub_port = _free_port()  # the stream hub (Icecast), LOAXA_ICECAST_PORT
        self.mqtt_port = _free_port()  # the push broker (Mosquitto), LOAXA_MQTT_PORT
        self.log = ""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                "LOAXA_LOG_FORMAT": "text",
                "LOAXA_ICECAST_PORT": str(self.hub_port),
                "LOAXA_MQTT_PORT": str(self.mqtt_port),
                "LOAXA_MQTT_ENABLED": "1",
            },
        )
        os.set_blocking(self.process.stdout.fileno(), False)  # type: ignore[union-attr]

    def read(self) -> str:
        chunk = self.process.stdout.read()  # type: ignore[union-attr]
        self.log += chunk or ""
        return self.log

    def read_safely(self) -> str:
        """The log so far, also when nothing new has come (a non-blocking read then fails)."""
        try:
            return self.read()
        except TypeError:
            return self.log

    def pids(self) -> dict[str, int]:
        """The newest pid of each part, from the supervisor's log."""
        return {name: int(pid) for name, pid in STARTED.findall(self.read())}


def _wait_for(check: Callable[[], object], timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {check.__doc__ or check}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not reaped yet is a zombie: not running.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


@pytest.fixture
def start_up() -> Iterator[Callable[[int], Up]]:
    started: list[Up] = []

    def start(port: int) -> Up:
        started.append(Up(port))
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=30)
        pids = [pid for pid in running.pids().values() if _alive(pid)]
        for pid in pids:  # never leave a part behind, even on failure: asked first (the
            os.kill(pid, signal.SIGTERM)  # hub then stops its Icecast), then killed
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.2)
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_one_command_serves_plans_ahead_restarts_a_dead_part_and_stops_everything(
    session: Session, start_up: Callable[[int], Up]
) -> None:
    ids = make_station(villages=1)
    up = start_up(_free_port())
    base = f"http://127.0.0.1:{up.port}"

    def ready() -> bool:
        """the web server answers /readyz"""
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_for(ready)

    def planned_ahead() -> int:
        """the scheduler's first pass made the coming months' columns"""
        session.rollback()
        return (
            session.scalar(
                select(func.count())
                .select_from(Broadcast)
                .where(Broadcast.station_id == ids["station_id"], Broadcast.village_id.is_(None))
            )
            or 0
        )

    months = _wait_for(planned_ahead)
    assert isinstance(months, int) and months >= 11  # this month and the next ones
    first = up.pids()
    assert set(first) == {"web server", "scheduler", "stream hub", "push broker"}
    # The stream hub (Icecast) serves on its own port, its readiness checked.
    _wait_for(lambda: "stream hub is up" in up.read_safely())
    hub = httpx.get(f"http://127.0.0.1:{up.hub_port}/status-json.xsl", timeout=5)
    assert hub.status_code == 200 and "Icecast" in hub.json()["icestats"]["server_id"]
    # The push broker (Mosquitto) too, and the web server's publisher reaches it.
    _wait_for(lambda: "push broker is up" in up.read_safely())

    def push_ok() -> bool:
        """/readyz says the push broker answers"""
        return httpx.get(f"{base}/readyz", timeout=2).json().get("push_broker") == "ok"

    _wait_for(push_ok)

    # The scheduler dies: the supervisor starts a new one (after a 1 s pause).
    os.kill(first["scheduler"], signal.SIGKILL)

    def restarted() -> bool:
        """a second scheduler process beats"""
        session.rollback()
        return (session.scalar(select(func.count()).select_from(SchedulerProcess)) or 0) >= 2

    _wait_for(restarted)
    second = up.pids()
    assert second["scheduler"] != first["scheduler"]
    assert second["web server"] == first["web server"]
    assert ready()

    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=60) == 0, up.read()
    assert not any(_alive(pid) for pid in second.values())
    session.rollback()
    newest = session.scalars(
        select(SchedulerProcess).order_by(SchedulerProcess.started_at.desc())
    ).first()
    assert newest is not None and newest.stopped_at is not None  # stopped cleanly, not killed
    assert "all parts stopped" in up.read()


def test_a_part_that_cannot_start_stops_everything_and_says_which(
    session: Session, start_up: Callable[[int], Up]
) -> None:
    # Another program holds the port: the web server exits at once.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        blocked = start_up(port)
        code = blocked.process.wait(timeout=60)
        log = blocked.read()
    assert code == 1, log
    assert "web server did not start" in log
    pids = blocked.pids()
    assert "scheduler" in pids
    _wait_for(lambda: not _alive(pids["scheduler"]), timeout=30)
