"""Players: how the agent makes sound. A subprocess (ffplay, mpv) or a dry run that only logs."""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

log = logging.getLogger("loaxa.agent")

Clock = Callable[[], datetime]


class PlayerError(Exception):
    """The player could not be started."""


class Playback(Protocol):
    """A file being played."""

    def poll(self) -> int | None:
        """None while playing; the exit code (0: played to the end) once finished."""
        ...

    def stop(self) -> None:
        """Stop playing now (idempotent)."""
        ...


class Player(Protocol):
    """Starts playing a file, from an offset in seconds, without blocking."""

    def start(self, file: Path, *, offset_s: float, duration_s: float) -> Playback:
        """Start playing `file` at `offset_s`; `duration_s` is the file's whole length."""
        ...


def _find_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up here, in the agent, so that the forked child only has to call it.
_PRCTL = _find_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # If the agent is killed (SIGKILL, OOM), the player must not go on playing on its own:
    # a restarted agent would otherwise play over it.
    assert _PRCTL is not None
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        os._exit(1)


class SubprocessPlayback:
    """A player process, in its own process group so that stopping it stops its children."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def poll(self) -> int | None:
        """None while the process runs, else its exit code."""
        return self.process.poll()

    def stop(self) -> None:
        """Terminate the process group; kill it when it does not go within 2 s."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class SubprocessPlayer:
    """Runs a command line such as `ffplay -nodisp -autoexit -ss {offset_s} {file}`."""

    def __init__(self, command: str) -> None:
        self.template = shlex.split(command)
        if not self.template:
            raise ValueError("the player command is empty")

    def argv(self, file: Path, offset_s: float) -> list[str]:
        """The command line for one file (placeholders replaced inside each argument)."""
        offset = f"{max(offset_s, 0.0):.3f}"
        return [
            arg.replace("{file}", str(file)).replace("{offset_s}", offset) for arg in self.template
        ]

    def start(self, file: Path, *, offset_s: float, duration_s: float) -> SubprocessPlayback:
        """Start the player process."""
        argv = self.argv(file, offset_s)
        log.debug("player: %s", shlex.join(argv))
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
        except OSError as exc:
            raise PlayerError(f"cannot run {argv[0]}: {exc}") from exc
        return SubprocessPlayback(process)


class ClockPlayback:
    """A pretend playback that lasts as long as the file would, on the agent's clock."""

    def __init__(self, clock: Clock, ends_at: datetime) -> None:
        self._clock = clock
        self._ends_at = ends_at
        self._stopped = False

    def poll(self) -> int | None:
        """0 once the file's time is up (or it was stopped), else None."""
        return 0 if self._stopped or self._clock() >= self._ends_at else None

    def stop(self) -> None:
        """Stop pretending."""
        self._stopped = True


class DryRunPlayer:
    """Logs what would play and when, and takes the file's time on the agent's clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def start(self, file: Path, *, offset_s: float, duration_s: float) -> ClockPlayback:
        """Log "would play" and return a playback that ends when the file would."""
        now = self._clock()
        log.info("would play %s at %s (from %.1f s)", file, now.isoformat(), offset_s)
        remaining = max(duration_s - offset_s, 0.0)
        return ClockPlayback(self._clock, now + timedelta(seconds=remaining))
