"""The agent's offline bundles (scripts/build_agent.py), built here as CI builds them.

The Windows bundle is checked for what it holds (only win_amd64 or pure-Python wheels, the
install script) and that pip resolves the agent from it alone for each Python version; it is
not installed (no Windows here). The Linux x86_64 bundle is unzipped and installed by its own
install.sh into a fresh virtual environment with pip --no-index (the network is closed to it),
and the installed `loaxa-agent` plays a broadcast and an emergency from a real loaxa server on
a loopback port, reports them, passes its --check, and stops cleanly.

Building needs the package index once (pip download --platform); the wheels are then kept in
var/agent-wheels. Without the network the build fails, and so do these tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_station, staff
from tests.playout.agent_fixtures import NULL_PLAYER
from tests.playout.helpers import approved_segment, broadcast, pink, short_windows

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "var" / "agent-figures.json"
# What the agent's environment may hold: the agent, its dependencies', and the venv's own.
AGENT_DISTRIBUTIONS = {
    "loaxa-agent",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "pydantic",
    "pydantic-core",
    "typing-extensions",
    "annotated-types",
    "typing-inspection",
    "tzdata",
    "paho-mqtt",
    "pip",
    "setuptools",
}


def _builder() -> ModuleType:
    path = REPO / "scripts" / "build_agent.py"
    spec = importlib.util.spec_from_file_location("build_agent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_agent() -> ModuleType:
    return _builder()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dist")


def _record(**figures: Any) -> None:
    """Keep the measured figures (sizes, memory) in var/agent-figures.json for the notes."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    known.update(figures)
    FIGURES.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    print(figures)


