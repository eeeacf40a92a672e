"""TTS engines and script synthesis: real espeak-ng, real gTTS code against a local stub.

gTTS builds its real batchexecute POST and parses the stub's answer itself; the stub listens
on 127.0.0.1 and answers with a real MP3 made by ffmpeg. A guard fails any test whose HTTP
request would leave the machine or go through a proxy.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import requests.adapters

from app import clock
from app.tts.engines import (
    GTTS_COOLDOWN,
    GTTS_MAX_CHARS,
    GTTS_PATH,
    AutoEngine,
    EspeakEngine,
    GTTSCooldown,
    GTTSEngine,
    SynthesisFailed,
    get_engine,
)
from app.tts.normalize import ScriptProblem
from app.tts.splitting import chunk, paragraphs
from app.tts.synthesis import (
    CHUNK_PAUSE_MS,
    RATE,
    SynthesisResult,
    preview,
    synthesis_key,
    synthesize_script,
)
from tests.tts.conftest import SilentGoogle

SENTENCE = "Kính thưa bà con, Ủy ban nhân dân xã thông báo lịch tiếp công dân trong tháng này."
SCRIPT = (
    "THÔNG BÁO\n"
    "UBND xã Xuân Phúc thông báo: từ ngày 04/01/2024, bà con đến Bộ phận một cửa để làm "
    "TTHC, mang theo CCCD và sổ hộ khẩu, hoặc nộp hồ sơ trực tuyến trên Cổng DVC quốc gia.\n"
    "Đường dây nóng 0237 3868 115.\n"
    "\n"
    "Xin trân trọng cảm ơn bà con!"
)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# --- Audio helpers -----------------------------------------------------------------------------


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    """Parameters and int16 samples of a WAV file."""
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        samples = np.frombuffer(w.readframes(params.nframes), dtype="<i2")
    return params, samples


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of the samples in dBFS."""
    x = samples.astype(np.float64) / 32768.0
    return 20 * np.log10(max(float(np.sqrt(np.mean(x**2))), 1e-10))


def decoded_frames(path: Path) -> int:
    """Frames of a file as ffmpeg decodes it to mono 44.1 kHz (as synthesis does)."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
         "-ar", str(RATE), "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return len(out) // 2


def make_mp3(out: Path, source: str) -> bytes:
    """A real MP3 as gTTS receives it (24 kHz mono, 32 kb/s), from a lavfi source."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-ac", "1",
         "-ar", "24000", "-c:a", "libmp3lame", "-b:a", "32k", str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


@pytest.fixture(scope="module")
def mp3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stub-mp3")


@pytest.fixture(scope="module")
def voice_mp3(mp3_dir: Path) -> Path:
    """0.8 s of a voice-like tone."""
    path = mp3_dir / "voice.mp3"
    make_mp3(path, "sine=frequency=220:duration=0.8")
    return path


@pytest.fixture(scope="module")
def silent_mp3(mp3_dir: Path) -> Path:
    path = mp3_dir / "silent.mp3"
    make_mp3(path, "anullsrc=r=24000:cl=mono:d=0.8")
    return path


# --- The Google stub ---------------------------------------------------------------------------


def batchexecute_body(audio: bytes) -> bytes:
    """An answer in the format of translate.google.com's batchexecute RPC."""
    compact = (",", ":")  # Google sends JSON without spaces; gTTS's regex relies on it
    payload = json.dumps([base64.b64encode(audio).decode("ascii")], separators=compact)
    envelope = json.dumps(
        [["wrb.fr", "jQ1olc", payload, None, None, None, "generic"]], separators=compact
    )
    return f")]}}'\n\n{len(envelope)}\n{envelope}\n".encode()


