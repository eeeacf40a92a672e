"""Measurement: length, true peak, loudness, loudness range and the silence test of mono audio.

* Loudness is ITU-R BS.1770-4 integrated loudness: pyloudnorm's K-weighting filters,
  400 ms blocks with 75 % overlap (only whole blocks), absolute gate -70 LUFS, relative
  gate -10 LU. It is computed a second at a time (PIECE_FRAMES), never on a float64 copy
  of the whole programme: on numpy views of the PCM (``np.frombuffer`` on the segment's
  ``raw_data``, no copy). Decoded MP3s are measured by streaming ffmpeg's output rather
  than by loading them whole: a stored file with ``analyse_file``, a file being encoded
  with ``encode_measured``, from a decode of the encoder's own output, as it is made.
* True peak is BS.1770-4 Annex 2: the audio 4x oversampled by the Recommendation's own
  48-tap interpolating filter (four phases of 12 taps, ``TP_FILTER``), in dBTP where 1.0 is
  0 dBTP. It is what we store and report, and what the limiter keeps under the ceiling.
  ffmpeg's ``ebur128=peak=true`` (the reference the tests use) resamples to 48 kHz and then
  4x with libswresample instead: on our test signals the two agree within 0.2 dB, and the
  ceiling keeps a margin for the difference (``gain.TP_MARGIN_DB``). The sample peak is
  still measured (``peak_dbfs``), for diagnostics only.
* Loudness range (LRA) is EBU Tech 3342: short-term loudness (3 s windows every 100 ms),
  absolute gate -70 LUFS, relative gate -20 LU, the spread between the 10th and the 95th
  percentile. Audio shorter than 3 s has no short-term value: its LRA is 0.
* "Silent" means no 400 ms window has an RMS level (20*log10(rms), full-scale square wave =
  0 dBFS) at or above ``silence_dbfs``. Not pydub's meters: its ``dBFS`` is the RMS of the
  whole clip (a long file with a few seconds of speech would count as silent) and
  ``max_dBFS`` is a sample peak (hiss that peaks above -60 dBFS would not count as silent).
* For the limiter (``limiter``), ``measure_pcm`` also keeps two envelopes at ENV_BLOCK
  resolution (~0.5 ms): each block's true peak and its K-weighted energy. From them the
  loudness after any gain curve that is constant within a block is predicted without
  filtering the audio again (``Envelopes.loudness_with``).
* Measuring a joined programme: two threads each take half of it (scipy's filters release
  the GIL), each part's filter warmed up on the second before it (see ``analyse_pcm``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from app.audio.pipeline.ffmpeg import (
    Encoder,
    _DecodeError,
    _pcm_chunks,
    _prefetched,
    gapless_trim,
)
from app.audio.pipeline.frames import (
    CHUNK_FRAMES,
    ENV_BLOCK,
    F32,
    RATE,
    SUB_BLOCK,
    frames_to_ms,
)
from app.audio.pipeline.kfilter import K_WEIGHTING_SOS, sosfilt

# The pipeline runs its numpy work in threads of its own (two measuring halves, a true-peak
# thread beside the K-weighting). OpenBLAS's own threads under the true-peak matrix
# products then fight them for the two cores and busy-wait: measuring 15 minutes took
# 1.07 s with two threads, 0.56 s with BLAS held to one thread (measured). Process-wide,
# once: nothing else in loaxa multiplies matrices big enough to gain from BLAS threads.
threadpool_limits(limits=1, user_api="blas")

# Audio is measured a second at a time: the temporaries (a dozen arrays of a piece each)
# then stay small enough to be reused in place, where pieces of 10 s left ~60 MB of freed
# but fragmented memory in the measuring threads' malloc arenas (measured on 15 minutes).
PIECE_FRAMES = RATE
PARALLEL_MIN_FRAMES = 60 * RATE  # shorter audio is measured in one thread
WARM_UP_FRAMES = RATE  # audio run through the filter before a part (see analyse_pcm)
SHORT_TERM_SUB_BLOCKS = 30  # 3 s short-term window, in 100 ms steps (EBU Tech 3342)

# ITU-R BS.1770-4 Annex 2: the 48-tap 4x interpolating filter, one row per phase.
_PHASE_0 = (
    0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875,
    0.1373291015625, 0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250,
    0.0148925781250, -0.0083007812500,
)  # fmt: skip
_PHASE_1 = (
    -0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500,
    0.4650878906250, 0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625,
    0.0330810546875, -0.0189208984375,
)  # fmt: skip
TP_FILTER = np.array([_PHASE_0, _PHASE_1, _PHASE_1[::-1], _PHASE_0[::-1]], dtype=np.float32)
_TP_MATRIX = np.ascontiguousarray(TP_FILTER[:, ::-1].T)  # window @ matrix: the 4 phases
TP_TAPS = TP_FILTER.shape[1]
TP_PIECE = 1 << 16  # samples per matrix product


@dataclass(frozen=True)
class AudioStats:
    """Measurements of mono 44.1 kHz audio (see module docstring for definitions)."""

    frames: int
    peak_dbfs: float  # sample peak
    loudness_lufs: float
    max_rms_dbfs: float
    true_peak_dbtp: float = -math.inf
    loudness_range_lu: float = 0.0

    @property
    def duration_ms(self) -> int:
        """Length in whole milliseconds, rounded half up."""
        return frames_to_ms(self.frames)


@dataclass(frozen=True)
class Envelopes:
    """Per ENV_BLOCK block of a measured signal: true peak (linear) and K-weighted energy.

    A partial last block is included (``frames`` says where the audio ends).
    """

    frames: int
    true_peak: np.ndarray | None  # float32, max |4x oversampled| per block (or peak_db)
    energy: np.ndarray  # float64 (float32 when stored), K-weighted sum of squares per block
    peak_db: np.ndarray | None = None  # float32, the true peak in dB (when kept that way)

    def tp_db(self) -> np.ndarray:
        """The true peak per block in dB (float32)."""
        if self.peak_db is not None:
            return self.peak_db
        assert self.true_peak is not None
        with np.errstate(divide="ignore"):
            tp_db = np.log10(self.true_peak, dtype=np.float32)
        tp_db *= np.float32(20)
        return tp_db

    def tp_linear(self) -> np.ndarray:
        """The true peak per block, linear (float32)."""
        if self.true_peak is not None:
            return self.true_peak
        assert self.peak_db is not None
        return np.power(np.float32(10), self.peak_db / np.float32(20), dtype=np.float32)

    def loudness_with(self, gain: np.ndarray | float) -> float:
        """Integrated loudness (LUFS) of the audio with a linear power gain (gain**2 of the
        amplitude) per block applied, without filtering it again."""
        whole = self.frames // SUB_BLOCK * (SUB_BLOCK // ENV_BLOCK)
        energy = self.energy[:whole] * (gain[:whole] if isinstance(gain, np.ndarray) else gain)
        return _gated_loudness(energy.reshape(-1, SUB_BLOCK // ENV_BLOCK).sum(axis=1))


def _db(amplitude: float) -> float:
    """Amplitude (1.0 = full scale) to dB; -inf for zero."""
    return 20 * math.log10(amplitude) if amplitude > 0 else -math.inf


_SOS = K_WEIGHTING_SOS  # pyloudnorm's K-weighting at 44.1 kHz (``kfilter``)
# +-1e-12 at the Nyquist frequency (-240 dBFS): keeps the filter out of denormal numbers.
_ANTI_DENORMAL = np.resize(np.array([1e-12, -1e-12]), PIECE_FRAMES)


def _oversampled(context: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|4x oversampled x| (BS.1770-4 Annex 2), four values per sample of x; context is the
    TP_TAPS - 1 samples before x (zeros at the start).

    Values 4i..4i+3 interpolate between x[i - 6] and x[i - 5]: the envelope lags the audio
    by six samples, far less than a limiter block (ENV_BLOCK), whose gain is also applied
    to its neighbours. Computed as a product of the sliding 12-sample windows with the four
    phases (a BLAS matrix product: ~2x faster than scipy's polyphase ``upfirdn``), a
    TP_PIECE of samples at a time to keep the windows' copy small.
    """
    joined = np.concatenate((context, x.astype(np.float32, copy=False)))
    windows = sliding_window_view(joined, TP_TAPS)  # row i: joined[i : i + 12], no copy
    out = np.empty((x.size, 4), dtype=np.float32)
    for start in range(0, x.size, TP_PIECE):
        piece = windows[start : start + TP_PIECE]
        np.abs(np.matmul(piece, _TP_MATRIX), out=out[start : start + piece.shape[0]])
    return out.reshape(-1)


