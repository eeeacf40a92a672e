"""Players: how the agent makes sound. A subprocess (ffplay, mpv) or a dry run that only logs.

The player must never outlive the agent (a restarted agent would play over it): on Linux the
child asks the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG); on Windows
every player is put in a job object that the system closes, killing the player, when the
agent's process ends, however it ends. Elsewhere (macOS, BSD) a hard-killed agent can leave
its player running to the end of the file.
"""

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
from typing import Any, Protocol

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

    def start(self, file: Path | str, *, offset_s: float, duration_s: float) -> Playback:
        """Start playing `file` (a path, or a stream's URL) at `offset_s`; `duration_s` is
        the file's whole length (a stream's window)."""
        ...


WINDOWS = sys.platform == "win32"


def split_command(command: str, *, windows: bool = WINDOWS) -> list[str]:
    """A command line's arguments: POSIX shell quoting; on Windows, backslashes are literal.

    `"C:\\Program Files\\mpv\\mpv.exe" --start={offset_s} {file}` keeps its path whole on
    Windows, where a POSIX split would take each backslash for an escape and drop it.
    """
    if not windows:
        return shlex.split(command)
    lexer = shlex.shlex(command, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    return list(lexer)


def _find_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, TypeError):
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


# Windows: a job object that kills its processes when its last handle closes. The agent
# holds the only handle for its whole life and never closes it, so the system closes it,
# and kills every player in it, when the agent's process ends (Ctrl+C, a crash, a task
# stopped, TerminateProcess). Only exercised on Windows; the structures' layout is checked
# on Linux by the tests. Field names follow winnt.h.
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9  # JobObjectExtendedLimitInformation
_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000


class _JobObjectBasicLimitInformation(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class _IoCounters(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "ReadOperationCount",
            "WriteOperationCount",
            "OtherOperationCount",
            "ReadTransferCount",
            "WriteTransferCount",
            "OtherTransferCount",
        )
    ]


class _JobObjectExtendedLimitInformation(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", _JobObjectBasicLimitInformation),
        ("IoInfo", _IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


def _last_error() -> int:
    get = getattr(ctypes, "get_last_error", None)  # Windows only
    return int(get()) if get is not None else 0


class KillOnCloseJob:
    """A Windows job object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE; players are added to it.

    `kernel32` is the loaded kernel32.dll (a stand-in in the tests on Linux).
    """

    def __init__(self, kernel32: Any) -> None:
        self._k = kernel32
        # HANDLE is pointer-sized: without these, ctypes would cut it to a 32-bit int.
        kernel32.CreateJobObjectW.restype = ctypes.c_void_p
        kernel32.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
        kernel32.SetInformationJobObject.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_uint32,
        ]
        kernel32.AssignProcessToJobObject.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.handle = kernel32.CreateJobObjectW(None, None)
        if not self.handle:
            raise OSError(_last_error(), "CreateJobObjectW failed")
        info = _JobObjectExtendedLimitInformation()
        info.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not kernel32.SetInformationJobObject(
            self.handle,
            _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
            ctypes.byref(info),
            ctypes.sizeof(info),
        ):
            raise OSError(_last_error(), "SetInformationJobObject failed")

    def add(self, process_handle: int) -> None:
        """Put a started process in the job (it then dies when the agent does)."""
        if not self._k.AssignProcessToJobObject(self.handle, process_handle):
            raise OSError(_last_error(), "AssignProcessToJobObject failed")


_job: KillOnCloseJob | None = None
_job_failed = False


def _windows_job() -> KillOnCloseJob | None:  # pragma: no cover - Windows only
    """The agent's one job object, made on first use; None (logged once) if it cannot be."""
    global _job, _job_failed
    if _job is None and not _job_failed:
        try:
            _job = KillOnCloseJob(ctypes.WinDLL("kernel32", use_last_error=True))  # type: ignore[attr-defined]
        except (OSError, AttributeError) as exc:
            _job_failed = True
            log.warning("no job object (%s): a player may outlive a crashed agent", exc)
    return _job


# Windows process creation flags (the constants exist in `subprocess` only on Windows).
_CREATE_NEW_PROCESS_GROUP = 0x00000200
_CREATE_NO_WINDOW = 0x08000000


def popen_options(*, windows: bool = WINDOWS) -> dict[str, Any]:
    """How the player process is started, per system (see the module's docstring)."""
    if windows:
        # Its own process group: a Ctrl+C or Ctrl+Break in the agent's console reaches the
        # agent only, which then records the item and stops the player itself. No window:
        # the agent may run in a user's session, where each item would flash a console.
        return {"creationflags": _CREATE_NEW_PROCESS_GROUP | _CREATE_NO_WINDOW}
    return {
        "start_new_session": True,
        "preexec_fn": _die_with_parent if _PRCTL is not None else None,
    }


class SubprocessPlayback:
    """A player process, in its own process group so that stopping it stops its children."""

    def __init__(self, process: subprocess.Popen[bytes], *, windows: bool = WINDOWS) -> None:
        self.process = process
        self._windows = windows

    def poll(self) -> int | None:
        """None while the process runs, else its exit code."""
        return self.process.poll()

    def stop(self) -> None:
        """Terminate the process group; kill it when it does not go within 2 s."""
        if self.process.poll() is not None:
            return
        if self._windows:
            # No process groups to signal: TerminateProcess, and again (kill is the same call
            # there) should it not be gone within 2 s. ffplay and mpv start no children.
            for end in (self.process.terminate, self.process.kill):
                try:
                    end()
                    self.process.wait(timeout=2.0)
                    return
                except subprocess.TimeoutExpired:
                    continue
                except OSError:
                    return  # already gone
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
        self.template = split_command(command)
        if not self.template:
            raise ValueError("the player command is empty")

    def argv(self, file: Path | str, offset_s: float) -> list[str]:
        """The command line for one file (placeholders replaced inside each argument)."""
        offset = f"{max(offset_s, 0.0):.3f}"
        return [
            arg.replace("{file}", str(file)).replace("{offset_s}", offset) for arg in self.template
        ]

    def start(
        self, file: Path | str, *, offset_s: float, duration_s: float
    ) -> SubprocessPlayback:
        """Start the player process."""
        argv = self.argv(file, offset_s)
        log.debug("player: %s", shlex.join(argv))
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, **popen_options()
            )
        except OSError as exc:
            raise PlayerError(f"cannot run {argv[0]}: {exc}") from exc
        if WINDOWS:  # pragma: no cover - Windows only
            # Between the start and this line (milliseconds) a crash would leave the player.
            job = _windows_job()
            if job is not None:
                try:
                    job.add(int(process._handle))  # type: ignore[attr-defined]
                except OSError as exc:
                    log.warning("player not in the job object (%s)", exc)
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

    def start(self, file: Path | str, *, offset_s: float, duration_s: float) -> ClockPlayback:
        """Log "would play" and return a playback that ends when the file would."""
        now = self._clock()
        log.info("would play %s at %s (from %.1f s)", file, now.isoformat(), offset_s)
        remaining = max(duration_s - offset_s, 0.0)
        return ClockPlayback(self._clock, now + timedelta(seconds=remaining))