class GoogleStub:
    """A local batchexecute endpoint; ``modes`` are consumed one per request, then ``mode``.

    Modes: ok, silent, no_audio, 429, 500, 503, close (drop the connection), sleep (answer
    after ``delay_s``).
    """

    def __init__(self, voice: bytes, silent: bytes) -> None:
        self.audio = {"ok": voice, "silent": silent}
        self.mode = "ok"
        self.modes: list[str] = []
        self.delay_s = 0.0
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                stub.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def texts(self) -> list[str]:
        return [r["text"] for r in self.requests]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers["Content-Length"])).decode("ascii")
        (rpc_id, escaped, _, _), *_ = json.loads(parse_qs(body)["f.req"][0])[0]
        text, lang, speed, _ = json.loads(escaped)
        with self._lock:
            self.requests.append(
                {"path": h.path, "rpc": rpc_id, "text": text, "lang": lang, "speed": speed,
                 "content_type": h.headers["Content-Type"]}
            )  # fmt: skip
            mode = self.modes.pop(0) if self.modes else self.mode
        if mode == "close":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "sleep":
            self._stop.wait(self.delay_s)
            mode = "ok"
        if mode.isdigit():
            h.send_response(int(mode))
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if mode == "no_audio":
            envelope = json.dumps(
                [["wrb.fr", "jQ1olc", None, None, None, [3], "generic"]], separators=(",", ":")
            )
            answer = f")]}}'\n\n{len(envelope)}\n{envelope}\n".encode()
        else:
            answer = batchexecute_body(self.audio[mode])
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(answer)))
        h.end_headers()
        h.wfile.write(answer)

    def __enter__(self) -> GoogleStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No proxies, and every HTTP request must go to 127.0.0.1: fail loudly otherwise."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    sent: list[str] = []
    real_send = requests.adapters.HTTPAdapter.send

    def guarded_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        assert urlsplit(request.url).hostname == "127.0.0.1", f"test went online: {request.url}"
        assert not any(kwargs.get("proxies") or {}), f"request through a proxy: {kwargs}"
        sent.append(request.url)
        return real_send(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", guarded_send)
    return sent


@pytest.fixture
def stub(voice_mp3: Path, silent_mp3: Path) -> Iterator[GoogleStub]:
    with GoogleStub(voice_mp3.read_bytes(), silent_mp3.read_bytes()) as s:
        yield s


def fast_auto(endpoint: str, *, timeout_s: float = 5.0, attempts: int = 3) -> AutoEngine:
    """gTTS then espeak-ng, with tiny retry waits so tests stay fast."""
    return AutoEngine(
        GTTSEngine(timeout_s=timeout_s, endpoint=endpoint),
        EspeakEngine(),
        attempts=attempts,
        wait_min_s=0.01,
        wait_max_s=0.02,
    )


def expected_chunks(normalized: str, max_chars: int) -> list[str]:
    return [c for p in paragraphs(normalized) for s in p for c in chunk(s, max_chars)]


def assert_speech_wav(result: SynthesisResult, min_s: float = 1.0) -> np.ndarray:
    params, samples = read_wav(result.path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, RATE)
    assert params.nframes / RATE > min_s
    assert rms_dbfs(samples) > -40
    assert result.duration_ms == params.nframes * 1000 // RATE
    return samples


def fallback_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "loaxa.tts" and "falling back" in r.getMessage()
    ]


# --- espeak-ng ---------------------------------------------------------------------------------


def test_espeak_really_speaks_vietnamese(tmp_path: Path) -> None:
    out = tmp_path / "vi.wav"
    EspeakEngine().synthesize_chunk(SENTENCE, out)
    params, samples = read_wav(out)
    assert params.nchannels == 1
    assert params.nframes / params.framerate > 1.0
    assert rms_dbfs(samples) > -35


def test_espeak_script_is_mono_44k_wav_with_one_chunk_per_sentence(tmp_path: Path) -> None:
    result = synthesize_script(SCRIPT, engine="espeak", work_dir=tmp_path)
    assert_speech_wav(result, min_s=5.0)
    assert (result.engine, result.voice) == ("espeak", "vi")
    assert result.path.parent == tmp_path
    assert "Ủy ban nhân dân" in result.normalized_text
    assert result.chunks == len(expected_chunks(result.normalized_text, 600))
    assert result.chunks == sum(len(p) for p in paragraphs(result.normalized_text))
    assert sorted(p.name for p in tmp_path.iterdir()) == [result.path.name]  # scratch removed


def test_espeak_missing_binary_is_not_retryable(tmp_path: Path) -> None:
    with pytest.raises(SynthesisFailed, match="not installed") as info:
        EspeakEngine(binary="espeak-ng-does-not-exist").synthesize_chunk("xin chào", tmp_path / "x")
    assert info.value.retryable is False


def test_espeak_unknown_voice_fails_with_its_message(tmp_path: Path) -> None:
    with pytest.raises(SynthesisFailed, match="espeak-ng failed"):
        EspeakEngine(voice="nosuchvoice").synthesize_chunk("xin chào", tmp_path / "x.wav")