class _Blocks:
    """Reduces a stream of per-sample values (`width` values per sample) to one value per
    block of `size` samples: a sum or a maximum. Carries a partial block between feeds."""

    def __init__(self, size: int, *, width: int = 1, maximum: bool = False) -> None:
        self.size, self.width, self.maximum = size, width, maximum
        self.done: list[np.ndarray] = []
        self.count = 0  # samples in the partial block
        self.acc = 0.0  # its sum or maximum

    def _reduce(self, values: np.ndarray) -> float:
        return float(values.max() if self.maximum else values.sum()) if values.size else 0.0

    def feed(self, values: np.ndarray) -> None:
        """Add the values of values.size // width samples."""
        n, w, i = values.size // self.width, self.width, 0
        if self.count:
            i = min(self.size - self.count, n)
            part = self._reduce(values[: i * w])
            self.acc = max(self.acc, part) if self.maximum else self.acc + part
            self.count += i
            if self.count == self.size:
                self.done.append(np.array([self.acc]))
                self.count, self.acc = 0, 0.0
        whole = (n - i) // self.size * self.size
        if whole:
            flat = values[i * w : (i + whole) * w]
            if self.maximum:  # reduceat: ~2x faster than a row maximum over short rows
                self.done.append(np.maximum.reduceat(flat, np.arange(0, flat.size, self.size * w)))
            else:
                self.done.append(flat.reshape(-1, self.size * w).sum(axis=1))
        rest = values[(i + whole) * w :]
        if rest.size:
            self.count, self.acc = rest.size // w, self._reduce(rest)

    def extend(self, later: _Blocks) -> None:
        """Append the blocks of the values that followed ours (we end on a whole block)."""
        if self.count:
            raise ValueError("only whole blocks can be extended")
        self.done += later.done
        self.count, self.acc = later.count, later.acc

    def values(self, dtype: type = np.float64) -> np.ndarray:
        """One value per block, the partial one included."""
        partial = [np.array([self.acc])] if self.count else []
        return np.concatenate([np.zeros(0), *self.done, *partial]).astype(dtype, copy=False)


