"""Uploads that ffmpeg must not follow, headers that promise too much work, and the bounds
on audio work (issue 21, findings 1 and 10)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.audio import service as audio
from app.audio.pipeline.ffmpeg import _pcm_chunks
from app.config import get_settings
from tests.audio.conftest import lavfi
from tests.audio.test_api import _segment, _upload
from tests.helpers import make_station, staff


@pytest.fixture
def world(client: TestClient) -> dict:
    ids = make_station()
    return {**ids, "h": staff(client, ids["station_id"])}


def _audio_of(client: TestClient, sid: int, h: dict) -> str | None:
    return client.get(f"/api/v1/segments/{sid}", headers=h).json()["audio_sha256"]


def test_a_playlist_named_mp3_is_refused_and_reads_nothing_it_names(
    client: TestClient,
    world: dict,
    sources: dict[str, Path],
    tmp_path: Path,
) -> None:
    """Finding 1: an #EXTM3U playlist named .mp3 that points at a local file (another
    station's audio, by its store path) was accepted as that file's audio."""
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    target = sources["six_seconds"].resolve()  # audio on the server's disk
    playlist = tmp_path / "ban-tin.mp3"
    playlist.write_text(f"#EXTM3U\n#EXTINF:6,x\n{target}\n", encoding="utf-8")
    r = _upload(client, seg["id"], editor, playlist)
    assert r.status_code == 422, r.text
    assert "playlist" in r.json()["detail"]
    assert _audio_of(client, seg["id"], editor) is None


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">', "DASH"),
        (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nm=audio 5004 RTP/AVP 0\r\n", "SDP"),
        (b"ffconcat version 1.0\nfile '/etc/hostname'\n", "concat"),
        (b"\xef\xbb\xbf#EXTM3U\n#EXT-X-VERSION:3\nhttp://127.0.0.1:9/x.ts\n", "playlist"),
    ],
)
def test_stream_descriptions_and_lists_are_refused_naming_what_they_are(
    client: TestClient,
    world: dict,
    tmp_path: Path,
    content: bytes,
    named: str,
) -> None:
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    upload = tmp_path / "a.mp3"
    upload.write_bytes(content)
    r = _upload(client, seg["id"], editor, upload)
    assert r.status_code == 422, r.text
    assert named in r.json()["detail"]


def test_an_image_is_refused_as_an_image(
    client: TestClient,
    world: dict,
    tmp_path: Path,
) -> None:
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    png = tmp_path / "anh.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=16x16",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
            str(png),
        ],
        check=True,
    )
    r = _upload(client, seg["id"], editor, png)
    assert r.status_code == 422 and "image" in r.json()["detail"]


def test_a_webm_recording_as_the_browser_makes_it_is_accepted(
    client: TestClient,
    world: dict,
    tmp_path: Path,
) -> None:
    """What Chrome's and Firefox's MediaRecorder post ("audio/webm;codecs=opus")."""
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    # Streamed as it is recorded: clusters of unknown size, no duration in the header.
    webm = lavfi(
        "sine=f=330:d=3", tmp_path / "ghi-am.webm", "-c:a", "libopus", "-f", "webm", "-live", "1"
    )
    r = _upload(client, seg["id"], editor, webm)
    assert r.status_code == 200, r.text
    assert abs(r.json()["duration_ms"] - 3000) < 100


def test_an_8_channel_384_khz_flac_is_refused_from_its_header(
    client: TestClient,
    world: dict,
    tmp_path: Path,
) -> None:
    """Finding 10: 8 channels at 384 kHz of silence took 42.7 s of CPU before its 422; the
    header says what it is, so it is refused before a sample is decoded."""
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    flac = lavfi("anullsrc=r=384000:cl=7.1", tmp_path / "im.flac", "-t", "2", "-c:a", "flac")
    r = _upload(client, seg["id"], editor, flac)
    assert r.status_code == 422, r.text
    assert "8 channels" in r.json()["detail"]
    high = lavfi("anullsrc=r=192000:cl=mono", tmp_path / "hi.flac", "-t", "2", "-c:a", "flac")
    r = _upload(client, seg["id"], editor, high)
    assert r.status_code == 422 and "192000 Hz" in r.json()["detail"]


def test_every_decoding_ffmpeg_reads_the_one_file_under_cpu_and_memory_limits(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 10: the real ffmpeg child of a decode, seen in /proc while it runs."""
    monkeypatch.setattr(get_settings(), "child_cpu_seconds", 77)
    monkeypatch.setattr(get_settings(), "child_memory_bytes", 900 * 1024 * 1024)
    chunks = _pcm_chunks(sources["music"], "s16le", strict=True)
    next(chunks)  # ffmpeg is running now
    try:
        children = [
            int(pid)
            for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        ffmpegs = [p for p in children if Path(f"/proc/{p}/comm").read_text().strip() == "ffmpeg"]
        assert ffmpegs
        pid = ffmpegs[-1]
        limits = Path(f"/proc/{pid}/limits").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    finally:
        chunks.close()
    assert any(line.startswith("Max cpu time") and " 77 " in line for line in limits.splitlines())
    assert any(
        line.startswith("Max address space") and str(900 * 1024 * 1024) in line
        for line in limits.splitlines()
    )
    joined = b" ".join(argv)
    assert b"-protocol_whitelist file -f wav -i file:" in joined


def test_espeak_runs_under_the_same_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.children import child_limits

    monkeypatch.setattr(get_settings(), "child_cpu_seconds", 33)
    out = subprocess.run(
        ["sh", "-c", "ulimit -t"], capture_output=True, text=True, preexec_fn=child_limits()
    )
    assert out.stdout.strip() == "33"
    import inspect

    from app.tts import engines

    assert "preexec_fn=child_limits()" in inspect.getsource(engines.EspeakEngine.synthesize_chunk)


def test_audio_jobs_past_the_limit_get_503_with_retry_after(
    client: TestClient,
    world: dict,
    sources: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding 10: nothing limited how many ingests ran at once (each peaks near 650 MB)."""
    monkeypatch.setattr(get_settings(), "max_audio_jobs", 1)
    editor = world["h"]["editor"]
    seg = _segment(client, editor)
    busy, release = threading.Event(), threading.Event()

    def another_job() -> None:
        with audio.audio_job():
            busy.set()
            release.wait(30)

    worker = threading.Thread(target=another_job)
    worker.start()
    try:
        assert busy.wait(10)
        r = _upload(client, seg["id"], editor, sources["wav"])
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) > 0
        assert "busy" in r.json()["detail"]
        r = client.post(
            f"/api/v1/segments/{seg['id']}/tts", json={"engine": "espeak"}, headers=editor
        )
        assert r.status_code == 503
    finally:
        release.set()
        worker.join()
    assert _audio_of(client, seg["id"], editor) is None
    r = _upload(client, seg["id"], editor, sources["wav"])  # the slot is free again
    assert r.status_code == 200, r.text


def test_a_17000_character_script_is_refused_before_synthesis(
    client: TestClient,
    world: dict,
) -> None:
    """Finding 10: 17 000 characters spent 48 s in espeak-ng before being refused as 31
    minutes long; the words are counted against the programme's window first."""
    editor = world["h"]["editor"]
    sentence = "Ủy ban nhân dân xã thông báo kết quả cải cách hành chính năm nay. "
    script = (sentence * (17_000 // len(sentence) + 1))[:17_000]
    r = client.post(
        "/api/v1/segments",
        json={"title": "Dài", "programme": "cchc", "topic": "progress", "script": script},
        headers=editor,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/segments/{r.json()['id']}/tts", json={"engine": "espeak"}, headers=editor
    )
    assert r.status_code == 422, r.text
    assert "words" in r.json()["detail"] and "shorten it" in r.json()["detail"]
