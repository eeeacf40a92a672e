"""One guard for every request body (issue 21, findings 2 and 5), through a real server.

The server runs in this process (``server_url``), so its memory is this process's resident
set: each test measures it before and after sending, and counts how much of the body the
server took before it answered (a server that reads on is still taking bytes).
"""

from __future__ import annotations

import re
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.accounts.models import Role
from app.config import get_settings
from tests.helpers import PASSWORD, make_station, make_user

MB = 1024 * 1024
BOUNDARY = "loaxaBoundary7"

# Generous: the machine may be busy (argon2, ffmpeg); no answer should come near it.
TIMEOUT = 60.0


def _rss() -> int:
    """This process's resident memory in bytes (the server runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _file_part(name: str = "file", filename: str = "a.mp3") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


def _zeros(total: int, block: int = 256 * 1024) -> Iterator[bytes]:
    chunk = b"\0" * block
    for _ in range(total // block):
        yield chunk


def _chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def _send(
    url: str, head: str, body: Iterator[bytes], *, timeout: float = 20.0
) -> tuple[int, int, bytes]:
    """Send the head, then the body as long as the server takes it; (status, body bytes the
    server took before answering or hanging up, the answer)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode())
        sent = 0
        for chunk in body:
            if select.select([s], [], [], 0)[0]:
                break  # the server has answered (or hung up): stop sending
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer.startswith(b"HTTP/1.1 "), (sent, answer[:200])
    return int(answer.split(b" ", 2)[1]), sent, answer


def _head(path: str, *, length: int | None = None, extra: str = "") -> str:
    size = (
        f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    )
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{size}\r\n"
    )


@pytest.fixture
def station(database_url: str) -> int:
    station_id = int(make_station()["station_id"])  # type: ignore[call-overload]
    make_user("editor1", Role.editor, station_id)
    return station_id


def test_800_mb_multipart_without_a_token_is_cut_early_and_memory_stays_flat(
    server_url: str, station: int
) -> None:
    """Finding 2: before, the server read all 800 MB (239 MB -> 1.7 GB) and then said 401."""
    total = 800 * MB
    httpx.get(server_url + "/healthz", timeout=TIMEOUT)  # warm up
    before = _rss()
    # Declared: refused from the header, before a byte of it is read, before sign-in.
    status, sent, answer = _send(
        server_url,
        _head("/api/v1/segments", length=total),
        (c for part in ([_file_part()], _zeros(total)) for c in part),
    )
    assert status == 413, answer
    assert sent < 64 * MB
    # Chunked, no length: counted as it arrives and cut at LOAXA_MAX_BODY_BYTES.
    status, sent, answer = _send(
        server_url,
        _head("/api/v1/segments"),
        _chunked(c for part in ([_file_part()], _zeros(total)) for c in part),
    )
    assert status == 413, answer
    assert b"larger than" in answer
    assert sent < 64 * MB
    assert _rss() - before < 100 * MB


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/signin"])
def test_a_600_mb_file_part_to_a_sign_in_form_is_refused_without_spooling(
    server_url: str, station: int, path: str
) -> None:
    """Finding 2: before, the file part was spooled to a temporary file on the server."""
    total = 600 * MB
    fields = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\neditor1\r\n'
    ).encode()
    before = _rss()
    tmp_before = set(Path("/tmp").iterdir())
    status, sent, answer = _send(
        server_url,
        _head(path),
        _chunked(c for part in ([fields, _file_part()], _zeros(total)) for c in part),
    )
    assert status == 413, answer
    assert sent < 64 * MB
    assert _rss() - before < 100 * MB
    new_files = [p for p in set(Path("/tmp").iterdir()) - tmp_before if p.is_file()]
    assert all(p.stat().st_size < 2 * MB for p in new_files if p.exists())
    if path == "/signin":  # the console says it in words
        assert b"text/html" in answer.lower()


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/signin", "/api/v1/segments"])
def test_a_stalled_multipart_body_is_cut_at_the_idle_limit(
    server_url: str, station: int, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2: a stalled multipart body stayed open past 50 s (urlencoded: cut at 30 s)."""
    monkeypatch.setattr(get_settings(), "body_idle_seconds", 0.5)

    # The start of a body that says it has 100 000 bytes, then nothing: the server must give up.
    first = iter([_file_part() + b"ID3"])
    status, _sent, answer = _send(server_url, _head(path, length=100_000), first, timeout=10)
    assert status == 408, answer


def _console_session(http: httpx.Client) -> str:
    page = http.get("/")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token
    r = http.post(
        "/signin",
        data={"csrf_token": token.group(1), "username": "editor1", "password": PASSWORD},
    )
    assert r.status_code in (200, 303), r.text
    again = re.search(r'name="csrf_token" value="([0-9a-f]+)"', http.get("/segments/new").text)
    assert again
    return again.group(1)


def test_a_chunked_console_upload_over_the_limit_is_413(
    server_url: str, station: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 5: a 13 MB file sent chunked was accepted under a 5 MiB limit."""
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 5 * MB)
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=TIMEOUT) as http:
        csrf = _console_session(http)
        r = http.post(
            "/segments/new",
            data={
                "csrf_token": csrf,
                "title": "Tin dài",
                "programme": "cchc",
                "topic": "progress",
                "target_month": "2024-03",
            },
        )
        assert r.status_code == 303, r.text
        segment = r.headers["location"].rsplit("/", 1)[-1]

        def body() -> Iterator[bytes]:
            yield (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                f"{csrf}\r\n"
            ).encode()
            yield _file_part(filename="dai.wav") + b"RIFF"
            yield from _zeros(13 * MB)
            yield f"\r\n--{BOUNDARY}--\r\n".encode()

        r = http.post(
            f"/segments/{segment}/audio",
            content=body(),  # a generator: sent chunked, with no Content-Length
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert r.status_code == 413
        assert "quá lớn" in r.text
        # A declared length over the limit: refused before the body is read.
        r = http.post(
            f"/segments/{segment}/audio",
            content=b"".join(body()),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert r.status_code == 413


def test_small_forms_still_work_and_uploads_keep_their_own_larger_limit(
    server_url: str, station: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard refuses what is over the limit only: a sign-in, and an upload larger than
    LOAXA_MAX_BODY_BYTES but within LOAXA_MAX_UPLOAD_BYTES, go through to the app."""
    monkeypatch.setattr(get_settings(), "max_body_bytes", 64 * 1024)
    with httpx.Client(base_url=server_url, timeout=TIMEOUT) as http:
        r = http.post("/api/v1/auth/token", data={"username": "editor1", "password": PASSWORD})
        assert r.status_code == 200
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        sid = http.post(
            "/api/v1/segments",
            json={"title": "Tin", "programme": "cchc", "topic": "progress"},
            headers=headers,
        ).json()["id"]
        noise = b"\x01\x02" * (200 * 1024)  # 400 KB: over the small limit, under the upload's
        r = http.put(
            f"/api/v1/segments/{sid}/audio",
            files={"file": ("x.bin", noise, "application/octet-stream")},
            headers=headers,
        )
        assert r.status_code == 422, r.text  # read whole, and judged by the audio pipeline