class _Analyser:
    """Streaming frame count, peaks, block energies and BS.1770 loudness of mono audio.

    With envelopes=False it keeps only what ``result`` needs (energy and true peak per
    100 ms, not per ENV_BLOCK): measuring a file for its figures then holds ~100 kB per
    15 minutes instead of ~45 MB. Its figures equal the envelope mode's to float rounding
    (the block sums are added in another order)."""

    def __init__(
        self, tp_pool: ThreadPoolExecutor | None = None, *, envelopes: bool = True
    ) -> None:
        self._tp_pool = tp_pool  # computes the true peak beside the K-weighting, in order
        self._tp_pending: Future[None] | None = None
        self.frames = 0
        self.peak = 0.0
        self._zi = np.zeros((_SOS.shape[0], 2))
        self._tp_context = np.zeros(TP_TAPS - 1, dtype=np.float32)
        block = ENV_BLOCK if envelopes else SUB_BLOCK
        self._per_sub = SUB_BLOCK // block
        self._weighted = _Blocks(block)  # K-weighted energy per block
        self._raw = _Blocks(SUB_BLOCK)  # unweighted sum of squares per 100 ms
        self._tp = _Blocks(block, width=4, maximum=True)  # true peak per block

    def feed(self, samples: np.ndarray) -> None:
        """Add int16 samples or float samples (full scale = 1.0)."""
        for start in range(0, samples.size, PIECE_FRAMES):
            self._feed_chunk(samples[start : start + PIECE_FRAMES])

    def _feed_chunk(self, samples: np.ndarray) -> None:
        """Add at most PIECE_FRAMES samples."""
        if not samples.size:
            return
        scale = _full_scale(samples)
        self.frames += samples.size
        peak = max(float(samples.max()), -float(samples.min())) / scale
        self.peak = max(self.peak, peak)
        x = samples / scale if scale != 1 else samples.astype(np.float64)
        context, self._tp_context = self._tp_context, x[-(TP_TAPS - 1) :].astype(np.float32)
        if self._tp_pool is None:
            self._tp.feed(_oversampled(context, x))
        else:
            self._wait_tp()  # one chunk at a time: in order, and memory stays bounded
            x32 = x.astype(np.float32)
            self._tp_pending = self._tp_pool.submit(
                lambda: self._tp.feed(_oversampled(context, x32))
            )
        self._raw.feed(np.square(x))
        # In digital silence the IIR state decays into denormals, which are ~100x slower.
        x += _ANTI_DENORMAL[: x.size]
        weighted, self._zi = sosfilt(_SOS, x, zi=self._zi)
        self._weighted.feed(np.square(weighted, out=weighted))

    def _wait_tp(self) -> None:
        """Wait for the true peak of the chunk in flight (re-raising its error)."""
        if self._tp_pending is not None:
            pending, self._tp_pending = self._tp_pending, None
            pending.result()

    def warm_up(self, samples: np.ndarray) -> None:
        """Run samples through the K-weighting filter only (not counted): the audio just
        before the part this analyser measures, so its filter starts in the right state."""
        x = samples / _full_scale(samples)
        if x.size >= TP_TAPS - 1:
            self._tp_context = x[-(TP_TAPS - 1) :].astype(np.float32)
        x += _ANTI_DENORMAL[: x.size]
        _, self._zi = sosfilt(_SOS, x, zi=self._zi)

    def extend(self, later: _Analyser) -> None:
        """Append the measurements of the audio that follows ours (we end on a sub-block)."""
        if self._raw.count:
            raise ValueError("only an analyser that ends on a 100 ms sub-block can be extended")
        self.frames += later.frames
        self.peak = max(self.peak, later.peak)
        self._weighted.extend(later._weighted)
        self._raw.extend(later._raw)
        self._tp.extend(later._tp)
        self._zi, self._tp_context = later._zi, later._tp_context

    def envelopes(self) -> Envelopes:
        """The per-block true peak and K-weighted energy so far (a partial block included);
        the true peak includes the filter's tail after the last sample."""
        self._wait_tp()
        tail = _oversampled(self._tp_context, np.zeros(TP_TAPS - 1, np.float32))
        true_peak = self._tp.values(np.float32)
        if true_peak.size:
            true_peak[-1] = max(float(true_peak[-1]), float(tail.max()))
        return Envelopes(self.frames, true_peak, self._weighted.values())

    def result(self) -> AudioStats:
        """The measurements so far."""
        env = self.envelopes()
        per_sub = self._per_sub
        whole = self.frames // SUB_BLOCK * per_sub
        sub_energy = env.energy[:whole].reshape(-1, per_sub).sum(axis=1)
        raw = np.concatenate([np.zeros(0), *self._raw.done])
        return AudioStats(
            self.frames,
            _db(self.peak),
            _gated_loudness(sub_energy),
            self._max_rms_dbfs(raw),
            _db(float(env.tp_linear().max())) if env.tp_linear().size else -math.inf,
            _loudness_range(sub_energy),
        )

    def _max_rms_dbfs(self, raw: np.ndarray) -> float:
        """Loudest 400 ms window (or the whole clip if shorter), as RMS dBFS."""
        if raw.size >= 4:
            mean_square = float(np.convolve(raw, np.ones(4), "valid").max()) / (4 * SUB_BLOCK)
        elif self.frames:
            mean_square = (float(raw.sum()) + self._raw.acc) / self.frames
        else:
            return -math.inf
        return 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def _full_scale(samples: np.ndarray) -> float:
    """The value that is 0 dBFS for this sample type: 32768 for int16, 1.0 for floats."""
    return 32768.0 if samples.dtype.kind == "i" else 1.0


