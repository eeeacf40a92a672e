"""The agent away from the server's Linux: its light import path, the Windows import path
(no fcntl, no prctl), Windows paths and players in its configuration, its job object, its
stop signals, and its own command `loaxa-agent` (with `--check`).

No Windows machine is needed: what only Windows can run (kernel32, the install script) is
written so that its parts can be checked here, and the rest of the agent's code runs here
with what Windows lacks hidden (tests/playout/no_posix/sitecustomize.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.playout.agent import (
    STOP_SIGNALS,
    JournalLocked,
    install_stop_handlers,
    load_config,
)
from app.playout.agent import player as player_module
from app.playout.agent.check import check
from app.playout.agent.config import default_config_path, home_dir, is_absolute
from app.playout.agent.decide import AGENT_STOPPED
from app.playout.agent.journal import Journal
from app.playout.agent.player import KillOnCloseJob, popen_options, split_command
from tests.playout.agent_fixtures import NULL_PLAYER, TOKEN, FakeServer, make_tone

REPO = Path(__file__).resolve().parents[2]
NO_POSIX = REPO / "tests" / "playout" / "no_posix"
SERVER_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "apscheduler",
    "numpy",
    "scipy",
    "pydub",
    "pyloudnorm",
    "reportlab",
    "openpyxl",
    "psycopg",
    "typer",
    "jinja2",
    "gtts",
    "argon2",
    "jwt",
)
# Everything the agent may import beyond the standard library: httpx, pydantic and theirs.
AGENT_PACKAGES = {
    "app",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
    "tzdata",
    "paho",  # the push subscription (MQTT)
    # httpx imports its own command line's packages when they happen to be installed (they
    # are here, with typer); the agent's bundle has none of them (see test_agent_bundle.py).
    "click",
    "rich",
    "pygments",
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


# The light import path.


def test_the_agents_import_path_needs_none_of_the_servers_packages() -> None:
    code = (
        "import sys, json; before = set(sys.modules); "
        "import app.playout.agent, app.playout.agent.cli, app.playout.agent.check; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    roots = {name.split(".")[0] for name in loaded}
    assert "app.playout.agent" in loaded
    assert not roots & set(SERVER_PACKAGES), roots & set(SERVER_PACKAGES)
    third_party = {r for r in roots if r not in sys.stdlib_module_names and not r.startswith("_")}
    assert third_party <= AGENT_PACKAGES, third_party - AGENT_PACKAGES
    # Nothing of the server's own code either.
    assert {n for n in loaded if n.startswith("app")} <= {"app", "app.playout"} | {
        n for n in loaded if n.startswith("app.playout.agent")
    }


def test_windows_import_path_is_simulated_when_asked() -> None:
    """Under no_posix/sitecustomize.py (see the slow test below), fcntl and prctl are gone."""
    if not os.environ.get("LOAXA_TEST_NO_POSIX"):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import app.playout.agent.player as p, app.playout.agent.journal\n"
                "try:\n    import fcntl\nexcept ImportError:\n    print('hidden', p._PRCTL)",
            ],
            env=_env(PYTHONPATH=f"{NO_POSIX}{os.pathsep}{REPO}"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == "hidden None"
        return
    with pytest.raises(ImportError):
        import fcntl  # noqa: F401
    assert player_module._PRCTL is None
    assert popen_options()["preexec_fn"] is None


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("LOAXA_TEST_NO_POSIX")), reason="already simulating")
def test_agent_suite_passes_without_fcntl_and_prctl(tmp_path: Path) -> None:
    """The agent's whole test suite, as a process whose `fcntl` and `prctl` are hidden.

    The agents that its tests start as processes inherit PYTHONPATH, and so the same.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "t"),
            "tests/playout/test_agent.py",
            "tests/playout/test_portable.py",
        ],
        cwd=REPO,
        env=_env(PYTHONPATH=f"{NO_POSIX}{os.pathsep}{REPO}"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", summary), summary
    assert " failed" not in summary and " error" not in summary, summary


# Windows paths and players in the configuration.


def test_windows_paths_in_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        'server_url = "http://127.0.0.1:9"\n'
        "token_file = 'C:\\ProgramData\\loaxa-agent\\agent.token'\n"
        'cache_dir = "C:\\\\ProgramData\\\\loaxa-agent\\\\cache"\n'
        "journal = '\\\\fileserver\\radio\\journal.sqlite'\n"
        "player_command = '\"C:\\Program Files\\mpv\\mpv.exe\" --start={offset_s} {file}'\n",
        encoding="utf-8",
    )
    config = load_config(path)
    # Taken as they are, not as names inside the configuration's folder.
    assert str(config.token_file) == r"C:\ProgramData\loaxa-agent\agent.token"
    assert str(config.cache_dir) == r"C:\ProgramData\loaxa-agent\cache"
    assert str(config.journal) == r"\\fileserver\radio\journal.sqlite"
    assert split_command(config.player_command, windows=True) == [
        r"C:\Program Files\mpv\mpv.exe",
        "--start={offset_s}",
        "{file}",
    ]
    assert is_absolute(r"D:\radio") and is_absolute("/var/lib/x")
    assert not is_absolute(r"cache\x") and not is_absolute(r"\no-drive")


