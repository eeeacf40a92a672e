"""`loaxa up`: every process one commune needs, started together and stopped together.

The README's main command runs this. Each part is a child process with its own command
line (the web server, the scheduler, and the parts beside the app that loaxa configures
itself); this module starts them, restarts one that dies, and stops them all on SIGTERM or
SIGINT (Ctrl-C), as systemd or docker-compose would for separate services.

Rules:
- A child that exits with an error before it first came up never started (a port taken, a
  database not migrated, a bad setting): everything is stopped and `loaxa up` exits
  non-zero, naming it. Restarting would only repeat the error every few seconds. A part
  with a readiness check (a health URL that answers) came up when the check first
  passed; one without, STARTUP_GRACE_S after its start. (One killed by a signal is
  restarted: something outside killed it.)
- A child that dies later is restarted after a pause that doubles from 1 s to 30 s, and
  falls back to 1 s once it has stayed up for a minute.
- Children run in sessions of their own, so Ctrl-C in a terminal reaches only this process,
  which then sends each child one SIGTERM (never a second Ctrl-C that would make uvicorn
  drop requests in flight), waits up to `stop_timeout` seconds in all, then kills what is
  left. On Linux each child also gets SIGTERM if this process dies without stopping it.
- The signal handlers only ask to stop; the loop does the stopping (see app.schedule.runner
  for why a handler must not do the work itself).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("loaxa.up")

STARTUP_GRACE_S = 10.0
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
POLL_S = 0.2

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Part:
    """One process to run: its name in logs, its command line, how to tell it is up."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None  # added to this process's environment
    ready: Callable[[], bool] | None = None  # e.g. http_ok(url)


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: `url` answers 200 (a listener that never answers is not ready:
    a port held by another program must not pass for ours)."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except (OSError, ValueError):
            return False

    return check


@dataclass
class _Running:
    part: Part
    process: subprocess.Popen[bytes]
    started_at: float
    came_up: bool = False
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    ready: bool = False


class StartupFailed(RuntimeError):
    """A part exited before it came up; everything was stopped."""


def loaxa_command(*args: str) -> list[str]:
    """A `loaxa` subcommand run with this process's Python (and so this checkout's code)."""
    return [sys.executable, "-m", "app.cli", *args]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(part: Part) -> subprocess.Popen[bytes]:
    # Line by line: the parts share the supervisor's log, read as it happens.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(part.env or {})}
    process = subprocess.Popen(list(part.argv), env=env, preexec_fn=_die_with_parent)
    log.info("%s started (pid %d)", part.name, process.pid)
    return process


class Supervisor:
    """Runs the parts until SIGTERM or SIGINT (or `stop()`), or until one fails to start."""

    def __init__(self, parts: Sequence[Part], *, stop_timeout: float = 20.0) -> None:
        self.parts = list(parts)
        self.stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._running: list[_Running] = []

    def stop(self) -> None:
        """Ask the loop to stop every part (safe from a signal handler or another thread)."""
        self._stop.set()

    def run(self) -> int:
        """Start every part, keep them running, stop them all; the exit code for `loaxa up`."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop.set())
        now = time.monotonic()
        self._running = [_Running(p, _spawn(p), now) for p in self.parts]
        try:
            self._watch()
        except StartupFailed as exc:
            log.error("%s", exc)
            self._stop_all()
            return 1
        self._stop_all()
        return 0

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            now = time.monotonic()
            for r in self._running:
                if r.restart_at is not None:
                    if now >= r.restart_at:
                        r.process, r.started_at, r.restart_at = _spawn(r.part), now, None
                    continue
                code = r.process.poll()
                up_for = now - r.started_at
                if code is None:
                    if not r.came_up and self._is_up(r, up_for):
                        r.came_up = True
                        log.info("%s is up", r.part.name)
                    continue
                if not r.came_up and code > 0:
                    raise StartupFailed(
                        f"{r.part.name} did not start (exit code {code}); stopping everything"
                    )
                r.came_up = True
                stable = up_for >= STABLE_AFTER_S
                r.backoff_s = FIRST_BACKOFF_S if stable else min(r.backoff_s * 2, MAX_BACKOFF_S)
                r.restart_at = now + r.backoff_s
                log.warning(
                    "%s exited with code %s after %.0f s; restarting in %.0f s",
                    r.part.name,
                    code,
                    up_for,
                    r.backoff_s,
                )

    @staticmethod
    def _is_up(r: _Running, up_for: float) -> bool:
        if r.part.ready is None:
            return up_for >= STARTUP_GRACE_S
        return r.part.ready()

    def _stop_all(self) -> None:
        alive = [r for r in self._running if r.restart_at is None and r.process.poll() is None]
        for r in alive:
            log.info("stopping %s (pid %d)", r.part.name, r.process.pid)
            r.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for r in alive:
            try:
                r.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s did not stop within %.0f s; killing it", r.part.name, self.stop_timeout
                )
                r.process.kill()
                r.process.wait()
        log.info("all parts stopped")