def _block_loudness(sub_energy: np.ndarray, sub_blocks: int) -> np.ndarray:
    """Loudness (LUFS) of every window of sub_blocks 100 ms sub-blocks, 100 ms apart."""
    z = np.convolve(sub_energy, np.ones(sub_blocks), "valid") / (sub_blocks * SUB_BLOCK)
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(z)


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


def _loudness_range(sub_energy: np.ndarray) -> float:
    """EBU Tech 3342 loudness range (LU) from K-weighted 100 ms energies."""
    if sub_energy.size < SHORT_TERM_SUB_BLOCKS:
        return 0.0
    short = _block_loudness(sub_energy, SHORT_TERM_SUB_BLOCKS)
    short = short[short > -70.0]
    if not short.size:
        return 0.0
    relative = 10 * math.log10(float(np.mean(10 ** (short / 10)))) - 20.0
    gated = short[short > relative]
    low, high = np.percentile(gated, [10, 95])
    return round(float(high - low), 2)


def _analyse(pcm: np.ndarray, threads: int) -> _Analyser:
    """Measure a mono 44.1 kHz int16 or float array in 10 s chunks (see analyse_pcm)."""
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
    return whole


def analyse_pcm(pcm: np.ndarray, *, threads: int = 1) -> AudioStats:
    """Measure a mono 44.1 kHz int16 or float array in 10 s chunks (no whole-array copy).

    With threads > 1, long audio is cut into that many parts at 100 ms sub-block
    boundaries, measured at once (scipy's filters release the GIL) and the results joined.
    Each part's filter first runs over the second before it: the K-weighting filter
    forgets its state far faster than that (its slowest pole decays by ~e^-230 in one
    second), so the result equals the sequential measurement to float64 precision; the
    true-peak filter only needs the 11 samples before the part.
    """
    return _analyse(pcm, threads).result()


