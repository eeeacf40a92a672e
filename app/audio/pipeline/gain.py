"""Gain: the one gain a file gets, applied in place, and the peak guarantee of its MP3.

* MP3 encoding moves peaks (we measured -0.5..+0.6 dB on speech and noise, +2 dB on
  clipped or square-wave material), so: the gain aims the peak at max_peak_dbfs - 0.1 dB;
  audio longer than 30 s first has its loudest excerpts encoded alone to measure the
  overshoot ("preview"); every encode is decoded again and, if the real peak is still
  above the limit, re-encoded with less gain (at most 3 encodes). The ceiling is never
  exceeded by what a player decodes.
* There is no compressor or limiter: when the peak ceiling caps the gain, the result is
  quieter than the target and ``loudness_lufs`` reports the real value.
* Not ``AudioSegment.apply_gain``: it copies the whole programme (~100 MB more peak
  memory measured on 15 minutes) and truncates instead of rounding; the gain is applied
  in place with numpy on the segment's bytearray.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from app.audio.pipeline.ffmpeg import AudioSegment, _export, _segment
from app.audio.pipeline.frames import CHUNK_FRAMES, EDGE_FADE_FRAMES, RATE, S16, SUB_BLOCK
from app.audio.pipeline.measure import AudioStats, _full_scale, analyse_file, decoded_peak

PEAK_MARGIN_DB = 0.1  # aim the decoded peak this far under the limit
RETRY_MARGIN_DB = 0.3  # extra cut when a decoded MP3 still peaks above the limit
PREVIEW_MIN_FRAMES = 30 * RATE  # longer audio gets a peak preview before the full encode
PREVIEW_BLOCKS = 16  # loudest 100 ms blocks whose surroundings the preview encodes
PREVIEW_PAD = 3 * SUB_BLOCK  # audio kept either side of each loud block
MAX_ENCODES = 3


def _choose_gain(stats: AudioStats, target: float, ceiling: float, tolerance: float) -> float:
    """Gain (dB) reaching the target loudness, capped so the sample peak stays <= ceiling."""
    off = target - stats.loudness_lufs
    wanted = off if math.isfinite(off) and abs(off) > tolerance else 0.0
    return min(wanted, ceiling - stats.peak_dbfs) if math.isfinite(stats.peak_dbfs) else 0.0


def _playout_segment(pcm: np.ndarray, gain_db: float) -> AudioSegment:
    """16-bit AudioSegment of int16 or float PCM with gain_db applied before quantising.

    The gain is applied in float32, chunk by chunk, then rounded and clipped, so float input
    keeps its headroom above 0 dBFS until the (usually negative) gain has been applied.
    """
    data = bytearray(2 * pcm.size)
    out = np.frombuffer(data, dtype=S16)
    factor = np.float32(10 ** (gain_db / 20) * 32768.0 / _full_scale(pcm))
    for start in range(0, pcm.size, CHUNK_FRAMES):
        part = pcm[start : start + CHUNK_FRAMES] * factor
        out[start : start + part.size] = np.clip(np.rint(part), -32768, 32767)
    return _segment(data)


def _scale_in_place(pcm: np.ndarray, gain_db: float) -> None:
    """Apply gain to int16 PCM in place, 10 s at a time (rounded, clipped).

    Not ``AudioSegment.apply_gain``: that returns a gained copy of the whole programme
    (~100 MB more for 15 minutes, measured) and truncates instead of rounding.
    """
    if gain_db == 0:
        return
    factor = np.float32(10 ** (gain_db / 20))
    for start in range(0, pcm.size, CHUNK_FRAMES):
        part = pcm[start : start + CHUNK_FRAMES]
        part[:] = np.clip(np.rint(part * factor), -32768, 32767)


def _loudest_excerpts(pcm: np.ndarray) -> np.ndarray:
    """Float32 excerpts around the 100 ms blocks with the highest peaks, 0.1 s apart."""
    whole = pcm.size // SUB_BLOCK * SUB_BLOCK
    blocks = pcm[:whole].reshape(-1, SUB_BLOCK)
    peaks = np.maximum(blocks.max(axis=1).astype(np.float64), -blocks.min(axis=1).astype(float))
    spans: list[list[int]] = []
    for block in sorted(np.argsort(peaks)[-PREVIEW_BLOCKS:].tolist()):
        start, end = max(0, block * SUB_BLOCK - PREVIEW_PAD), (block + 1) * SUB_BLOCK + PREVIEW_PAD
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    gap = np.zeros(SUB_BLOCK, dtype=np.float32)
    parts = [np.concatenate((_faded(pcm[s:e]), gap)) for s, e in spans]
    return np.concatenate(parts)


def _faded(part: np.ndarray) -> np.ndarray:
    """A float32 copy (full scale 1.0) with 5 ms linear fades at both ends."""
    out = (part / _full_scale(part)).astype(np.float32)
    n = min(EDGE_FADE_FRAMES, out.size // 2)
    ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
    out[:n] *= ramp
    out[out.size - n :] *= ramp[::-1]
    return out


def _preview_peak(pcm: np.ndarray, gain_db: float, scratch: Path) -> float:
    """Decoded sample peak (dBFS) of pcm's loudest excerpts with gain_db applied and MP3-
    encoded; -inf for audio up to 30 s, which gets no preview."""
    if pcm.size <= PREVIEW_MIN_FRAMES:
        return -math.inf
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".preview-") as tmp:
        preview = Path(tmp) / "preview.mp3"
        _export(_playout_segment(_loudest_excerpts(pcm), gain_db), preview)
        return decoded_peak(preview)[1]


def _preview_gain(pcm: np.ndarray, gain_db: float, max_peak_dbfs: float, scratch: Path) -> float:
    """gain_db, lowered for audio over 30 s so its loudest excerpts, MP3-encoded and decoded,
    peak <= max_peak_dbfs - PEAK_MARGIN_DB: the full encode then usually succeeds at once."""
    peak = _preview_peak(pcm, gain_db, scratch)
    return gain_db - max(0.0, peak - (max_peak_dbfs - PEAK_MARGIN_DB))


def _export_verified(
    segment: AudioSegment,
    gain_db: float,
    out: Path,
    max_peak_dbfs: float,
    *,
    measure_loudness: bool = True,
) -> tuple[AudioStats, float]:
    """Export segment with gain_db applied and decode the MP3; retry with less gain while the
    decoded peak is above max_peak_dbfs. Returns the decoded MP3's stats (loudness NaN
    unless measure_loudness) and the gain used."""
    pcm = np.frombuffer(segment.raw_data, dtype=S16)  # a bytearray: scaled in place
    applied = 0.0
    for _ in range(MAX_ENCODES):
        _scale_in_place(pcm, gain_db - applied)
        applied = gain_db
        _export(segment, out)
        if measure_loudness:
            stats = analyse_file(out)
        else:
            frames, peak = decoded_peak(out)
            stats = AudioStats(frames, peak, math.nan, math.nan)
        if stats.peak_dbfs <= max_peak_dbfs:
            return stats, gain_db
        gain_db -= stats.peak_dbfs - max_peak_dbfs + RETRY_MARGIN_DB
    raise RuntimeError(f"MP3 still peaks at {stats.peak_dbfs:.2f} dBFS after {MAX_ENCODES} tries")
