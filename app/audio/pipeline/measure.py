"""Measurement: frame count, sample peak, loudness and the silence test of mono audio.

* Loudness is ITU-R BS.1770-4 integrated loudness: pyloudnorm's K-weighting filters,
  400 ms blocks with 75 % overlap (only whole blocks), absolute gate -70 LUFS, relative
  gate -10 LU. It is computed in streaming 10 s chunks, never on a float64 copy of the
  whole programme: on numpy views of the PCM (``np.frombuffer`` on the segment's
  ``raw_data``, no copy); decoded MP3s are verified by streaming ffmpeg's output
  (``analyse_file``) rather than by loading them whole.
* Peak is the *sample* peak (not the 4x-oversampled true peak) of the decoded audio, in
  dBFS where 1.0 is 0 dBFS (``gain`` says how the playout MP3's peak is kept under the
  ceiling).
* "Silent" means no 400 ms window has an RMS level (20*log10(rms), full-scale square wave =
  0 dBFS) at or above ``silence_dbfs``. Not pydub's meters: its ``dBFS`` is the RMS of the
  whole clip (a long file with a few seconds of speech would count as silent) and
  ``max_dBFS`` is a sample peak (hiss that peaks above -60 dBFS would not count as silent).
* Measuring a joined programme: two threads each take half of it (scipy's filter releases
  the GIL), each part's filter warmed up on the second before it (see ``analyse_pcm``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
from scipy.signal import sosfilt

from app.audio.pipeline.ffmpeg import _DecodeError, _pcm_chunks, _prefetched
from app.audio.pipeline.frames import CHUNK_FRAMES, F32, RATE, SUB_BLOCK, frames_to_ms

PARALLEL_MIN_FRAMES = 60 * RATE  # shorter audio is measured in one thread
WARM_UP_FRAMES = RATE  # audio run through the filter before a part (see analyse_pcm)


@dataclass(frozen=True)
class AudioStats:
    """Measurements of mono 44.1 kHz audio (see module docstring for definitions)."""

    frames: int
    peak_dbfs: float
    loudness_lufs: float
    max_rms_dbfs: float

    @property
    def duration_ms(self) -> int:
        """Length in whole milliseconds, rounded half up."""
        return frames_to_ms(self.frames)


def _db(amplitude: float) -> float:
    """Amplitude (1.0 = full scale) to dB; -inf for zero."""
    return 20 * math.log10(amplitude) if amplitude > 0 else -math.inf


def _k_weighting_sos() -> np.ndarray:
    """BS.1770 K-weighting (shelf + RLB high-pass) as second-order sections, via pyloudnorm."""
    stages = pyloudnorm.Meter(RATE)._filters.values()  # no public accessor in pyloudnorm
    rows = [np.concatenate([np.asarray(f.b) * f.passband_gain, f.a]) for f in stages]
    return np.array([row / row[3] for row in rows])


_SOS = _k_weighting_sos()
# +-1e-12 at the Nyquist frequency (-240 dBFS): keeps the filter out of denormal numbers.
_ANTI_DENORMAL = np.resize(np.array([1e-12, -1e-12]), CHUNK_FRAMES)


class _Analyser:
    """Streaming frame count, sample peak, block RMS and BS.1770 loudness of mono audio."""

    def __init__(self) -> None:
        self.frames = 0
        self.peak = 0.0
        self._zi = np.zeros((_SOS.shape[0], 2))
        self._carry = (np.zeros(0), np.zeros(0))  # (weighted, raw) samples < one sub-block
        self._weighted: list[np.ndarray] = []  # sum of squares per 100 ms, K-weighted
        self._raw: list[np.ndarray] = []  # sum of squares per 100 ms, unweighted

    def feed(self, samples: np.ndarray) -> None:
        """Add int16 samples or float samples (full scale = 1.0)."""
        for start in range(0, samples.size, CHUNK_FRAMES):
            self._feed_chunk(samples[start : start + CHUNK_FRAMES])

    def _feed_chunk(self, samples: np.ndarray) -> None:
        """Add at most CHUNK_FRAMES samples."""
        if not samples.size:
            return
        scale = _full_scale(samples)
        self.frames += samples.size
        peak = max(float(samples.max()), -float(samples.min())) / scale
        self.peak = max(self.peak, peak)
        x = samples / scale if scale != 1 else samples.astype(np.float64)
        # In digital silence the IIR state decays into denormals, which are ~100x slower.
        x += _ANTI_DENORMAL[: x.size]
        weighted, self._zi = sosfilt(_SOS, x, zi=self._zi)
        carry_w = _sub_block_energy(self._carry[0], weighted, self._weighted)
        carry_r = _sub_block_energy(self._carry[1], x, self._raw)
        self._carry = (carry_w, carry_r)

    def warm_up(self, samples: np.ndarray) -> None:
        """Run samples through the K-weighting filter only (not counted): the audio just
        before the part this analyser measures, so its filter starts in the right state."""
        x = samples / _full_scale(samples)
        x += _ANTI_DENORMAL[: x.size]
        _, self._zi = sosfilt(_SOS, x, zi=self._zi)

    def extend(self, later: _Analyser) -> None:
        """Append the measurements of the audio that follows ours (we end on a sub-block)."""
        if self._carry[0].size:
            raise ValueError("only an analyser that ends on a 100 ms sub-block can be extended")
        self.frames += later.frames
        self.peak = max(self.peak, later.peak)
        self._weighted += later._weighted
        self._raw += later._raw
        self._carry, self._zi = later._carry, later._zi

    def result(self) -> AudioStats:
        """The measurements so far."""
        weighted = np.concatenate(self._weighted) if self._weighted else np.zeros(0)
        raw = np.concatenate(self._raw) if self._raw else np.zeros(0)
        loudness = _gated_loudness(weighted)
        return AudioStats(self.frames, _db(self.peak), loudness, self._max_rms_dbfs(raw))

    def _max_rms_dbfs(self, raw: np.ndarray) -> float:
        """Loudest 400 ms window (or the whole clip if shorter), as RMS dBFS."""
        if raw.size >= 4:
            mean_square = float(np.convolve(raw, np.ones(4), "valid").max()) / (4 * SUB_BLOCK)
        elif self.frames:
            tail = float(np.sum(np.square(self._carry[1])))
            mean_square = (float(raw.sum()) + tail) / self.frames
        else:
            return -math.inf
        return 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def _full_scale(samples: np.ndarray) -> float:
    """The value that is 0 dBFS for this sample type: 32768 for int16, 1.0 for floats."""
    return 32768.0 if samples.dtype.kind == "i" else 1.0


def _sub_block_energy(carry: np.ndarray, x: np.ndarray, out: list[np.ndarray]) -> np.ndarray:
    """Append sums of squares of whole 100 ms sub-blocks to out; return the leftover."""
    if carry.size:
        x = np.concatenate((carry, x))
    whole = x.size // SUB_BLOCK * SUB_BLOCK
    blocks = x[:whole].reshape(-1, SUB_BLOCK)
    out.append(np.einsum("ij,ij->i", blocks, blocks))
    return x[whole:].copy()


def _gated_loudness(sub_energy: np.ndarray) -> float:
    """BS.1770-4 gated integrated loudness (LUFS) from K-weighted 100 ms energies."""
    if sub_energy.size < 4:
        return -math.inf
    z = np.convolve(sub_energy, np.ones(4), "valid") / (4 * SUB_BLOCK)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(z)
    above_abs = z[block_lufs >= -70.0]
    if not above_abs.size:
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(above_abs.mean())) - 10.0
    gated = z[(block_lufs > relative) & (block_lufs > -70.0)]
    return -0.691 + 10 * math.log10(float(gated.mean())) if gated.size else -math.inf


def analyse_pcm(pcm: np.ndarray, *, threads: int = 1) -> AudioStats:
    """Measure a mono 44.1 kHz int16 or float array in 10 s chunks (no whole-array copy).

    With threads > 1, long audio is cut into that many parts at 100 ms sub-block
    boundaries, measured at once (scipy's filter releases the GIL) and the results joined.
    Each part's filter first runs over the second before it: the K-weighting filter
    forgets its state far faster than that (its slowest pole decays by ~e^-230 in one
    second), so the result equals the sequential measurement to float64 precision.
    """
    parts = max(1, min(threads, pcm.size // PARALLEL_MIN_FRAMES))
    step = -(-pcm.size // parts // SUB_BLOCK) * SUB_BLOCK
    bounds = [(start, min(start + step, pcm.size)) for start in range(0, pcm.size, step or 1)]
    analysers = [_Analyser() for _ in bounds]

    def measure(index: int) -> None:
        start, end = bounds[index]
        analyser = analysers[index]
        if start:
            analyser.warm_up(pcm[max(0, start - WARM_UP_FRAMES) : start])
        analyser.feed(pcm[start:end])

    if len(bounds) > 1:
        with ThreadPoolExecutor(len(bounds), thread_name_prefix="loudness") as pool:
            list(pool.map(measure, range(len(bounds))))
    elif bounds:
        measure(0)
    whole = analysers[0] if analysers else _Analyser()
    for later in analysers[1:]:
        whole.extend(later)
    return whole.result()


def analyse_file(path: Path, *, strict: bool = True) -> AudioStats:
    """Decode a file to mono 44.1 kHz float and measure it, streaming."""
    analyser = _Analyser()
    for chunk in _prefetched(_pcm_chunks(Path(path), "f32le", strict=strict)):
        analyser.feed(np.frombuffer(chunk, dtype=F32))
    return analyser.result()


def decoded_peak(path: Path) -> tuple[int, float]:
    """(frames, sample peak in dBFS) of a file decoded to mono 44.1 kHz float, streaming:
    what analyse_file measures, without the loudness filter."""
    frames, peak = 0, 0.0
    for chunk in _prefetched(_pcm_chunks(Path(path), "f32le", strict=True)):
        samples = np.frombuffer(chunk, dtype=F32)
        if samples.size:
            frames += samples.size
            peak = max(peak, float(samples.max()), -float(samples.min()))
    return frames, _db(peak)


def probe_duration_ms(path: Path) -> int:
    """Decoded length of a file in ms: ffmpeg decodes to 44.1 kHz PCM, gapless, and we count."""
    try:
        frames = sum(len(c) for c in _pcm_chunks(Path(path), "s16le", strict=False)) // 2
    except _DecodeError as exc:
        raise ValueError(f"cannot decode {path}: {exc}") from exc
    return frames_to_ms(frames)
