"""Ingest: validate an upload and write it as a normalised playout MP3.

Decoding uploads: ``ingest`` decodes with ``-xerror`` to float32 in a streaming pipe and
ffprobes the container, to detect corrupt and truncated files (pydub's ``from_file`` only
fails when ffmpeg fails: it cannot tell a cut file from a short one) and to stop reading
past the length cap (``from_file`` reads the whole decode, in several copies, first).
Float keeps the headroom above 0 dBFS that decoded MP3/AAC uploads often have: 16-bit
(all pydub can hold) would clip those overs before the gain is applied, so the gain and
the limiter are applied in float and only the result becomes 16-bit PCM, piped into the
encoder (see ``ffmpeg``). The high-pass filter runs in the decoder.

The source is measured after the high-pass filter (what the gain acts on); the stored
figures (loudness, true peak, loudness range, length) are measured on the decoded MP3.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio.pipeline.ffmpeg import (
    NotAudio,
    _decode_to_buffer,
    _DecodeError,
    _ffprobe,
    _TooLong,
    sniff_container,
)
from app.audio.pipeline.frames import (
    F32,
    MP3_FRAME,
    RATE,
    describe_ms,
    frames_to_ms,
    ms_to_frames,
)
from app.audio.pipeline.gain import encode_normalised
from app.audio.pipeline.measure import measure_pcm


class AudioRejected(ValueError):
    """An upload that cannot be used; ``str(exc)`` is a message fit for the uploader."""

    def __init__(self, message: str, code: str, detail: str = "") -> None:
        super().__init__(message)
        self.code = code  # not_audio | corrupt | empty | silent | too_short | too_long | too_large
        self.detail = detail  # technical detail for logs (ffmpeg's error), not for users


@dataclass(frozen=True)
class IngestResult:
    """A normalised playout MP3 made from an upload, plus what was measured on the way."""

    playout_path: Path  # temp file in work_dir: the caller moves or stores it
    duration_ms: int  # decoded frames of playout_path, in ms (half up)
    loudness_lufs: float  # integrated loudness of the decoded playout MP3
    true_peak_dbtp: float  # true peak of the decoded playout MP3
    loudness_range_lu: float  # loudness range of the decoded playout MP3
    source_loudness_lufs: float  # of the source after the high-pass filter
    source_true_peak_dbtp: float  # of the source after the high-pass filter (may exceed 0)
    gain_db: float  # gain applied to the source, before the limiter
    limiter_db: float  # the limiter's deepest gain reduction (0: it did nothing)
    source_format: str  # "container/codec", e.g. "mp4/aac", "ogg/opus", "wav/pcm_s16le"
    frames: int  # decoded 44.1 kHz frames of playout_path
    encodes: int = 1  # MP3 encodes it took to verify the result (see gain)


@dataclass(frozen=True)
class _Probe:
    """What the file's bytes and ffprobe say about a source file."""

    container: str  # the ffmpeg demuxer every later read is forced to
    source_format: str
    declared_ms: int | None  # None when absent or only estimated from the bitrate


# What an upload's header may declare: more costs decoding time and memory for nothing a
# loudspeaker can play (mono, 44.1 kHz), and is refused before a sample is decoded.
MAX_CHANNELS = 6  # 5.1 at most
MAX_SAMPLE_RATE = 96_000


def _source_format(info: dict, stream: dict) -> str:
    """'container/codec' from ffprobe output, e.g. 'mp4/aac'."""
    container = str(info.get("format", {}).get("format_name", "unknown"))
    container = "mp4" if container.startswith("mov,mp4") else container.split(",")[0]
    return f"{container}/{stream.get('codec_name', 'unknown')}"[:40]


def _declared_ms(info: dict, stream: dict, warnings: str) -> int | None:
    """The container's declared duration, unless ffprobe only estimated it from the bitrate."""
    if "Estimating duration from bitrate" in warnings:
        return None
    raw = stream.get("duration") or info.get("format", {}).get("duration")
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return None
    return round(seconds * 1000) if math.isfinite(seconds) and seconds > 0 else None


def _probe_source(src: Path) -> _Probe:
    """Probe an upload; reject empty files, non-audio, unreadable containers, and headers
    that declare more channels or a higher sample rate than MAX_CHANNELS / MAX_SAMPLE_RATE.

    The container comes from the file's own bytes (``sniff_container``), never from its
    name or from ffmpeg's guess, and ffprobe and the decoder are forced to it."""
    if src.stat().st_size == 0:
        raise AudioRejected("audio is empty (the file has 0 bytes)", "empty")
    try:
        container = sniff_container(src)
    except NotAudio as exc:
        raise AudioRejected(str(exc), "not_audio") from exc
    probed = _ffprobe(src, container)
    if probed is None:
        raise AudioRejected("audio is corrupt or truncated (unreadable container)", "corrupt")
    info, warnings = probed
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioRejected("not an audio file (no audio stream)", "not_audio")
    _check_header(streams[0])
    return _Probe(
        container, _source_format(info, streams[0]), _declared_ms(info, streams[0], warnings)
    )


def _check_header(stream: dict) -> None:
    """Refuse what the first audio stream's header declares beyond the limits."""
    channels = _int(stream.get("channels"))
    rate = _int(stream.get("sample_rate"))
    if channels > MAX_CHANNELS:
        raise AudioRejected(
            f"audio has {channels} channels; at most {MAX_CHANNELS} are accepted", "too_large"
        )
    if rate > MAX_SAMPLE_RATE:
        raise AudioRejected(
            f"audio is sampled at {rate} Hz; at most {MAX_SAMPLE_RATE} Hz is accepted",
            "too_large",
        )


