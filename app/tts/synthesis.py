"""Read a whole script aloud: validate, normalise, chunk, synthesise, join into one WAV.

The result is a WAV file (mono, 44.1 kHz, 16-bit PCM) in ``work_dir``, meant to go through
``app.audio.pipeline.ingest`` like any upload. Decisions a caller must know:

- Chunks are cut per engine: at most 100 characters for gTTS (its request limit), whole
  sentences (up to 600 characters) for espeak-ng. Chunks never span two sentences.
- Pauses are silence inserted between chunks: ``CHUNK_PAUSE_MS`` between the chunks of one
  long sentence (cut at a comma or before a linking word), ``sentence_pause_ms`` between
  sentences, ``paragraph_pause_ms`` between paragraphs. No silence is added at either end.
- Every chunk is decoded by ffmpeg to s16le mono 44.1 kHz (in worker threads, while the next
  chunk is synthesised) and gets a 5 ms fade at both edges (no clicks where chunks meet). The
  PCM is streamed into the WAV in reading order, not held in memory.
- One announcement, one voice: in ``auto`` mode, when gTTS fails on any chunk (after its
  retries) or returns audio that does not decode or is silent throughout, the whole script is
  started again with espeak-ng, so listeners never hear the voice change mid-announcement.
  ``SynthesisResult.engine`` / ``voice`` name the engine that produced the audio, and a
  warning says why espeak-ng read it: gTTS failed, or gTTS is in its cool-down after an
  earlier failure (``engines.GTTSCooldown``: no connection is made, so no wait).
- ``synthesis_key()`` is the cache key of a synthesis: the normalised text, the engine and
  voice, and ``sound``, every other setting that changes the audio (pauses, speed, the
  loudness the audio is brought to...). ``KEY_VERSION`` changes when the rendering does.
- A chunk that decodes to silence is left out with a warning; a script whose audio is silent
  throughout raises ``SynthesisFailed`` (never an empty or silent file).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np

from app.audio.pipeline.ffmpeg import NotAudio, input_args
from app.children import child_limits
from app.tts.engines import (
    DEFAULT_GTTS_COOLDOWN_S,
    AutoEngine,
    EspeakEngine,
    GTTSEngine,
    SynthesisFailed,
    Synthesizer,
    get_engine,
)
from app.tts.normalize import ScriptProblem, normalize, validate_script
from app.tts.splitting import chunk, paragraphs

__all__ = ["SynthesisResult", "preview", "synthesis_key", "synthesize_script"]

RATE = 44_100
CHUNK_PAUSE_MS = 120  # between the pieces of one sentence
FADE_FRAMES = RATE * 5 // 1000
SILENCE_WINDOW = RATE // 20  # 50 ms
SILENCE_DBFS = -50.0  # a chunk whose loudest 50 ms window is quieter than this is silent
DECODE_TIMEOUT_S = 60
DECODE_WORKERS = 4
MAX_PENDING_DECODES = 8  # bounds the decoded audio held in memory
KEY_VERSION = "loaxa-tts-2"  # bump when the rendering changes, to invalidate caches
SENTENCE_PAUSE_MS = 350
PARAGRAPH_PAUSE_MS = 900


@dataclass
class SynthesisResult:
    """A synthesised script: the WAV file and what produced it."""

    path: Path  # mono 44.1 kHz 16-bit WAV
    engine: str  # the engine that produced the audio: "gtts" or "espeak"
    voice: str
    normalized_text: str
    chunks: int
    warnings: list[str]
    duration_ms: int = 0


@dataclass(frozen=True)
class _Piece:
    """One chunk to synthesise and the silence to put before it."""

    text: str
    pause_ms: int


class _EngineSwitched(Exception):
    """The auto engine fell back mid-script: start again with the new engine."""


def synthesis_key(
    normalized_text: str, engine: str, voice: str, *, sound: Mapping[str, object] | None = None
) -> str:
    """Cache key (sha256 hex) for a normalised text read by an engine and voice with ``sound``.

    ``sound`` holds every other setting that changes the audio (JSON-serialisable values).
    """
    payload = json.dumps(
        [KEY_VERSION, engine, voice, dict(sound or {}), normalized_text],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _prepare(
    text: str, extra_abbreviations: Mapping[str, str] | None, max_chars: int
) -> tuple[str, list[str]]:
    """Validate and normalise a script; ScriptProblem when nothing is left to read."""
    cleaned, warnings = validate_script(text, max_chars=max_chars)
    normalized = normalize(cleaned, extra_abbreviations)
    if not any(ch.isalnum() for ch in normalized):
        raise ScriptProblem(
            "script has nothing to read aloud after normalisation (kịch bản không có chữ để đọc)",
            code="unpronounceable",
        )
    return normalized, warnings


def preview(text: str, extra_abbreviations: Mapping[str, str] | None = None) -> str:
    """What the engine will read for a script (validated and normalised), for the editor."""
    return _prepare(text, extra_abbreviations, 20000)[0]


def _plan(
    normalized: str,
    max_chars: int,
    keep_together: tuple[str, ...],
    sentence_pause_ms: int,
    paragraph_pause_ms: int,
) -> list[_Piece]:
    """Chunks in reading order, each with the pause that comes before it."""
    pieces: list[_Piece] = []
    for p_index, sentences in enumerate(paragraphs(normalized)):
        for s_index, sentence in enumerate(sentences):
            for c_index, text in enumerate(chunk(sentence, max_chars, keep_together=keep_together)):
                if c_index:
                    pause = CHUNK_PAUSE_MS
                elif s_index:
                    pause = sentence_pause_ms
                else:
                    pause = paragraph_pause_ms if p_index else 0
                pieces.append(_Piece(text, pause))
    return pieces


def _decode(path: Path, engine: str) -> np.ndarray:
    """Decode an engine's file to mono 44.1 kHz int16 samples with ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SynthesisFailed("ffmpeg is not installed: cannot decode synthesised audio")
    try:
        source = input_args(path)  # the file alone, as the container its bytes say
    except (OSError, NotAudio) as exc:
        raise SynthesisFailed(f"{engine} audio could not be read: {exc}") from exc
    command = [
        ffmpeg, "-nostdin", "-v", "error", *source,
        "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(RATE), "-",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command, capture_output=True, timeout=DECODE_TIMEOUT_S, preexec_fn=child_limits()
        )
    except subprocess.TimeoutExpired as exc:
        raise SynthesisFailed(f"ffmpeg took too long to decode {engine} audio") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise SynthesisFailed(f"{engine} audio could not be decoded: {detail}")
    data = proc.stdout[: len(proc.stdout) - len(proc.stdout) % 2]
    return np.frombuffer(data, dtype="<i2").copy()