def _closed_network_env(**extra: str) -> dict[str, str]:
    """The environment of a technician's PC: nothing of this checkout, no way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL"))}
    env.update(
        {
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PIP_CONFIG_FILE": os.devnull,
        }
    )
    env.update(extra)
    return env


def _wheel_names(zf: zipfile.ZipFile) -> list[str]:
    return sorted(Path(n).name for n in zf.namelist() if n.endswith(".whl"))


def test_windows_bundle_holds_only_windows_or_pure_wheels_and_install_ps1(
    build_agent: ModuleType, dist: Path, tmp_path: Path
) -> None:
    bundle = build_agent.build_bundle("win_amd64", dist)
    version = build_agent.version()
    assert bundle.name == f"loaxa-agent-{version}-win_amd64.zip"
    _record(bundle_win_amd64_bytes=bundle.stat().st_size)
    folder = f"loaxa-agent-{version}-win_amd64/"
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        assert all(n.startswith(folder) for n in names)
        for required in ("install.ps1", "run-agent.ps1", "agent.example.toml", "README.txt"):
            assert folder + required in names
        assert folder + "install.sh" not in names
        wheels = _wheel_names(zf)
        example = zf.read(folder + "agent.example.toml")
        install = zf.read(folder + "install.ps1").decode()
        readme = zf.read(folder + "README.txt")
        zf.extractall(tmp_path)
    assert wheels, "no wheels"
    foreign = [w for w in wheels if not w.endswith(("-win_amd64.whl", "-none-any.whl"))]
    assert not foreign, foreign
    # One compiled pydantic-core per Python version the bundle serves.
    for tag in ("cp311", "cp312", "cp313"):
        assert any(w.startswith("pydantic_core-") and f"-{tag}-win_amd64" in w for w in wheels)
    assert any(w.startswith("tzdata-") for w in wheels)  # Windows has no zone database
    assert example == (REPO / "scripts" / "agent.windows.example.toml").read_bytes()
    assert "--no-index" in install and "--find-links" in install
    assert "Register-ScheduledTask" in install and "NOT been run on Windows" in install
    assert b"\r\n" in readme  # Notepad-friendly

    # pip finds everything the agent needs in the bundle alone, for each Python version.
    for python in ("3.11", "3.12", "3.13"):
        result = subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                "--quiet", "--no-index", "--find-links", str(tmp_path / folder / "wheels"),
                "--only-binary=:all:", "--platform", "win_amd64", "--python-version", python,
                "--implementation", "cp", "--target", str(tmp_path / f"target-{python}"),
                "loaxa-agent",
            ],
            capture_output=True,
            text=True,
            env=_closed_network_env(),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


def test_agent_wheel_holds_only_the_agent(build_agent: ModuleType, dist: Path) -> None:
    wheel = build_agent.build_wheel(dist / "wheel")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        meta = zf.read(metadata).decode()
        requires = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)", meta, re.M)
        scripts = zf.read(entry_points).decode()
    code = sorted(n for n in names if ".dist-info/" not in n)
    expected = sorted(str(p).replace(os.sep, "/") for p in build_agent.agent_sources())
    assert code == expected
    assert "app/playout/agent/cli.py" in code and "app/playout/agent/loop.py" in code
    assert sorted(requires) == ["httpx", "paho-mqtt", "pydantic", "tzdata"]
    assert "loaxa-agent = app.playout.agent.cli:main" in scripts


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1))


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _set(text: str, key: str, value: Any) -> str:
    line = f"{key} = {json.dumps(value)}"
    new, count = re.subn(rf"(?m)^#? ?{key} = .*$", line, text, count=1)
    return new if count else text + line + "\n"


def _journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM events ORDER BY started_at")]
        except sqlite3.OperationalError:
            return []


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux bundle, /proc")
def test_linux_bundle_installs_offline_and_plays_a_day(
    build_agent: ModuleType, dist: Path, client: TestClient, server_url: str, tmp_path: Path
) -> None:
    bundle = build_agent.build_bundle("manylinux_x86_64", dist)
    _record(bundle_manylinux_x86_64_bytes=bundle.stat().st_size)
    with zipfile.ZipFile(bundle) as zf:
        wheels = _wheel_names(zf)
        zf.extractall(tmp_path / "usb")
    foreign = [w for w in wheels if not re.search(r"-(none-any|manylinux[\w.]*_x86_64)\.whl$", w)]
    assert not foreign, foreign
    [folder] = (tmp_path / "usb").iterdir()

    # What the station's staff do on the server: audio, a broadcast, a device and its token.
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    short_windows()
    seg = approved_segment(client, h, pink(tmp_path / "a.mp3", 2), title="Tin CCHC tháng này")
    token = client.post(
        "/api/v1/devices",
        json={"name": "PC Đài xã", "station_id": ids["station_id"]},
        headers=h["admin"],
    ).json()["token"]

    # The technician's one command, with the network closed: the bundle alone installs.
    prefix, etc = tmp_path / "opt", tmp_path / "etc"
    env = _closed_network_env()
    installed = subprocess.run(
        [
            "sh", str(folder / "install.sh"), "--prefix", str(prefix), "--config-dir", str(etc),
            "--no-service", "--server-url", server_url, "--token", token,
            "--python", sys.executable,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    venv = prefix / "venv"
    exe = venv / "bin" / "loaxa-agent"
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    distributions = {d["name"].lower().replace("_", "-") for d in json.loads(listed)}
    assert "loaxa-agent" in distributions
    assert distributions <= AGENT_DISTRIBUTIONS, distributions - AGENT_DISTRIBUTIONS
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import app.playout.agent as a; print(a.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(venv), where  # the installed copy, not this one
    site = next((venv / "lib").glob("python3*/site-packages"))
    _record(
        agent_venv_bytes=_du(venv),
        agent_venv_without_pip_bytes=_du(venv)
        - sum(_du(p) for p in site.glob("pip*") if p.is_dir())
        - sum(_du(p) for p in site.glob("setuptools*") if p.is_dir()),
    )

    # The configuration the installer wrote, made quick for a test.
    config = etc / "agent.toml"
    text = config.read_text()
    assert f'server_url = "{server_url}"' in text
    assert (etc / "agent.token").read_text().strip() == token
    for key, value in {
        "cache_dir": str(tmp_path / "state" / "cache"),
        "journal": str(tmp_path / "state" / "journal.sqlite"),
        "player_command": NULL_PLAYER,
        "start_grace_seconds": 2,
        "min_remaining_seconds": 0.3,
        "emergency_poll_seconds": 0.5,
        "playlist_poll_seconds": 1,
        "upload_interval_seconds": 0.5,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1,
        "heartbeat_seconds": 0.2,
        "tick_seconds": 0.05,
    }.items():
        text = _set(text, key, value)
    config.write_text(text)
    journal = tmp_path / "state" / "journal.sqlite"

    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    b = broadcast(
        client,
        h,
        station_id=ids["station_id"],
        starts_at=starts.isoformat(),
        segment_ids=[seg["id"]],
    )
    agent = subprocess.Popen(
        [str(exe), "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: (tmp_path / "state" / "cache").exists() and any(
            (tmp_path / "state" / "cache").glob("*.mp3")
        ), 30, "the broadcast's audio in the cache")
        _wait(lambda: datetime.now(UTC) > starts - timedelta(seconds=2), 30, "the start")
        idle_kb = _rss_kb(agent.pid)
        _wait(lambda: any(r["status"] == "playing" for r in _journal(journal)), 15, "playback")
        playing_kb = _rss_kb(agent.pid)

        def aired() -> bool:
            got = client.get(f"/api/v1/broadcasts/{b['id']}", headers=h["viewer"]).json()
            return bool(got["status"] == "aired")

        _wait(aired, 40, "the broadcast to be reported aired")

        # An emergency plays within seconds, and is reported too.
        r = client.post(
            "/api/v1/emergencies",
            json={"station_id": ids["station_id"], "segment_id": seg["id"]},
            headers=h["approver"],
        )
        assert r.status_code == 201, r.text
        emergency_id = r.json()["id"]
        created = datetime.now(UTC)
        _wait(
            lambda: any(
                e["emergency_id"] == emergency_id and e["upload"] == "accepted"
                for e in _journal(journal)
            ),
            30,
            "the emergency to be played and reported",
        )

        # The technician's check, beside the running agent.
        checked = subprocess.run(
            [str(exe), "--config", str(config), "--check"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "played 1.0 s" in checked.stdout and checked.stdout.strip().endswith(
            "and play it"
        ), checked.stdout

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
        log = agent.communicate()[0].decode()
    rows = _journal(journal)
    [played] = [r for r in rows if r["broadcast_id"] == b["id"]]
    assert played["status"] == "played" and played["upload"] == "accepted", log
    assert abs((datetime.fromisoformat(played["started_at"]) - starts).total_seconds()) <= 2
    [urgent] = [r for r in rows if r["emergency_id"] == emergency_id]
    assert urgent["status"] == "played"
    assert (datetime.fromisoformat(urgent["started_at"]) - created).total_seconds() < 30
    assert "agent stopped" in log, log
    _record(agent_rss_idle_kb=idle_kb, agent_rss_playing_kb=playing_kb)