def test_windows_example_config_is_valid_with_ffplay_and_mpv() -> None:
    example = REPO / "scripts" / "agent.windows.example.toml"
    config = load_config(example)
    assert str(config.cache_dir) == r"C:\ProgramData\loaxa-agent\cache"
    assert str(config.journal) == r"C:\ProgramData\loaxa-agent\journal.sqlite"
    assert str(config.token_file) == r"C:\ProgramData\loaxa-agent\agent.token"
    ffplay = split_command(config.player_command, windows=True)
    assert ffplay[0] == r"C:\ffmpeg\bin\ffplay.exe" and "-ss" in ffplay
    [mpv_line] = [
        line for line in example.read_text().splitlines() if "mpv.exe" in line and "=" in line
    ]
    mpv = load_config_line(mpv_line.lstrip("# "))
    assert split_command(mpv, windows=True)[0] == r"C:\Program Files\mpv\mpv.exe"
    # Everything else is the Linux example's, key for key.
    linux = load_config(REPO / "scripts" / "agent.example.toml").model_dump()
    windows = config.model_dump()
    differ = {k for k in linux if linux[k] != windows[k]}
    assert differ == {"token_file", "cache_dir", "journal", "player_command"}


def load_config_line(line: str) -> str:
    import tomllib

    return str(tomllib.loads(line)["player_command"])


def test_posix_split_is_unchanged() -> None:
    assert split_command("ffplay -ss {offset_s} 'a b/{file}'", windows=False) == [
        "ffplay",
        "-ss",
        "{offset_s}",
        "a b/{file}",
    ]


def test_default_directories_per_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROGRAMDATA", r"D:\ProgramData")
    assert str(home_dir(windows=True)).replace("/", "\\") == r"D:\ProgramData\loaxa-agent"
    assert str(default_config_path(windows=True)).replace("/", "\\") == (
        r"D:\ProgramData\loaxa-agent\agent.toml"
    )
    monkeypatch.delenv("PROGRAMDATA")
    assert str(home_dir(windows=True)).replace("/", "\\") == r"C:\ProgramData\loaxa-agent"
    assert home_dir(windows=False) == Path("/var/lib/loaxa-agent")
    assert default_config_path(windows=False) == Path("/etc/loaxa/agent.toml")


