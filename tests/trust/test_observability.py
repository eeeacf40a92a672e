"""Observability: JSON logs with a request id, and Prometheus /metrics across workers."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.logs import JsonFormatter, logging_config, scrub
from tests.helpers import PASSWORD
from tests.world import World


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- logs ---------------------------------------------------------------------------------------


def test_every_request_is_one_json_line_with_its_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="loaxa.access")
    r = client.get("/api/v1/segments/12", headers={"X-Request-ID": "trace-abc.123"})
    assert r.status_code == 401 and r.headers["X-Request-ID"] == "trace-abc.123"
    (record,) = [rec for rec in caplog.records if rec.name == "loaxa.access"]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "trace-abc.123"
    assert entry["level"] == "INFO" and entry["logger"] == "loaxa.access"
    assert entry["method"] == "GET" and entry["path"] == "/api/v1/segments/12"
    assert entry["route"] == "/api/v1/segments/{segment_id}" and entry["status"] == 401
    assert entry["duration_ms"] >= 0 and entry["message"] == "GET /api/v1/segments/12 401"
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None


@pytest.mark.parametrize(
    "offered", [None, "", "has space", "x" * 129, "a/b", "a\tb", "<script>"]
)
def test_an_insane_request_id_is_replaced(client: TestClient, offered: str | None) -> None:
    headers = {} if offered is None else {"X-Request-ID": offered}
    got = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", got), got


def test_log_lines_written_while_a_request_is_served_carry_its_id(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from app.main import create_app

    app = create_app()
    log = logging.getLogger("loaxa.test")

    @app.get("/test-log", include_in_schema=False)
    def logs_something() -> dict[str, str]:  # a plain def: it runs in the thread pool
        log.warning("something worth knowing")
        return {}

    caplog.set_level(logging.INFO)
    with TestClient(app) as client:
        client.get("/test-log", headers={"X-Request-ID": "req-42"})
    (record,) = [r for r in caplog.records if r.name == "loaxa.test"]
    assert json.loads(JsonFormatter().format(record))["request_id"] == "req-42"


def test_the_formatter_scrubs_what_looks_like_a_credential() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
    text = (
        f"Authorization: Bearer {jwt} device dev_AbCdEf0123456789xyz "
        "form username=a&password=mật-khẩu {'password': 'x1y2z3'}"
    )
    clean = scrub(text)
    for secret in (jwt, "dev_AbCdEf0123456789xyz", "mật-khẩu", "x1y2z3"):
        assert secret not in clean
    assert "username=a" in clean


def test_the_logging_config_writes_json_for_loaxa_and_uvicorn() -> None:
    config = logging_config(fmt="json", level="DEBUG")
    assert config["formatters"]["loaxa"]["()"] == "app.logs.JsonFormatter"
    assert config["loggers"]["loaxa"]["level"] == "DEBUG"
    assert config["root"]["handlers"] == ["stderr"]


# --- metrics in one process ----------------------------------------------------------------------


def test_metrics_count_routes_by_template_and_the_playout_numbers(
    client: TestClient, world: World
) -> None:
    h = world.headers
    before = client.get("/metrics").text
    for sid in (world.segment["id"], world.segment["id"], 999_999):
        client.get(f"/api/v1/segments/{sid}", headers=h["viewer"])
    pulled = client.get("/api/v1/playout/playlist", headers=h["device"])
    client.get("/api/v1/playout/playlist", headers={**h["device"], "If-None-Match": pulled.headers["ETag"]})  # noqa: E501
    text = client.get("/metrics").text
    assert text.startswith("# HELP") and client.get("/metrics").headers["content-type"].startswith(
        "text/plain"
    )
    route = "/api/v1/segments/{segment_id}"
    count = "loaxa_http_request_duration_seconds_count"
    assert _sample(text, count, route=route, status="200") - _sample(
        before, count, route=route, status="200"
    ) == 2
    assert _sample(text, count, route=route, status="404") - _sample(
        before, count, route=route, status="404"
    ) == 1
    assert f"/api/v1/segments/{world.segment['id']}" not in text  # never the raw path
    pulls = "loaxa_playlist_pulls_total"
    assert _sample(text, pulls, answer="full") - _sample(before, pulls, answer="full") == 1
    assert _sample(text, pulls, answer="not_modified") - _sample(
        before, pulls, answer="not_modified"
    ) == 1
    assert _sample(text, "loaxa_devices_online") == 1  # A's PC pulled; B's never did
    assert _sample(text, "loaxa_devices_active") == 2
    assert _sample(text, "loaxa_assemblies_total", outcome="rendered") >= 1
    assert _sample(text, "loaxa_assembly_duration_seconds_count") >= 1
    # The world's as-run report came two hours after the broadcast began.
    assert _sample(text, "loaxa_asrun_lag_seconds_count") >= 1
    assert _sample(text, "loaxa_asrun_lag_seconds_bucket", le="900.0") < _sample(
        text, "loaxa_asrun_lag_seconds_bucket", le="+Inf"
    ) or _sample(text, "loaxa_asrun_lag_seconds_sum") > 0


def test_a_scheduler_job_run_is_counted(database_url: str) -> None:
    from prometheus_client import REGISTRY

    from app import clock
    from app.schedule.runs import run_exclusive

    def value(outcome: str) -> float:
        got = REGISTRY.get_sample_value(
            "loaxa_scheduler_job_runs_total", {"job": "test_job", "outcome": outcome}
        )
        return got or 0.0

    def fails() -> None:
        raise RuntimeError("disk on fire")

    done, failed = value("done"), value("failed")
    key = uuid.uuid4().hex
    run_exclusive("test_job", key, lambda: 1, now=clock.now())
    run_exclusive("test_job", key + "-2", fails, now=clock.now())
    assert (value("done"), value("failed")) == (done + 1, failed + 1)


# --- metrics across processes: `loaxa serve --workers 2` and the scheduler ----------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_metrics_add_up_across_two_workers_and_the_scheduler(
    database_url: str, data_dir: Path, client: TestClient, world: World
) -> None:
    env = {**os.environ, "LOAXA_DATABASE_URL": database_url, "LOAXA_DATA_DIR": str(data_dir)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stale = data_dir / "metrics" / "serve" / "counter_1.db"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"left by a server that died")
    # The scheduler runs its jobs once, counting into its own directory.
    at = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    subprocess.run(
        [sys.executable, "-m", "app.cli", "scheduler", "--once", "--at", at],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
            time.sleep(0.2)
        assert not stale.exists(), "the metrics directory is emptied when serve starts"
        requests = 60
        for _ in range(requests):  # a new connection each: the kernel spreads them
            with httpx.Client(base_url=url) as http:
                assert http.get("/api/v1/segments", headers=world.headers["viewer"]).is_success
        files = list((data_dir / "metrics" / "serve").glob("histogram_*.db"))
        assert len(files) == 2, f"both workers counted: {files}"
        for _ in range(6):  # each scrape lands on either worker: all must say the same
            with httpx.Client(base_url=url) as http:
                text = http.get("/metrics").text
            assert _sample(
                text, "loaxa_http_request_duration_seconds_count",
                route="/api/v1/segments", status="200",
            ) == requests  # fmt: skip
            assert _sample(text, "loaxa_scheduler_job_runs_total", job="check_cchc") >= 1
            assert _sample(text, "loaxa_scheduler_job_duration_seconds_count", job="mark_missed") >= 1  # noqa: E501
        sign_in = {"username": "viewer1", "password": PASSWORD}
        r = httpx.post(f"{url}/api/v1/auth/token", data=sign_in)
        lines = _stop(server)
        assert r.status_code == 200
    finally:
        if server.poll() is None:
            server.kill()
    # The logs of the run: one JSON object per line, loaxa's and uvicorn's alike.
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"] == "loaxa.access" and r["path"] == "/metrics" for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records)
    assert not [line for line in lines if line.strip() and not line.startswith("{")], lines[:5]


def _stop(server: subprocess.Popen[bytes]) -> list[str]:
    server.terminate()
    out, _ = server.communicate(timeout=30)
    return out.decode("utf-8", "replace").splitlines()