def _is_silent(samples: np.ndarray) -> bool:
    """Whether no 50 ms window reaches SILENCE_DBFS (RMS, full-scale square wave = 0 dBFS)."""
    x = samples.astype(np.float64) / 32768.0
    usable = len(x) - len(x) % SILENCE_WINDOW
    if usable == 0:
        rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    else:
        rms = float(np.sqrt(np.max(np.mean(x[:usable].reshape(-1, SILENCE_WINDOW) ** 2, 1))))
    return rms <= 10 ** (SILENCE_DBFS / 20)


def _fade(samples: np.ndarray) -> np.ndarray:
    """5 ms linear fade-in and fade-out, so joined chunks do not click."""
    n = min(FADE_FRAMES, len(samples) // 2)
    if n == 0:
        return samples
    ramp = np.linspace(0.0, 1.0, n, endpoint=False)
    out = samples.astype(np.float64)
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return np.round(out).astype("<i2")


class _Writer:
    """Streams decoded chunks into the WAV in reading order, with the pauses between them."""

    def __init__(self, wav: wave.Wave_write) -> None:
        self.wav = wav
        self.frames = 0
        self.pending_pause_ms = 0
        self.warnings: list[str] = []

    def add(self, index: int, piece: _Piece, samples: np.ndarray, engine: str) -> None:
        """Append one decoded chunk (left out with a warning when silent)."""
        if samples.size == 0:
            raise SynthesisFailed(f"{engine} produced no audio for chunk {index}")
        self.pending_pause_ms = max(self.pending_pause_ms, piece.pause_ms)
        if _is_silent(samples):
            self.warnings.append(
                f"chunk {index} was silent and left out: {piece.text!r} "
                f"(đoạn {index} không có tiếng, đã bỏ)"
            )
            return
        if self.frames:
            silence = RATE * self.pending_pause_ms // 1000
            self.wav.writeframes(bytes(2 * silence))
            self.frames += silence
        self.wav.writeframes(_fade(samples).tobytes())
        self.frames += len(samples)
        self.pending_pause_ms = 0


def _decode_chunk(path: Path, engine: str) -> np.ndarray:
    """Decode a chunk file, then delete it."""
    try:
        return _decode(path, engine)
    finally:
        path.unlink(missing_ok=True)


def _render(
    engine: GTTSEngine | EspeakEngine | AutoEngine,
    planned: Synthesizer,
    plan: list[_Piece],
    out: Path,
    scratch: Path,
) -> tuple[int, list[str]]:
    """Synthesise every piece and stream it into ``out``; return frames written and warnings.

    Chunks are synthesised one after another; ffmpeg decodes them in a few threads meanwhile
    (its start-up, ~80 ms a chunk, would otherwise add to every request).
    """
    pending: deque[tuple[int, _Piece, Future[np.ndarray]]] = deque()
    with (
        wave.open(str(out), "wb") as wav,
        ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="tts-decode") as pool,
    ):
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        writer = _Writer(wav)

        def drain(keep: int) -> None:
            """Write finished chunks in order; wait while more than ``keep`` are pending."""
            while pending and (len(pending) > keep or pending[0][2].done()):
                index, piece, future = pending.popleft()
                writer.add(index, piece, future.result(), planned.name)

        for index, piece in enumerate(plan, start=1):
            chunk_path = scratch / f"chunk-{index:05d}{planned.suffix}"
            used = engine.synthesize_chunk(piece.text, chunk_path)
            if used is not None and used is not planned:
                raise _EngineSwitched
            pending.append((index, piece, pool.submit(_decode_chunk, chunk_path, planned.name)))
            drain(keep=MAX_PENDING_DECODES)
        drain(keep=0)
    if writer.frames == 0:
        raise SynthesisFailed(f"{planned.name} produced only silence for the whole script")
    return writer.frames, writer.warnings


