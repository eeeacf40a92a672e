"""The `loaxa` command line, run as a real process against the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import unicodedata

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.devices.models import Device
from app.stations.models import Programme, Station, Village


def loaxa(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=input,
    )


def _counts(session: Session) -> tuple[int, ...]:
    session.rollback()  # end the read snapshot: see what the CLI process committed
    return tuple(
        session.scalar(select(func.count()).select_from(m)) or 0
        for m in (Station, Village, Programme, User, AuditEvent)
    )


def test_seed_demo_loads_xuan_phuc_once(database_url: str, session: Session) -> None:
    first = loaxa("seed-demo", env={"LOAXA_ADMIN_PASSWORD": "quản-trị-viên-2024"})
    assert first.returncode == 0, first.stderr
    assert "created station Xuân Phúc" in first.stdout
    assert "password (shown once)" not in first.stdout
    after_first = _counts(session)
    station = session.scalar(select(Station).where(Station.name == "Xuân Phúc"))
    assert station is not None and station.timezone == "Asia/Ho_Chi_Minh"
    cchc = session.scalar(select(Programme).where(Programme.code == "cchc"))
    assert cchc is not None and (cchc.min_duration_ms, cchc.max_duration_ms) == (600_000, 900_000)
    assert after_first[1] == 8  # villages

    second = loaxa("seed-demo")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert _counts(session) == after_first


def test_seed_demo_generates_and_prints_the_admin_password_once(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOAXA_ADMIN_PASSWORD"}
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if "admin password (shown once)" in x)
    assert len(line.split(": ", 1)[1]) >= 12
    again = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "admin password" not in again.stdout


def test_user_add_and_device_add(database_url: str, session: Session) -> None:
    loaxa("seed-demo", env={"LOAXA_ADMIN_PASSWORD": "quản-trị-viên-2024"})
    r = loaxa("user", "add", "bientap", "--role", "editor", env={"LOAXA_PASSWORD": "biên-tập-2024"})
    assert r.returncode == 0, r.stderr
    assert "created user bientap" in r.stdout
    dup = loaxa("user", "add", "bientap", "--role", "editor", env={"LOAXA_PASSWORD": "x" * 10})
    assert dup.returncode == 1 and "already exists" in dup.stderr
    bad = loaxa("user", "add", "ai", "--role", "chief", env={"LOAXA_PASSWORD": "x" * 10})
    assert bad.returncode == 2
    station = session.scalar(select(Station))
    assert station is not None
    dev = loaxa("device", "add", "PC Đài xã", "--station", str(station.id))
    assert dev.returncode == 0, dev.stderr
    token = dev.stdout.split("token (shown once): ")[1].strip()
    assert token.startswith("dev_")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Device)) == 1
    missing = loaxa("device", "add", "PC", "--station", "999")
    assert missing.returncode == 1 and "station 999 does not exist" in missing.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_on_a_loopback_port(database_url: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["database"] == "ok"
        denied = httpx.get(f"http://127.0.0.1:{port}/api/v1/segments")
        assert denied.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_migrate_creates_the_data_directory_on_a_fresh_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "fresh" / "var"
    env = {k: v for k, v in os.environ.items() if k != "LOAXA_DATABASE_URL"}
    env["LOAXA_DATA_DIR"] = str(data)
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert (data / "loaxa.db").is_file()
    seeded = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo"],
        capture_output=True,
        text=True,
        env={**env, "LOAXA_ADMIN_PASSWORD": "x" * 12},
        timeout=120,
    )
    assert seeded.returncode == 0 and "created station Xuân Phúc" in seeded.stdout


def test_seed_demo_puts_the_station_in_the_configured_time_zone(
    database_url: str, session: Session
) -> None:
    r = loaxa("seed-demo", env={"LOAXA_TIMEZONE": "Asia/Bangkok", "LOAXA_ADMIN_PASSWORD": "x" * 12})
    assert r.returncode == 0, r.stderr
    session.rollback()
    station = session.scalar(select(Station).where(Station.name == "Xuân Phúc"))
    assert station is not None and station.timezone == "Asia/Bangkok"


def test_station_set_network_applies_from_the_next_local_day(
    database_url: str, session: Session
) -> None:
    from app.stations.models import StationNetwork

    assert loaxa("seed-demo", env={"LOAXA_ADMIN_PASSWORD": "quản-trị-viên-2024"}).returncode == 0
    station = session.scalar(select(Station).where(Station.name == "Xuân Phúc"))
    assert station is not None
    # The demo commune is ip, as every new station.
    [first] = session.scalars(
        select(StationNetwork).where(StationNetwork.station_id == station.id)
    ).all()
    assert first.network == "ip"

    done = loaxa("station", "set", str(station.id), "--network", "fm")
    assert done.returncode == 0, done.stderr
    assert f"station {station.id}: network ip today, fm from " in done.stdout
    session.rollback()
    rows = session.scalars(
        select(StationNetwork)
        .where(StationNetwork.station_id == station.id)
        .order_by(StationNetwork.effective_from)
    ).all()
    assert [r.network for r in rows] == ["ip", "fm"]

    bad = loaxa("station", "set", str(station.id), "--network", "dab")
    assert bad.returncode == 2 and "network" in bad.stderr
    missing = loaxa("station", "set", "999", "--network", "ip")
    assert missing.returncode == 1 and "station 999 does not exist" in missing.stderr


def test_user_add_takes_the_full_name_pages_show(database_url: str, session: Session) -> None:
    loaxa("seed-demo", env={"LOAXA_ADMIN_PASSWORD": "quản-trị-viên-2024"})
    env = {"LOAXA_PASSWORD": "biên-tập-2024"}
    name = unicodedata.normalize("NFD", "Nguyễn Thị Lan")  # typed on another keyboard
    r = loaxa("user", "add", "lan.nt", "--role", "editor", "--name", name, env=env)
    assert r.returncode == 0, r.stderr
    bad = loaxa("user", "add", "x.y", "--role", "editor", "--name", "Lan\x1b[2J", env=env)
    assert bad.returncode == 2 and "--name" in bad.stderr
    session.rollback()
    user = session.scalar(select(User).where(User.username == "lan.nt"))
    assert user is not None and user.full_name == "Nguyễn Thị Lan"  # stored NFC
    assert session.scalar(select(User).where(User.username == "x.y")) is None