def test_cache_and_journal_default_to_the_systems_folder(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('server_url = "http://127.0.0.1:9"\ndevice_token = "dev_x"\n')
    config = load_config(path)
    assert config.cache_dir == home_dir() / "cache"
    assert config.journal == home_dir() / "journal.sqlite"


def test_files_saved_with_a_bom_are_read(tmp_path: Path) -> None:
    """Notepad on older Windows starts UTF-8 files with a byte order mark."""
    (tmp_path / "agent.token").write_text(TOKEN + "\r\n", encoding="utf-8-sig")
    path = tmp_path / "agent.toml"
    path.write_text(
        'server_url = "http://127.0.0.1:9"\r\ntoken_file = "agent.token"\r\n'
        'cache_dir = "c"\r\njournal = "j.sqlite"\r\n',
        encoding="utf-8-sig",
    )
    assert load_config(path).token() == TOKEN


# The Windows player: job object and process options.


class FakeKernel32:
    """kernel32's three job functions, recording their calls."""

    class _Fn:
        def __init__(self, owner: FakeKernel32, name: str, result: Any) -> None:
            self.owner, self.name, self.result = owner, name, result
            self.restype: Any = None
            self.argtypes: Any = None

        def __call__(self, *args: Any) -> Any:
            self.owner.calls.append((self.name, args))
            return self.result

    def __init__(self, *, assign_ok: bool = True) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.CreateJobObjectW = self._Fn(self, "CreateJobObjectW", 0x1234)
        self.SetInformationJobObject = self._Fn(self, "SetInformationJobObject", 1)
        self.AssignProcessToJobObject = self._Fn(self, "AssignProcessToJobObject", int(assign_ok))


def test_job_object_kills_players_when_the_agent_goes() -> None:
    kernel32 = FakeKernel32()
    job = KillOnCloseJob(kernel32)
    job.add(0x99)
    names = [name for name, _ in kernel32.calls]
    assert names == ["CreateJobObjectW", "SetInformationJobObject", "AssignProcessToJobObject"]
    _, (handle, info_class, info_ref, size) = kernel32.calls[1]
    assert handle == 0x1234 and info_class == 9  # JobObjectExtendedLimitInformation
    info = ctypes.cast(info_ref, ctypes.POINTER(player_module._JobObjectExtendedLimitInformation))
    assert info.contents.BasicLimitInformation.LimitFlags == 0x2000  # KILL_ON_JOB_CLOSE
    # The layout Windows expects (winnt.h), on a 64-bit Python.
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert size == 144
        assert ctypes.sizeof(player_module._JobObjectBasicLimitInformation) == 64
    assert kernel32.calls[2][1] == (0x1234, 0x99)
    # HANDLE is pointer-sized: ctypes must not cut it to a 32-bit int.
    assert kernel32.CreateJobObjectW.restype is ctypes.c_void_p


def test_job_object_failures_are_reported() -> None:
    with pytest.raises(OSError, match="AssignProcessToJobObject"):
        KillOnCloseJob(FakeKernel32(assign_ok=False)).add(1)


def test_player_process_options_per_system() -> None:
    windows = popen_options(windows=True)
    # Popen on Windows refuses preexec_fn; a process group of its own keeps Ctrl+C to us.
    assert set(windows) == {"creationflags"}
    assert windows["creationflags"] & 0x200 and windows["creationflags"] & 0x08000000
    posix = popen_options(windows=False)
    assert posix["start_new_session"] is True


@pytest.mark.parametrize("ignores_sigterm", [False, True])
def test_windows_stop_ends_the_player(ignores_sigterm: bool) -> None:
    """The Windows branch of stop() (terminate, then kill) on a Linux process."""
    code = "import signal, time\n"
    if ignores_sigterm:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('up', flush=True)\ntime.sleep(30)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"up\n"
    playback = player_module.SubprocessPlayback(process, windows=True)
    began = time.monotonic()
    playback.stop()
    assert process.poll() is not None
    assert (time.monotonic() - began >= 2) == ignores_sigterm
    playback.stop()  # idempotent
    process.stdout.close()


# Stopping.


def test_stop_handlers_cover_ctrl_break_where_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    assert STOP_SIGNALS == ("SIGTERM", "SIGINT", "SIGBREAK")
    # Linux has no SIGBREAK: stand SIGUSR1 in for it to see that it is handled when present.
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    stops: list[int] = []
    try:
        handled = install_stop_handlers(lambda: stops.append(1))
        assert set(handled) == {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)
        assert stops == [1]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _write_config(tmp_path: Path, server_url: str, **extra: Any) -> Path:
    (tmp_path / "agent.token").write_text(TOKEN + "\n")
    values = {
        "server_url": server_url,
        "token_file": "agent.token",
        "cache_dir": "cache",
        "journal": "journal.sqlite",
        "player_command": NULL_PLAYER,
        "start_grace_seconds": 0.5,
        "playlist_poll_seconds": 0.3,
        "emergency_poll_seconds": 0.5,
        "upload_interval_seconds": 0.3,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1,
        "heartbeat_seconds": 0.2,
        "tick_seconds": 0.05,
        **extra,
    }
    path = tmp_path / "agent.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return path


@pytest.fixture
def fake() -> Any:
    server = FakeServer().start()
    try:
        yield server
    finally:
        server.stop()


def _journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM events ORDER BY started_at")]
        except sqlite3.OperationalError:
            return []


def _wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_stops_loaxa_agent_cleanly_mid_item(tmp_path: Path, fake: FakeServer) -> None:
    """`loaxa-agent` as a process: Ctrl+C (SIGINT) while it plays; it records and exits 0."""
    digest = fake.add_audio(make_tone(tmp_path / "t.mp3", seconds=4, frequency=440))
    config = _write_config(tmp_path, fake.base_url)
    agent = subprocess.Popen(
        [sys.executable, "-m", "app.playout.agent", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: bool(fake.requests("/api/v1/playout/playlist")), timeout=30)
        starts = datetime.now(UTC) + timedelta(seconds=1)
        item = fake.item(51, starts, digest, duration_ms=4000)
        fake.set_playlist(starts.astimezone(_zone()).date().isoformat(), [item])
        journal = tmp_path / "journal.sqlite"
        _wait(lambda: any(r["status"] == "playing" for r in _journal(journal)), timeout=15)
        time.sleep(0.5)
        agent.send_signal(signal.SIGINT)
        assert agent.wait(timeout=15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
        out = agent.communicate()[0].decode()
    assert "stopping" in out and "agent stopped" in out, out
    [row] = _journal(tmp_path / "journal.sqlite")
    assert row["status"] == "interrupted" and row["note"] == AGENT_STOPPED
    # The lock went with the agent.
    Journal(tmp_path / "journal.sqlite").close()


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Ho_Chi_Minh")


def test_journal_lock_is_not_posix_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        with pytest.raises(JournalLocked):
            Journal(tmp_path / "j.sqlite")
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from app.playout.agent.journal import Journal, JournalLocked\n"
                "try:\n    Journal(sys.argv[1])\nexcept JournalLocked:\n    print('locked')",
                str(tmp_path / "j.sqlite"),
            ],
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        assert other.stdout.strip() == "locked"
    finally:
        journal.close()
    Journal(tmp_path / "j.sqlite").close()


def test_lock_file_of_an_older_agent_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "j.sqlite.lock").write_bytes(b"")  # what the fcntl lock left
    Journal(tmp_path / "j.sqlite").close()
    (tmp_path / "j.sqlite.lock").write_bytes(b"not a database, not empty either")
    Journal(tmp_path / "j.sqlite").close()


# loaxa-agent --check.


def test_check_pulls_downloads_and_plays_one_second(tmp_path: Path, fake: FakeServer) -> None:
    digest = fake.add_audio(make_tone(tmp_path / "t.mp3", seconds=3, frequency=440))
    starts = datetime.now(UTC) + timedelta(minutes=5)
    fake.set_playlist(
        starts.astimezone(_zone()).date().isoformat(),
        [fake.item(61, starts, digest, duration_ms=3000, title="Tin xã")],
    )
    config = _write_config(tmp_path, fake.base_url)
    lines: list[str] = []
    began = time.monotonic()
    assert check(config, say=lines.append) == 0, lines
    assert time.monotonic() - began >= 1.0
    text = "\n".join(lines)
    assert "1 items" in text and "Tin xã" in text and "played 1.0 s" in text, text
    assert lines[-1].startswith("OK")
    assert (tmp_path / "cache" / f"{digest}.mp3").exists()
    assert not (tmp_path / "journal.sqlite").exists()  # a check writes no journal
    assert not fake.as_run


@pytest.mark.parametrize(
    ("setup", "expected", "code"),
    [
        ("down", "cannot reach", 1),
        ("token", "device token right", 1),
        ("empty", "are empty", 1),
        ("player", "cannot run", 1),
        ("player_fails", "exited with code", 1),
        ("config", "must contain the {file} placeholder", 2),
    ],
)
def test_check_says_which_step_failed(
    tmp_path: Path, fake: FakeServer, setup: str, expected: str, code: int
) -> None:
    digest = fake.add_audio(make_tone(tmp_path / "t.mp3", seconds=2, frequency=440))
    starts = datetime.now(UTC) + timedelta(minutes=5)
    if setup != "empty":
        fake.set_playlist(
            starts.astimezone(_zone()).date().isoformat(),
            [fake.item(62, starts, digest, duration_ms=2000)],
        )
    extra: dict[str, Any] = {}
    url = fake.base_url
    if setup == "down":
        url = "http://127.0.0.1:9"
    elif setup == "player":
        extra["player_command"] = "/nonexistent/ffplay -ss {offset_s} {file}"
    elif setup == "player_fails":
        extra["player_command"] = "ffmpeg -v quiet -ss {offset_s} -i {file} -f nosuchformat -"
    elif setup == "config":
        extra["player_command"] = "ffplay"
    config = _write_config(tmp_path, url, **extra)
    if setup == "token":
        (tmp_path / "agent.token").write_text("dev_wrong\n")
    lines: list[str] = []
    assert check(config, say=lines.append) == code, lines
    assert lines[-1].startswith("FAILED") and expected in lines[-1], lines


def test_loaxa_agent_command_line(tmp_path: Path, fake: FakeServer) -> None:
    """`python -m app.playout.agent` is `loaxa-agent`: --version, --check's exit code."""
    out = subprocess.run(
        [sys.executable, "-m", "app.playout.agent", "--version"],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("loaxa-agent ")
    config = _write_config(tmp_path, fake.base_url)
    result = subprocess.run(
        [sys.executable, "-m", "app.playout.agent", "--config", str(config), "--check"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "FAILED" in result.stdout, result.stdout
    # The server's command has the check too.
    served = subprocess.run(
        [sys.executable, "-m", "app.cli", "agent", "--config", str(config), "--check"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert served.returncode == 1 and "FAILED" in served.stdout, served.stdout + served.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "app.playout.agent", "--config", str(tmp_path / "nope.toml")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr

