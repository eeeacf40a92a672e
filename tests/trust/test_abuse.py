"""Abuse: sign-in throttling, the client address behind proxies, size limits, slow senders,
security headers, and no secret in any log line of a whole run."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from app.accounts import throttle
from app.accounts.models import Role
from app.config import get_settings
from app.logs import JsonFormatter
from tests.helpers import PASSWORD, login, make_station, make_user

TOKEN = "/api/v1/auth/token"


def _sign_in(client: Any, username: str, password: str, **headers: str) -> Any:
    return client.post(TOKEN, data={"username": username, "password": password}, headers=headers)


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Small limits: 5 attempts per address a minute, 3 failures per username a minute."""
    monkeypatch.setattr(get_settings(), "token_rate_per_address", "5/minute")
    monkeypatch.setattr(get_settings(), "token_rate_per_username", "3/minute")
    throttle.reset()
    return monkeypatch


@pytest.fixture
def viewer(client: TestClient) -> str:
    make_user("viewer1", Role.viewer, make_station()["station_id"])
    return "viewer1"


# --- sign-in throttling ------------------------------------------------------------------------


def test_failed_sign_ins_of_one_username_get_429_with_retry_after(
    client: TestClient, viewer: str, limits: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        assert _sign_in(client, viewer, "sai-mật-khẩu").status_code == 401
    r = _sign_in(client, viewer, PASSWORD)  # even the right password, until the window moves
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "try again later" in r.json()["detail"]


def test_every_attempt_from_one_address_counts(
    client: TestClient, viewer: str, limits: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        assert _sign_in(client, f"ai-do-{n}", "đoán-bừa-thôi").status_code == 401
    r = _sign_in(client, viewer, PASSWORD)
    assert r.status_code == 429 and "this address" in r.json()["detail"]


def test_the_limit_expires_it_never_locks_for_good(
    client: TestClient, viewer: str, limits: pytest.MonkeyPatch
) -> None:
    limits.setattr(get_settings(), "token_rate_per_username", "2 per 4 seconds")
    for _ in range(2):
        assert _sign_in(client, viewer, "sai-mật-khẩu").status_code == 401
    r = _sign_in(client, viewer, PASSWORD)
    assert r.status_code == 429
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 4
    time.sleep(wait + 0.3)
    assert _sign_in(client, viewer, PASSWORD).status_code == 200


def _redis_url() -> str:
    url = os.environ.get("LOAXA_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {url} (CI runs this test)")
    return url


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_counts_live_in_the_storage_redis_shares_them_between_workers(
    client: TestClient, viewer: str, limits: pytest.MonkeyPatch, storage: str
) -> None:
    uri = _redis_url() if storage == "redis" else "memory://"
    limits.setattr(get_settings(), "rate_limit_storage", uri)
    throttle.reset()
    try:
        for _ in range(3):
            assert _sign_in(client, viewer, "sai-mật-khẩu").status_code == 401
        assert _sign_in(client, viewer, PASSWORD).status_code == 429
        # Another worker: a storage client of its own. Redis has the counts; memory does not.
        throttle._limiter.cache_clear()
        expected = 429 if storage == "redis" else 200
        assert _sign_in(client, viewer, PASSWORD).status_code == expected
    finally:
        throttle.reset()
        throttle._limiter.cache_clear()


def test_a_storage_that_fails_leaves_sign_in_working(
    client: TestClient, viewer: str, limits: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limits.setattr(get_settings(), "rate_limit_storage", f"redis://127.0.0.1:{port}/0")
    try:
        assert _sign_in(client, viewer, PASSWORD).status_code == 200
    finally:
        throttle._limiter.cache_clear()
    assert "sign-in throttling is off" in caplog.text


# --- the client address behind a reverse proxy -------------------------------------------------


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    server_url: str, viewer: str, limits: pytest.MonkeyPatch
) -> None:
    """The server's peer is 127.0.0.1, a trusted proxy by default."""
    client_a = {"X-Forwarded-For": "203.0.113.5"}
    with httpx.Client(base_url=server_url) as http:
        for n in range(5):  # one address guessing at five accounts
            assert _sign_in(http, f"khach{n}", "sai", **client_a).status_code == 401
        assert _sign_in(http, viewer, PASSWORD, **client_a).status_code == 429
        # Another client behind the same proxy has its own budget ...
        client_b = {"X-Forwarded-For": "198.51.100.7"}
        assert _sign_in(http, viewer, PASSWORD, **client_b).status_code == 200
        # ... and a client cannot buy a new one by writing its own X-Forwarded-For: the proxy
        # appends the address it saw, and that is the one that counts.
        spoofed = {"X-Forwarded-For": "10.9.9.9, 203.0.113.5"}
        assert _sign_in(http, viewer, PASSWORD, **spoofed).status_code == 429

        # No trusted proxy: the header is ignored and the peer (127.0.0.1) is the client.
        limits.setattr(get_settings(), "trusted_proxies", "")
        throttle.reset()
        for n in range(5):
            xff = {"X-Forwarded-For": f"192.0.2.{n}"}
            assert _sign_in(http, f"khach{n}", "sai", **xff).status_code == 401
        fresh = {"X-Forwarded-For": "192.0.2.99"}
        assert _sign_in(http, viewer, PASSWORD, **fresh).status_code == 429


# --- size limits and slow senders ---------------------------------------------------------------


@pytest.fixture
def editor(client: TestClient) -> dict[str, str]:
    make_user("editor1", Role.editor, make_station()["station_id"])
    return login(client, "editor1")


def test_a_json_body_past_the_limit_is_413(
    client: TestClient, editor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_body_bytes", 4096)
    body = {"title": "Tin", "programme": "cchc", "topic": "progress", "script": "a" * 5000}
    r = client.post("/api/v1/segments", json=body, headers=editor)
    assert r.status_code == 413
    assert r.json()["detail"].startswith("the request body is") and "4096" in r.json()["detail"]

    # Without a Content-Length (chunked), it is cut off as it arrives.
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "Tin", "programme": "cchc", "topic": "progress", "script": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    headers = {**editor, "Content-Type": "application/json"}
    r = client.post("/api/v1/segments", content=chunks(), headers=headers)
    assert r.status_code == 413 and "larger than 4096 bytes" in r.json()["detail"]


def test_a_query_string_past_the_limit_is_414(
    client: TestClient, editor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_query_bytes", 1000)
    r = client.get("/api/v1/tts/preview", params={"text": "x" * 2000}, headers=editor)
    assert r.status_code == 414 and "at most 1000" in r.json()["detail"]
    ok = client.get("/api/v1/tts/preview", params={"text": "UBND xã"}, headers=editor)
    assert ok.status_code == 200


def _raw_request(url: str, head: str, first: bytes, wait_s: float) -> tuple[int, float, bytes]:
    """Send the head and part of a body, then nothing: the status and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as s:
        started = time.monotonic()
        s.sendall(head.encode() + first)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return int(answer.split(b" ", 2)[1]), time.monotonic() - started, answer


def test_an_upload_that_stops_arriving_is_cut_off_with_408(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "body_idle_seconds", 0.5)
    make_user("editor1", Role.editor, make_station()["station_id"])
    with httpx.Client(base_url=server_url) as http:
        token = _sign_in(http, "editor1", PASSWORD).json()["access_token"]
        r = http.post(
            "/api/v1/segments",
            json={"title": "Tin", "programme": "cchc", "topic": "progress"},
            headers={"Authorization": f"Bearer {token}"},
        )
        sid = r.json()["id"]
    part = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\nID3'
    head = (
        f"PUT /api/v1/segments/{sid}/audio HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 100000\r\n\r\n"
    )
    status, took, answer = _raw_request(server_url, head, part, wait_s=10)
    assert status == 408, answer
    assert took < 5 and b"stopped arriving" in answer

    # A JSON body that stops arriving: the same, from the middleware.
    head = (
        "POST /api/v1/segments HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    )
    status, took, answer = _raw_request(server_url, head, b'{"title": "Ti', wait_s=10)
    assert status == 408 and took < 5, answer


def test_a_slow_answer_is_not_cut_off_by_the_body_deadline(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the body has arrived, waiting on the client (a streaming answer listens for its
    disconnect) has no deadline: a long download over a slow link goes on."""
    from fastapi.responses import StreamingResponse

    from app.main import create_app

    monkeypatch.setattr(get_settings(), "body_idle_seconds", 0.2)
    app = create_app()

    @app.get("/test-slow", include_in_schema=False)
    def slow() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            for n in range(3):
                time.sleep(0.3)
                yield f"{n};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    with TestClient(app) as client:
        r = client.get("/test-slow")
    assert r.status_code == 200 and r.text == "0;1;2;"


# --- security headers ----------------------------------------------------------------------------


def _app_with_extras() -> FastAPI:
    from app.main import create_app

    app = create_app()

    @app.get("/test-own-csp", include_in_schema=False)
    def own_csp() -> HTMLResponse:  # as the console's pages do
        return HTMLResponse("<p>ok</p>", headers={"Content-Security-Policy": "default-src 'self'"})

    @app.get("/test-boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("boom")

    return app


def test_security_headers_on_every_answer(database_url: str) -> None:
    with TestClient(_app_with_extras(), raise_server_exceptions=False) as client:
        answers = {
            "json": client.get("/healthz"),
            "404": client.get("/no-such-page"),
            "401": client.get("/api/v1/segments"),
            "500": client.get("/test-boom"),
            "docs": client.get("/docs"),
            "own": client.get("/test-own-csp"),
        }
    assert answers["500"].status_code == 500
    for name, r in answers.items():
        assert r.headers["X-Content-Type-Options"] == "nosniff", name
        assert r.headers["X-Frame-Options"] == "DENY", name
        assert r.headers["Referrer-Policy"] == "no-referrer", name
        assert "Strict-Transport-Security" not in r.headers, name  # plain HTTP
        assert len(r.headers["X-Request-ID"]) == 32, name
    for name in ("json", "404", "401", "500"):
        assert answers[name].headers["Content-Security-Policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        ), name
    assert "cdn.jsdelivr.net" in answers["docs"].headers["Content-Security-Policy"]
    assert answers["own"].headers["Content-Security-Policy"] == "default-src 'self'"


def test_hsts_only_over_https(server_url: str) -> None:
    with httpx.Client(base_url=server_url) as http:
        assert "Strict-Transport-Security" not in http.get("/healthz").headers
        # TLS ends at the trusted proxy in front, which says so.
        r = http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000"


# --- no secret in the logs ----------------------------------------------------------------------


def test_no_password_or_token_appears_in_any_log_line(
    database_url: str,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
    busy_google: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole run at DEBUG, every logger (SQL with its parameters, uvicorn's access log
    too): sign-ins right and wrong, a user created, devices made and polling, uploads,
    text-to-speech, as-run reports, errors; then every secret used is searched for."""
    import uvicorn

    from app.main import create_app

    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # as an earlier server left them
        caplog.set_level(logging.DEBUG, logger=name)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    secrets: set[str] = {PASSWORD, get_settings().signing_key()}
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            # log_config=None: uvicorn's loggers (its access log too) reach the capture.
            uvicorn.Config(create_app(), log_config=None, lifespan="off", access_log=True)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=60) as http:
                world = _scenario(http, tmp_path)
        finally:
            server.should_exit = True
            thread.join(5)
    secrets |= set(world.tokens.values()) | set(world.passwords.values()) | world.extra
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    lines += [r.getMessage() for r in caplog.records]
    text = "\n".join(lines)
    assert len(caplog.records) > 100  # the run was logged, at DEBUG
    names = {r.name for r in caplog.records}
    assert "uvicorn.access" in names, names
    assert any(r.name == "loaxa.access" for r in caplog.records)
    found = sorted(s[:12] + "…" for s in secrets if s in text)
    assert found == [], f"secrets in the logs: {found}"


def _scenario(http: httpx.Client, tmp: Any) -> Any:
    """The world through a real server, and the traffic of a day."""
    from tests.world import build_world

    world: Any = build_world(http, tmp)  # type: ignore[arg-type]
    extra = {"sai-mật-khẩu-123", "mật-khẩu-người-mới-2024"}
    h = world.headers
    _sign_in(http, "viewer1", "sai-mật-khẩu-123")
    _sign_in(http, "khong-co-ai", "sai-mật-khẩu-123")
    r = http.post(
        "/api/v1/users",
        json={"username": "moi", "password": "mật-khẩu-người-mới-2024", "role": "viewer",
              "station_id": world.station_a},
        headers=h["admin"],
    )  # fmt: skip
    assert r.status_code == 201, r.text
    http.post("/api/v1/users", json={"username": "x", "password": "ngan"}, headers=h["admin"])
    r = http.post(
        "/api/v1/devices", json={"name": "PC mới", "station_id": world.station_a},
        headers=h["admin"],
    )  # fmt: skip
    extra.add(r.json()["token"])
    for who in ("device", "other_device"):
        http.get("/api/v1/playout/playlist", headers=h[who])
        http.get("/api/v1/playout/emergencies", headers=h[who])
    http.get(f"/api/v1/audio/{world.broadcast['master_sha256']}", headers=h["device"])
    http.get("/api/v1/segments", headers={"Authorization": "Bearer " + world.tokens["viewer"][:-3]})
    http.get("/api/v1/playout/playlist", headers={"Authorization": "Bearer dev_khong-dung-1234"})
    extra.add("dev_khong-dung-1234")
    r = http.post(
        "/api/v1/segments",
        json={"title": "Tin", "programme": "cchc", "topic": "progress", "script": "Kính thưa."},
        headers=h["editor"],
    )
    http.post(f"/api/v1/segments/{r.json()['id']}/tts", json={"engine": "auto"},
              headers=h["editor"])  # fmt: skip
    world.extra = extra
    return world