def test_espeak_text_starting_with_dash_is_read_not_parsed(tmp_path: Path) -> None:
    out = tmp_path / "dash.wav"
    EspeakEngine().synthesize_chunk("-v xin chào bà con", out)
    assert read_wav(out)[0].nframes / 22050 > 0.5


# --- gTTS against the stub ---------------------------------------------------------------------


def test_gtts_defaults_to_google_and_the_override_only_moves_the_url(
    stub: GoogleStub, offline: list[str]
) -> None:
    default = GTTSEngine().make_tts("Xin chào bà con.")
    overridden = GTTSEngine(endpoint=stub.url, timeout_s=3).make_tts("Xin chào bà con.")
    (google,) = default._prepare_requests()  # prepared, never sent
    (local,) = overridden._prepare_requests()
    assert google.url == "https://translate.google.com" + GTTS_PATH
    assert local.url == stub.url + GTTS_PATH
    assert local.body == google.body and local.headers == google.headers
    assert (default.timeout, overridden.timeout) == (10.0, 3)
    assert offline == []


def test_gtts_sends_the_normalised_chunks_to_the_stub(
    stub: GoogleStub, offline: list[str], tmp_path: Path
) -> None:
    result = synthesize_script(SCRIPT, engine="gtts", gtts_endpoint=stub.url, work_dir=tmp_path)
    assert (result.engine, result.voice) == ("gtts", "vi")
    assert_speech_wav(result)
    chunks = expected_chunks(result.normalized_text, GTTS_MAX_CHARS)
    assert any(len(s) > GTTS_MAX_CHARS for p in paragraphs(result.normalized_text) for s in p)
    assert stub.texts == chunks and result.chunks == len(chunks)
    assert all(len(text) <= GTTS_MAX_CHARS for text in stub.texts)
    assert "UBND" not in " ".join(stub.texts) and "Ủy ban nhân dân" in stub.texts[1]
    sent = {(r["path"], r["rpc"], r["lang"]) for r in stub.requests}
    assert sent == {(GTTS_PATH, "jQ1olc", "vi")}
    assert len(offline) == len(chunks) and all(u.startswith(stub.url) for u in offline)


def test_pauses_make_the_whole_longer_than_its_chunks(
    stub: GoogleStub, voice_mp3: Path, tmp_path: Path
) -> None:
    chunk_frames = decoded_frames(voice_mp3)
    result = synthesize_script(
        SCRIPT, engine="gtts", gtts_endpoint=stub.url, work_dir=tmp_path,
        sentence_pause_ms=400, paragraph_pause_ms=1000,
    )  # fmt: skip
    plan = [[chunk(s, GTTS_MAX_CHARS) for s in p] for p in paragraphs(result.normalized_text)]
    pauses_ms = (
        1000 * (len(plan) - 1)
        + 400 * sum(len(p) - 1 for p in plan)
        + CHUNK_PAUSE_MS * sum(len(s) - 1 for p in plan for s in p)
    )
    frames = read_wav(result.path)[0].nframes
    assert frames > result.chunks * chunk_frames
    assert frames - result.chunks * chunk_frames == pytest.approx(pauses_ms * RATE / 1000, abs=10)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("429", "HTTP 429"), ("500", "HTTP 500"), ("503", "HTTP 503"), ("close", "cannot reach")],
)
def test_gtts_alone_raises_retryable(
    stub: GoogleStub, tmp_path: Path, mode: str, reason: str
) -> None:
    stub.mode = mode
    with pytest.raises(SynthesisFailed, match=reason) as info:
        synthesize_script(SCRIPT, engine="gtts", gtts_endpoint=stub.url, work_dir=tmp_path)
    assert info.value.retryable is True
    assert len(stub.requests) == 1  # gtts alone does not retry
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


@pytest.mark.parametrize(
    ("mode", "reason"), [("429", "HTTP 429"), ("500", "HTTP 500"), ("close", "cannot reach")]
)
def test_auto_retries_then_falls_back_to_espeak(
    stub: GoogleStub, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, reason: str
) -> None:
    caplog.set_level(logging.INFO, logger="loaxa.tts")
    stub.mode = mode
    result = synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path)
    assert (result.engine, result.voice) == ("espeak", "vi")
    assert_speech_wav(result, min_s=5.0)
    assert len(stub.requests) == 3  # three attempts on the first chunk, then espeak-ng
    (message,) = fallback_records(caplog)
    assert reason in message and "gTTS" in message
    assert any(reason in w and "espeak" in w for w in result.warnings)