def measure_pcm(pcm: np.ndarray, *, threads: int = 1) -> tuple[AudioStats, Envelopes]:
    """``analyse_pcm`` plus the per-block envelopes the limiter plans with."""
    analyser = _analyse(pcm, threads)
    return analyser.result(), analyser.envelopes()


def analyse_file(path: Path, *, strict: bool = True, threads: int = 1) -> AudioStats:
    """Decode a file to mono 44.1 kHz float and measure it, streaming (ffmpeg decodes in
    its own process meanwhile). With threads > 1, a second thread computes the true peak
    while the first one runs the K-weighting filter."""
    with ThreadPoolExecutor(1, thread_name_prefix="true-peak") as pool:
        analyser = _Analyser(pool if threads > 1 else None, envelopes=False)
        for chunk in _prefetched(_pcm_chunks(Path(path), "f32le", strict=strict)):
            analyser.feed(np.frombuffer(chunk, dtype=F32))
        return analyser.result()


def encode_measured(chunks: Iterable[np.ndarray], out: Path) -> AudioStats:
    """Encode int16 chunks to the playout MP3 at out (``ffmpeg._encode``) and measure it as a
    player decodes it: the same figures as ``analyse_file(out)``, but taken while the file
    is being made, from the encoder's own output decoded beside it (see ``_encode``), so
    that LAME, the only step that cannot be split, runs on one core while the measuring
    runs on the other. Should the file's header not match the priming that was assumed,
    the file is measured again the slow way."""
    return MeasuredEncode(out).encode(chunks)


class MeasuredEncode:
    """``encode_measured`` in two steps: the encoder started first (``ffmpeg.Encoder``),
    the audio given when it is ready. Use it once: ``encode`` or ``cancel``."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.analyser = _Analyser(envelopes=False)
        self.stream = _GaplessStream(self.analyser)
        self.encoder = Encoder(self.out, decoded=self.stream.feed)

    def encode(self, chunks: Iterable[np.ndarray]) -> AudioStats:
        """The file, made and measured."""
        self.encoder.encode(chunks)
        trim = gapless_trim(self.out)
        if trim is None or trim[0] != ASSUMED_PRIMING:
            return analyse_file(self.out)
        self.stream.finish(trim[1])
        return self.analyser.result()

    def cancel(self) -> None:
        """Stop an encode that will not be needed (nothing once it has been made)."""
        self.encoder.cancel()


ASSUMED_PRIMING = 1105  # libmp3lame's encoder delay (576) and the decoder's (529), frames
_HOLD_FRAMES = 4096  # more than any MP3 padding (12 bits): held back until it is known


class _GaplessStream:
    """Passes the decode of a header-less MP3 to an analyser as the file decodes: without
    the encoder's priming (ASSUMED_PRIMING frames, checked against the header after), and
    without its padding (its last frames are held back until the header says how many).
    Fed in CHUNK_FRAMES pieces from the first kept frame, as ``analyse_file`` feeds it, so
    that the figures are the same to the last bit (a test compares them)."""

    def __init__(self, analyser: _Analyser) -> None:
        self.analyser = analyser
        self.skip = ASSUMED_PRIMING * 4  # bytes of f32le still to drop
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        if self.skip:
            dropped = min(self.skip, len(data))
            data, self.skip = data[dropped:], self.skip - dropped
        self.buf += data
        step = CHUNK_FRAMES * 4
        while len(self.buf) >= step + _HOLD_FRAMES * 4:
            self.analyser.feed(np.frombuffer(bytes(memoryview(self.buf)[:step]), dtype=F32))
            del self.buf[:step]

    def finish(self, padding_frames: int) -> None:
        """The end of the stream: leave out its last padding_frames and feed the rest."""
        end = max(0, len(self.buf) - 4 * padding_frames)
        for start in range(0, end, CHUNK_FRAMES * 4):
            stop = min(start + CHUNK_FRAMES * 4, end)
            self.analyser.feed(np.frombuffer(bytes(memoryview(self.buf)[start:stop]), dtype=F32))
        self.buf.clear()


def probe_duration_ms(path: Path) -> int:
    """Decoded length of a file in ms: ffmpeg decodes to 44.1 kHz PCM, gapless, and we count."""
    try:
        frames = sum(len(c) for c in _pcm_chunks(Path(path), "s16le", strict=False)) // 2
    except _DecodeError as exc:
        raise ValueError(f"cannot decode {path}: {exc}") from exc
    return frames_to_ms(frames)