def _int(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _ogg_truncated(path: Path) -> bool:
    """True if an Ogg file does not end with a complete end-of-stream page."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 70_000))  # the largest possible Ogg page is 65 307 bytes
        tail = f.read()
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        if pos + 27 <= len(tail):
            nseg = tail[pos + 26]
            end = pos + 27 + nseg + sum(tail[pos + 27 : pos + 27 + nseg])
            if end == len(tail):
                return not tail[pos + 5] & 0x04
        pos = tail.rfind(b"OggS", 0, pos)
    return True


def _reject_length(frames: int, min_ms: int, max_ms: int) -> None:
    """Reject audio that is empty, shorter than min_ms or longer than max_ms."""
    if frames == 0:
        raise AudioRejected("audio is empty (no audio samples)", "empty")
    if frames < ms_to_frames(min_ms):
        have, need = describe_ms(frames * 1000 // RATE), describe_ms(min_ms)
        raise AudioRejected(f"audio is {have} long; the minimum is {need}", "too_short")
    if frames > ms_to_frames(max_ms):
        have = describe_ms(-(-frames * 1000 // RATE), round_up=True)
        raise AudioRejected(
            f"audio is {have} long; the maximum is {describe_ms(max_ms)}", "too_long"
        )


def _decode_source(src: Path, probe: _Probe, max_ms: int, highpass_hz: float) -> bytearray:
    """Decode an upload to float32 mono 44.1 kHz, rejecting corrupt or overlong input."""
    if probe.declared_ms is not None and probe.declared_ms > max_ms + 1000:
        _reject_length(ms_to_frames(probe.declared_ms), 0, max_ms)
    if probe.source_format.startswith("ogg/") and _ogg_truncated(src):
        raise AudioRejected("audio is corrupt or truncated (Ogg stream has no end)", "corrupt")
    try:
        cap = ms_to_frames(max_ms + 60_000)  # bounds memory even if the header lies
        buf = _decode_to_buffer(
            src,
            "f32le",
            strict=True,
            max_frames=cap,
            highpass_hz=highpass_hz,
            container=probe.container,
        )
    except _TooLong as exc:
        limit = describe_ms(max_ms)
        raise AudioRejected(
            f"audio is over {limit} long; the maximum is {limit}", "too_long"
        ) from exc
    except _DecodeError as exc:
        raise AudioRejected("audio is corrupt or truncated", "corrupt", str(exc)) from exc
    _reject_truncated(len(buf) // 4, probe.declared_ms)
    return buf


def _reject_truncated(frames: int, declared_ms: int | None) -> None:
    """Reject audio that decodes clearly shorter than its container declares."""
    if declared_ms is None or frames == 0:
        return
    decoded_ms = frames_to_ms(frames)
    if declared_ms - decoded_ms > max(250, declared_ms // 100):
        detail = f"decodes to {describe_ms(decoded_ms)} of a declared {describe_ms(declared_ms)}"
        raise AudioRejected(f"audio is corrupt or truncated ({detail})", "corrupt")


def ingest(
    src: Path,
    *,
    work_dir: Path,
    target_lufs: float = -16.0,
    max_true_peak_dbtp: float = -1.0,
    highpass_hz: float = 100.0,
    min_ms: int = 1000,
    max_ms: int = 20 * 60 * 1000,
    silence_dbfs: float = -60.0,
) -> IngestResult:
    """Validate an upload and write it as a normalised playout MP3 (a temp file in work_dir).

    Accepts MP3, WAV, OGG/Opus, FLAC, M4A/AAC and WebM (``ffmpeg.ALLOWED_CONTAINERS``, told
    by the file's bytes; nothing else is given to ffmpeg); the first audio
    stream is high-passed at highpass_hz (0: not), downmixed to mono and resampled to
    44.1 kHz. One gain and the true-peak limiter after it bring it to target_lufs with a
    true peak <= max_true_peak_dbtp, both as measured on the decoded MP3 (``gain``); only
    audio the limiter's caps keep off target stays off it (the result says how far).
    Raises AudioRejected (nothing is left in work_dir) for unusable uploads.
    """
    src = Path(src)
    probe = _probe_source(src)
    buf = _decode_source(src, probe, max_ms, highpass_hz)
    pcm = np.frombuffer(buf, dtype=F32)
    _reject_length(pcm.size, min_ms, max_ms)
    source, envelopes = measure_pcm(pcm)
    if source.max_rms_dbfs < silence_dbfs or not math.isfinite(source.loudness_lufs):
        raise AudioRejected(f"audio is silent throughout (below {silence_dbfs:g} dBFS)", "silent")
    out = _make_temp(Path(work_dir), prefix="ingest-", suffix=".mp3")
    try:
        encoded = encode_normalised(
            pcm, envelopes, out=out, target_lufs=target_lufs, ceiling_dbtp=max_true_peak_dbtp
        )
        result = encoded.stats
        _check_frames(result.frames, pcm.size, "ingest")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return IngestResult(
        out, result.duration_ms, result.loudness_lufs, result.true_peak_dbtp,
        result.loudness_range_lu, source.loudness_lufs, source.true_peak_dbtp,
        round(encoded.plan.gain_db, 3), encoded.plan.reduction_db, probe.source_format,
        result.frames, encoded.encodes,
    )  # fmt: skip


def _make_temp(directory: Path, *, prefix: str, suffix: str) -> Path:
    """Create an empty temp file in directory (created if missing) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(name)


def _check_frames(got: int, expected: int, what: str) -> None:
    """Raise RuntimeError if a decoded MP3 is more than one MP3 frame off the PCM encoded
    (it is gapless: in practice it is exact)."""
    if abs(got - expected) > MP3_FRAME:
        raise RuntimeError(f"{what}: MP3 decodes to {got} frames, expected {expected}")