def test_auto_by_name_falls_back_at_once_on_an_answer_without_audio(
    stub: GoogleStub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="loaxa.tts")
    stub.mode = "no_audio"
    started = time.monotonic()
    result = synthesize_script(SCRIPT, engine="auto", gtts_endpoint=stub.url, work_dir=tmp_path)
    assert time.monotonic() - started < 5
    assert result.engine == "espeak"
    assert len(stub.requests) == 1  # not retryable: no second attempt, no backoff wait
    assert "held no audio" in fallback_records(caplog)[0]


def test_gtts_answer_without_audio_is_not_retryable(stub: GoogleStub, tmp_path: Path) -> None:
    stub.mode = "no_audio"
    with pytest.raises(SynthesisFailed, match="held no audio") as info:
        GTTSEngine(endpoint=stub.url).synthesize_chunk("Xin chào.", tmp_path / "x.mp3")
    assert info.value.retryable is False


def test_network_down_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = get_engine("gtts", gtts_endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(SynthesisFailed, match="cannot reach") as info:
        engine.synthesize_chunk("Xin chào.", tmp_path / "x.mp3")
    assert info.value.retryable is True


def test_timeout_is_honoured(stub: GoogleStub, tmp_path: Path) -> None:
    stub.mode, stub.delay_s = "sleep", 10.0
    started = time.monotonic()
    with pytest.raises(SynthesisFailed, match="timeout") as info:
        synthesize_script(
            SCRIPT, engine="gtts", gtts_endpoint=stub.url, timeout_s=0.5, work_dir=tmp_path
        )
    assert time.monotonic() - started < 2.0
    assert info.value.retryable is True


def test_auto_falls_back_on_timeouts_within_a_few_seconds(
    stub: GoogleStub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="loaxa.tts")
    stub.mode, stub.delay_s = "sleep", 10.0
    started = time.monotonic()
    result = synthesize_script(SCRIPT, engine=fast_auto(stub.url, timeout_s=0.4), work_dir=tmp_path)
    assert time.monotonic() - started < 5.0
    assert result.engine == "espeak"
    assert "timeout" in fallback_records(caplog)[0]


# --- Cool-down: gTTS skipped after it stops answering ------------------------------------------

T0 = datetime(2024, 3, 4, 7, 30, tzinfo=UTC)  # 14:30 in Vietnam
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_auto_skips_a_silent_google_during_the_cooldown_then_tries_again(
    silent_google: SilentGoogle, tmp_path: Path
) -> None:
    def run(sub: str) -> tuple[SynthesisResult, float]:
        started = time.monotonic()
        result = synthesize_script(
            SCRIPT, engine="auto", gtts_endpoint=silent_google.url, timeout_s=0.3,
            gtts_cooldown_s=300, tz=VIETNAM, work_dir=tmp_path / sub,
        )  # fmt: skip
        return result, time.monotonic() - started

    clock.set_now(lambda: T0)
    first, first_s = run("first")
    assert first.engine == "espeak"
    assert silent_google.accepted == 3  # three tries, each waiting out its 0.3 s timeout
    assert first_s > 3 * 0.3 + 0.5 + 1.0  # the timeouts and the back-off between the tries
    assert any("because gTTS failed" in w and "timeout" in w for w in first.warnings)

    clock.set_now(lambda: T0 + timedelta(seconds=299))
    second, _ = run("second")
    assert second.engine == "espeak"
    assert silent_google.accepted == 3  # no connection at all: no timeout waited out
    (warning,) = [w for w in second.warnings if "gTTS" in w]
    assert warning.startswith(
        "read by espeak-ng without trying gTTS: gTTS skipped until 14:35 +07 after a failure"
        " at 14:30 +07: gTTS: no answer from 127.0.0.1:"
    )
    assert np.array_equal(read_wav(second.path)[1], read_wav(first.path)[1])

    clock.set_now(lambda: T0 + timedelta(seconds=300))
    third, _ = run("third")
    assert third.engine == "espeak"
    assert silent_google.accepted == 6  # the cool-down is over: gTTS was tried again
    assert any("because gTTS failed" in w for w in third.warnings)
    skip = GTTS_COOLDOWN.skip_reason(silent_google.url + GTTS_PATH, tz=VIETNAM)
    assert skip is not None and skip.startswith("gTTS skipped until 14:40 +07")


def test_a_gtts_success_after_the_cooldown_closes_the_breaker(
    stub: GoogleStub, tmp_path: Path
) -> None:
    clock.set_now(lambda: T0)
    stub.mode = "503"
    assert synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path).engine == (
        "espeak"
    )
    assert len(stub.requests) == 3
    clock.set_now(lambda: T0 + timedelta(minutes=6))
    stub.mode = "ok"
    result = synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path)
    assert result.engine == "gtts" and result.warnings == []
    assert GTTS_COOLDOWN.skip_reason(stub.url + GTTS_PATH) is None
    stub.mode = "503"  # a later outage is learnt afresh: three tries again
    synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path)
    assert len(stub.requests) == 3 + result.chunks + 3