def synthesize_script(
    script: str,
    *,
    engine: str | GTTSEngine | EspeakEngine | AutoEngine = "auto",
    work_dir: Path,
    extra_abbreviations: Mapping[str, str] | None = None,
    sentence_pause_ms: int = SENTENCE_PAUSE_MS,
    paragraph_pause_ms: int = PARAGRAPH_PAUSE_MS,
    timeout_s: float = 10.0,
    gtts_endpoint: str | None = None,
    gtts_cooldown_s: float = DEFAULT_GTTS_COOLDOWN_S,
    tz: tzinfo = UTC,
    max_chars: int = 20000,
) -> SynthesisResult:
    """Read a script aloud into a mono 44.1 kHz WAV in ``work_dir`` (engine name or instance).

    ``gtts_cooldown_s`` and ``tz`` (for the times in the cool-down warning) serve "auto".
    """
    if sentence_pause_ms < 0 or paragraph_pause_ms < 0:
        raise ValueError("pauses cannot be negative")
    normalized, warnings = _prepare(script, extra_abbreviations, max_chars)
    synth = (
        get_engine(
            engine,
            timeout_s=timeout_s,
            gtts_endpoint=gtts_endpoint,
            gtts_cooldown_s=gtts_cooldown_s,
            tz=tz,
        )
        if isinstance(engine, str)
        else engine
    )
    keep_together = tuple(extra_abbreviations.values()) if extra_abbreviations else ()
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="tts-", suffix=".wav", dir=work_dir)
    os.close(fd)
    out = Path(name)
    try:
        with tempfile.TemporaryDirectory(prefix="tts-chunks-", dir=work_dir) as scratch:
            while True:
                planned = synth.active if isinstance(synth, AutoEngine) else synth
                plan = _plan(
                    normalized, planned.max_chars, keep_together,
                    sentence_pause_ms, paragraph_pause_ms,
                )  # fmt: skip
                try:
                    frames, chunk_warnings = _render(synth, planned, plan, out, Path(scratch))
                except _EngineSwitched:
                    continue  # the auto engine fell back: read the whole script again
                except SynthesisFailed as exc:
                    if isinstance(synth, AutoEngine) and not synth.fell_back:
                        synth.fall_back(f"unusable gTTS audio: {exc}")
                        continue
                    raise
                break
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    if isinstance(synth, AutoEngine) and synth.skipped:
        warnings.append(
            f"read by espeak-ng without trying gTTS: {synth.fallback_reason} "
            "(đọc bằng giọng espeak-ng, tạm bỏ qua gTTS vì vừa lỗi)"
        )
    elif isinstance(synth, AutoEngine) and synth.fell_back:
        warnings.append(
            f"read by espeak-ng because gTTS failed: {synth.fallback_reason} "
            "(đọc bằng giọng espeak-ng vì gTTS lỗi)"
        )
    return SynthesisResult(
        path=out,
        engine=planned.name,
        voice=planned.voice,
        normalized_text=normalized,
        chunks=len(plan),
        warnings=warnings + chunk_warnings,
        duration_ms=frames * 1000 // RATE,
    )