@pytest.mark.parametrize("mode", ["no_audio", "silent"])
def test_an_unusable_answer_does_not_start_a_cooldown(
    stub: GoogleStub, tmp_path: Path, mode: str
) -> None:
    stub.mode = mode
    sent = []
    for sub in ("a", "b"):
        result = synthesize_script(
            SCRIPT, engine="auto", gtts_endpoint=stub.url, work_dir=tmp_path / sub
        )
        assert result.engine == "espeak"
        assert not any("without trying gTTS" in w for w in result.warnings)
        sent.append(len(stub.requests))
    assert sent[0] >= 1 and sent[1] == 2 * sent[0]  # the second script asked gTTS again
    assert GTTS_COOLDOWN.skip_reason(stub.url + GTTS_PATH) is None


def test_cooldown_rules() -> None:
    breaker = GTTSCooldown()
    clock.set_now(lambda: T0)
    assert breaker.skip_reason("u") is None
    breaker.failed("u", "gTTS: HTTP 503", cooldown_s=0)  # 0 turns the breaker off
    assert breaker.skip_reason("u") is None
    breaker.failed("u", "gTTS: HTTP 503", cooldown_s=90)
    assert breaker.skip_reason("u") == (
        "gTTS skipped until 07:31 UTC after a failure at 07:30 UTC: gTTS: HTTP 503"
    )
    assert breaker.skip_reason("another endpoint") is None
    clock.set_now(lambda: T0 + timedelta(seconds=89))
    assert breaker.skip_reason("u") is not None
    clock.set_now(lambda: T0 + timedelta(seconds=90))
    assert breaker.skip_reason("u") is None
    breaker.failed("u", "again", cooldown_s=90)
    breaker.succeeded("u")
    assert breaker.skip_reason("u") is None


def test_cooldown_is_shared_by_the_threads_of_a_process(silent_google: SilentGoogle) -> None:
    clock.set_now(lambda: T0)
    url = silent_google.url + GTTS_PATH
    threads = [
        threading.Thread(
            target=GTTS_COOLDOWN.failed, args=(url, f"r{i}"), kwargs={"cooldown_s": 60}
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engines = [get_engine("auto", gtts_endpoint=silent_google.url) for _ in range(3)]
    assert all(e.name == "espeak" and e.skipped for e in engines if isinstance(e, AutoEngine))
    assert get_engine("auto", gtts_endpoint="http://127.0.0.1:9").name == "gtts"


def test_auto_retry_that_succeeds_stays_on_gtts(
    stub: GoogleStub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="loaxa.tts")
    stub.modes = ["503", "429"]
    result = synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path)
    assert result.engine == "gtts"
    assert len(stub.requests) == result.chunks + 2
    assert stub.texts[0] == stub.texts[1] == stub.texts[2]
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2
    assert fallback_records(caplog) == []


def test_failure_mid_script_reads_the_whole_script_again_with_espeak(
    stub: GoogleStub, tmp_path: Path
) -> None:
    stub.modes, stub.mode = ["ok", "ok"], "500"
    result = synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path / "a")
    only_espeak = synthesize_script(SCRIPT, engine="espeak", work_dir=tmp_path / "b")
    assert result.engine == "espeak"
    assert len(stub.requests) == 2 + 3
    assert result.chunks == only_espeak.chunks
    # One voice: exactly the audio espeak-ng alone makes, no gTTS chunk kept.
    assert np.array_equal(read_wav(result.path)[1], read_wav(only_espeak.path)[1])


def test_silent_gtts_audio_is_never_returned(
    stub: GoogleStub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="loaxa.tts")
    stub.mode = "silent"
    with pytest.raises(SynthesisFailed, match="only silence"):
        synthesize_script(SCRIPT, engine="gtts", gtts_endpoint=stub.url, work_dir=tmp_path / "g")
    result = synthesize_script(SCRIPT, engine=fast_auto(stub.url), work_dir=tmp_path / "a")
    assert result.engine == "espeak"
    assert_speech_wav(result)
    assert "silence" in fallback_records(caplog)[0]


def test_one_silent_chunk_is_left_out_with_a_warning(stub: GoogleStub, tmp_path: Path) -> None:
    stub.modes = ["ok", "silent"]
    result = synthesize_script(SCRIPT, engine="gtts", gtts_endpoint=stub.url, work_dir=tmp_path)
    assert result.engine == "gtts"
    assert [w for w in result.warnings if "chunk 2 was silent" in w]


# --- Keys, preview, bad scripts, engine names --------------------------------------------------


def test_synthesis_key_is_stable_and_depends_on_engine_voice_text_and_sound() -> None:
    sound = {"sentence_pause_ms": 350, "paragraph_pause_ms": 900, "engine": {"rate_wpm": 150}}
    key = synthesis_key("Xin chào bà con.", "gtts", "vi", sound=sound)
    assert key == synthesis_key(
        "Xin chào bà con.", "gtts", "vi", sound=dict(reversed(sound.items()))
    )
    assert len(key) == 64 and int(key, 16) >= 0
    others = {
        synthesis_key("Xin chào bà con.", "espeak", "vi", sound=sound),
        synthesis_key("Xin chào bà con.", "gtts", "vi-vn-x-south", sound=sound),
        synthesis_key("Xin chào bà con!", "gtts", "vi", sound=sound),
        synthesis_key("Xin chào bà con.", "gtts", "vi", sound={**sound, "sentence_pause_ms": 400}),
        synthesis_key(
            "Xin chào bà con.", "gtts", "vi", sound={**sound, "engine": {"rate_wpm": 120}}
        ),
        synthesis_key("Xin chào bà con.", "gtts", "vi"),
    }
    assert key not in others and len(others) == 6


def test_engines_name_what_changes_their_sound() -> None:
    assert GTTSEngine().sound_options == {"lang": "vi", "tld": "com", "slow": False}
    assert EspeakEngine(rate_wpm=120).sound_options == {"voice": "vi", "rate_wpm": 120}


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("", "empty"),
        ("  \n\t ", "empty"),
        ("😀🎉👍", "unpronounceable"),
        ("- • …", "unpronounceable"),
    ],
)
def test_bad_scripts_raise_script_problem_before_any_request(
    stub: GoogleStub, tmp_path: Path, script: str, code: str
) -> None:
    with pytest.raises(ScriptProblem) as info:
        synthesize_script(script, engine="gtts", gtts_endpoint=stub.url, work_dir=tmp_path)
    assert info.value.code == code
    with pytest.raises(ScriptProblem):
        preview(script)
    assert stub.requests == []


def test_too_long_script_is_a_script_problem(tmp_path: Path) -> None:
    with pytest.raises(ScriptProblem) as info:
        synthesize_script("Xin chào. " * 50, engine="espeak", work_dir=tmp_path, max_chars=100)
    assert info.value.code == "too_long"


def test_preview_is_the_normalised_text() -> None:
    text = preview("UBND xã thông báo 😀", extra_abbreviations={"XP": "Xuân Phúc"})
    assert text == "Ủy ban nhân dân xã thông báo."
    assert preview("Xã XP.", extra_abbreviations={"XP": "Xuân Phúc"}) == "Xã Xuân Phúc."


def test_get_engine_names() -> None:
    assert isinstance(get_engine("gtts", timeout_s=3), GTTSEngine)
    assert isinstance(get_engine("espeak"), EspeakEngine)
    auto = get_engine("auto", gtts_endpoint="http://127.0.0.1:9")
    assert isinstance(auto, AutoEngine) and (auto.name, auto.voice) == ("gtts", "vi")
    with pytest.raises(ValueError, match="unknown TTS engine"):
        get_engine("google")
