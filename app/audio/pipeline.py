"""Audio pipeline core: turn uploads into playout files and assemble broadcast masters.

Playout format: MP3 (LAME VBR ``-q:a 2``, i.e. "V2"), mono, 44.1 kHz, with the Xing/LAME
header that tells decoders the encoder delay and padding (gapless), no ID3 tags, bit-exact
muxing (the same PCM always gives the same bytes, which suits content-addressed storage).
We chose V2 over 128k CBR because this LAME build lowers the level of CBR output by
0.45-0.5 dB (measured), while V2 keeps it within 0.1 dB and is ~20 % faster to encode.

Conventions callers rely on:

* Durations are counted in PCM frames of the audio as ffmpeg decodes it to 44.1 kHz mono,
  honouring the gapless header. ``frames_to_ms`` and ``ms_to_frames`` round half up.
  ``IngestResult.duration_ms`` and ``assemble`` use the same decoder, so they agree exactly.
* Loudness is ITU-R BS.1770-4 integrated loudness: pyloudnorm's K-weighting filters,
  400 ms blocks with 75 % overlap (only whole blocks), absolute gate -70 LUFS, relative
  gate -10 LU. It is computed in streaming 10 s chunks, never on a float64 copy of the
  whole programme.
* Peak is the *sample* peak (not the 4x-oversampled true peak) of the decoded playout MP3,
  in dBFS where 1.0 is 0 dBFS. MP3 encoding moves peaks (we measured -0.5..+0.6 dB on
  speech and noise, +2 dB on clipped or square-wave material), so: the gain aims the peak
  at max_peak_dbfs - 0.1 dB; audio longer than 30 s first has its loudest excerpts encoded
  alone to measure the overshoot ("preview"); every encode is decoded again and, if the
  real peak is still above the limit, re-encoded with less gain (at most 3 encodes). The
  ceiling is never exceeded by what a player decodes.
* There is no compressor or limiter: when the peak ceiling caps the gain, the result is
  quieter than the target and ``loudness_lufs`` reports the real value. For an ingested
  file it is measured on the decoded MP3; for an assembled master, on the PCM handed to
  the encoder (gain included), which saves a second filter pass over the whole programme:
  V2 moves integrated loudness by less than 0.1 LU (a test compares it with ffmpeg's
  ebur128 reading of the file). The master's peak and length are still read off the
  decoded MP3.
* "Silent" means no 400 ms window has an RMS level (20*log10(rms), full-scale square wave =
  0 dBFS) at or above ``silence_dbfs``.

Where pydub is used (``pydub.AudioSegment``, mono, 44.1 kHz, 16-bit):

* Every MP3 written (playout file, master, peak preview) is an ``AudioSegment`` exported
  with ``AudioSegment.export(format="mp3", codec="libmp3lame", parameters=EXPORT_PARAMETERS)``.
  pydub places the parameters between ``-acodec`` and ``-f mp3 <out>``, so LAME V2, no ID3,
  Xing/LAME header and bit-exact muxing all apply: the bytes are identical to the direct
  ffmpeg encode we used before (checked by a test), the MP3 stays gapless and the same PCM
  always gives the same file.
* ``assemble`` holds each item as an ``AudioSegment`` (decoded as below). Their
  ``raw_data`` is joined into one growing bytearray with frame-exact offsets (never with
  ``+``, which copies the whole programme on every item, nor ``append``, which crossfades
  100 ms unless told otherwise); that buffer is wrapped, without a copy, as the master
  ``AudioSegment``.
* ``ingest`` wraps the normalised playout PCM in an ``AudioSegment`` (duration from
  ``frame_count()``, export as above).

Where ffmpeg (and numpy) are called directly, and why:

* Decoding uploads: ``ingest`` decodes with ``-xerror`` to float32 in a streaming pipe and
  ffprobes the container, to detect corrupt and truncated files (pydub's ``from_file`` only
  fails when ffmpeg fails: it cannot tell a cut file from a short one) and to stop reading
  past the length cap (``from_file`` reads the whole decode, in several copies, first).
  Float keeps the headroom above 0 dBFS that decoded MP3/AAC uploads often have: 16-bit
  (all pydub can hold) would clip those overs before the gain is applied, so the gain is
  applied in float and only the result becomes a 16-bit ``AudioSegment``.
* Measuring: loudness is BS.1770 with pyloudnorm's filters on numpy views of the PCM
  (``np.frombuffer`` on the segment's ``raw_data``, no copy), streamed in 10 s chunks;
  decoded MP3s are verified by streaming ffmpeg's output (``analyse_file``) rather than by
  loading them whole. The silence test stays the windowed RMS above: pydub's ``dBFS`` is the
  RMS of the whole clip (a long file with a few seconds of speech would count as silent) and
  ``max_dBFS`` is a sample peak (hiss that peaks above -60 dBFS would not count as silent).
* Decoding assembly items: two ffmpeg processes decode all of them, a share each, strictly
  (``-xerror``), with ``-ac 1 -ar 44100``, into raw PCM files that are read back into
  ``AudioSegment`` objects. ``AudioSegment.from_file`` starts one ffmpeg per item: ffmpeg's
  start-up alone is ~60 ms, so a 12-item programme spent 0.8 s loading against 0.5 s now
  (measured), and pydub reads each decode through a WAV copy. It also cannot resample
  properly: it appends ``parameters`` after the output, where ffmpeg ignores ``-ac``/``-ar``,
  and its own ``set_frame_rate`` (audioop ``ratecv``) has no anti-alias filter. The samples
  are those of ffmpeg's default decoder either way (a test compares them).
* Measuring a joined programme: two threads each take half of it (scipy's filter releases
  the GIL), each part's filter warmed up on the second before it (see ``analyse_pcm``).

Costs of pydub, accepted: ``export`` writes the PCM as a WAV temp file in the system temp
directory (``tempfile.gettempdir()``, ~5.3 MB per minute) before ffmpeg starts, instead of
piping it. Not used: ``from_file`` for assembly items (see above), ``apply_gain`` (it copies
the whole programme, ~100 MB more peak memory measured on 15 minutes, and truncates instead
of rounding; the gain is applied in place with numpy on the segment's bytearray) and
``+``/``append`` (see above). pydub imports ``audioop``, which Python 3.13 removed: the
``audioop-lts`` package (a dependency on 3.13+) provides it.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pyloudnorm
from scipy.signal import sosfilt

with warnings.catch_warnings():
    # pydub imports the stdlib audioop (deprecated in 3.11/3.12; audioop-lts on 3.13+).
    warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntEncodeError

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"

RATE = 44_100
SUB_BLOCK = RATE // 10  # 100 ms: the gating step; four make one 400 ms block
CHUNK_FRAMES = SUB_BLOCK * 100  # 10 s of audio per read / filter / write step
S16 = np.dtype("<i2")
F32 = np.dtype("<f4")

EXPORT_PARAMETERS = (
    "-q:a", "2", "-map_metadata", "-1", "-id3v2_version", "0", "-write_xing", "1",
    "-fflags", "+bitexact",
)  # fmt: skip
# The same encode as one ffmpeg command line (for tools and tests that run ffmpeg directly).
ENCODE_ARGS = ("-c:a", "libmp3lame", *EXPORT_PARAMETERS, "-f", "mp3")
PEAK_MARGIN_DB = 0.1  # aim the decoded peak this far under the limit
RETRY_MARGIN_DB = 0.3  # extra cut when a decoded MP3 still peaks above the limit
PREVIEW_MIN_FRAMES = 30 * RATE  # longer audio gets a peak preview before the full encode
PREVIEW_BLOCKS = 16  # loudest 100 ms blocks whose surroundings the preview encodes
PREVIEW_PAD = 3 * SUB_BLOCK  # audio kept either side of each loud block
DECODE_PROCESSES = 2  # ffmpeg processes that decode an assembly's items, a share each
ANALYSIS_THREADS = 2  # threads that measure a joined programme, a part each
PARALLEL_MIN_FRAMES = 60 * RATE  # shorter audio is measured in one thread
WARM_UP_FRAMES = RATE  # audio run through the filter before a part (see analyse_pcm)
PIPE_BYTES = 1 << 20  # ask Linux for 1 MiB pipes so ffmpeg runs ahead of our processing
MAX_ENCODES = 3
MASTER_TOLERANCE_LU = 0.5  # the master gets an overall gain only if off by more than this
DURATION_TOLERANCE_MS = 50
EDGE_FADE_FRAMES = 220  # 5 ms de-click ramp at every item edge that is not crossfaded
FFPROBE_TIMEOUT_S = 120


class AudioRejected(ValueError):
    """An upload that cannot be used; ``str(exc)`` is a message fit for the uploader."""

    def __init__(self, message: str, code: str, detail: str = "") -> None:
        super().__init__(message)
        self.code = code  # not_audio | corrupt | empty | silent | too_short | too_long
        self.detail = detail  # technical detail for logs (ffmpeg's error), not for users


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


@dataclass(frozen=True)
class IngestResult:
    """A normalised playout MP3 made from an upload, plus what was measured on the way."""

    playout_path: Path  # temp file in work_dir: the caller moves or stores it
    duration_ms: int  # decoded frames of playout_path, in ms (half up)
    loudness_lufs: float  # integrated loudness of the decoded playout MP3
    peak_dbfs: float  # sample peak of the decoded playout MP3
    source_loudness_lufs: float
    source_peak_dbfs: float  # sample peak of the source decoded to float (may exceed 0)
    gain_db: float  # gain applied to the source
    source_format: str  # "container/codec", e.g. "mp4/aac", "ogg/opus", "wav/pcm_s16le"
    frames: int  # decoded 44.1 kHz frames of playout_path
    peak_limited: bool  # True if the peak ceiling kept loudness below the target


@dataclass(frozen=True)
class Cue:
    """Where one item starts in a master, and how long it is (both in ms, half up)."""

    label: str
    offset_ms: int
    duration_ms: int


@dataclass
class AssemblyResult:
    """A rendered master MP3 with the position of every item in it."""

    path: Path
    duration_ms: int
    cues: list[Cue]
    loudness_lufs: float
    peak_dbfs: float = float("nan")
    gain_db: float = 0.0
    planned_ms: int = 0


@dataclass(frozen=True)
class _Probe:
    """What ffprobe says about a source file."""

    source_format: str
    declared_ms: int | None  # None when absent or only estimated from the bitrate


class _DecodeError(RuntimeError):
    """ffmpeg could not decode a file."""


# --- time arithmetic -------------------------------------------------------------------


def ms_to_frames(ms: int) -> int:
    """Milliseconds to 44.1 kHz frames, rounding half up (ms * 44.1 has one decimal)."""
    if ms < 0:
        raise ValueError(f"negative duration: {ms} ms")
    return (ms * 441 + 5) // 10


def frames_to_ms(frames: int) -> int:
    """44.1 kHz frames to whole milliseconds, rounding half up."""
    if frames < 0:
        raise ValueError(f"negative frame count: {frames}")
    return (frames * 1000 + RATE // 2) // RATE


def describe_ms(ms: int, *, round_up: bool = False) -> str:
    """Human length: '0.4 s', '59.9 s', '21 min 3 s', '20 min' (floor unless round_up)."""
    if ms < 60_000:
        tenths = -(-ms // 100) if round_up else ms // 100
        if tenths < 600:
            return f"{tenths / 10:g} s"
    seconds = -(-ms // 1000) if round_up else ms // 1000
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


def _db(amplitude: float) -> float:
    """Amplitude (1.0 = full scale) to dB; -inf for zero."""
    return 20 * math.log10(amplitude) if amplitude > 0 else -math.inf


# --- ffmpeg plumbing -------------------------------------------------------------------


def _err_text(err: IO[bytes]) -> str:
    """The tail of ffmpeg's stderr, captured in a temp file."""
    err.seek(0)
    return err.read()[-2000:].decode("utf-8", "replace").strip()


def _pcm_chunks(path: Path, fmt: str, *, strict: bool) -> Generator[bytes, None, None]:
    """Decode path to mono 44.1 kHz raw PCM (s16le or f32le), yielding ~10 s chunks."""
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", *(["-xerror"] if strict else [])]
    cmd += ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(RATE), "-f", fmt, "pipe:1"]
    chunk_bytes = CHUNK_FRAMES * (2 if fmt == "s16le" else 4)
    with tempfile.TemporaryFile() as err:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err) as proc:
            assert proc.stdout is not None
            _widen_pipe(proc.stdout)
            finished = False
            try:
                while chunk := proc.stdout.read(chunk_bytes):
                    yield chunk
                finished = True
            finally:
                if not finished:
                    proc.kill()  # the consumer stopped early or failed
        if proc.returncode:
            raise _DecodeError(_err_text(err) or f"ffmpeg exited with {proc.returncode}")


def _prefetched(chunks: Generator[bytes, None, None], depth: int = 8) -> Iterator[bytes]:
    """Run a chunk iterator in a background thread, so decoding overlaps our processing."""
    q: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()

    def put(item: tuple[bytes | None, BaseException | None]) -> bool:
        while not cancelled.is_set():
            with contextlib.suppress(queue.Full):
                q.put(item, timeout=0.05)
                return True
        return False

    def pump() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((None, None))
        except BaseException as exc:
            put((None, exc))
        finally:
            chunks.close()  # stops ffmpeg if we quit early

    thread = threading.Thread(target=pump, name="pcm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            chunk, exc = q.get()
            if exc is not None:
                raise exc
            if chunk is None:
                return
            yield chunk
    finally:
        cancelled.set()
        thread.join()


def _widen_pipe(pipe: IO[bytes]) -> None:
    """Grow a pipe's kernel buffer (Linux) so producer and consumer overlap; best effort."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _decode_to_buffer(path: Path, fmt: str, *, strict: bool, max_frames: int) -> bytearray:
    """Decode a whole file into one growing buffer; stop with _TooLong past max_frames."""
    width = 2 if fmt == "s16le" else 4
    buf = bytearray()
    chunks = _pcm_chunks(path, fmt, strict=strict)
    for chunk in chunks:
        buf += chunk
        if len(buf) > max_frames * width:
            chunks.close()
            raise _TooLong(len(buf) // width)
    return buf


class _TooLong(Exception):
    """Decoding went past the frame cap."""

    def __init__(self, frames: int) -> None:
        super().__init__(frames)
        self.frames = frames


def _segment(data: bytes | bytearray) -> AudioSegment:
    """Wrap mono 44.1 kHz 16-bit PCM as a pydub AudioSegment (no copy)."""
    return AudioSegment(data=data, sample_width=2, frame_rate=RATE, channels=1)


def _export(segment: AudioSegment, out: Path) -> None:
    """Encode a segment to the playout MP3 at out with pydub (ffmpeg + LAME, EXPORT_PARAMETERS)."""
    try:
        exported = segment.export(
            str(out), format="mp3", codec="libmp3lame", parameters=list(EXPORT_PARAMETERS)
        )
    except CouldntEncodeError as exc:
        _remove_export_temps(str(exc))
        raise RuntimeError(f"ffmpeg MP3 encode failed: {str(exc)[-2000:]}") from exc
    exported.close()  # pydub returns out, opened by itself


def _remove_export_temps(message: str) -> None:
    """Delete the temp files pydub's export leaves behind when ffmpeg fails.

    pydub only removes its WAV input and MP3 output temp files after a successful encode;
    their names are in the command line it puts in the exception message.
    """
    _, found, tail = message.partition("Command:")
    with contextlib.suppress(ValueError, SyntaxError):
        command = ast.literal_eval(tail.split("\n\n", 1)[0].strip()) if found else []
        temp_dir = Path(tempfile.gettempdir())
        names = [command[command.index("-i") + 1], command[-1]] if "-i" in command else []
        for name in names:
            if Path(name).parent == temp_dir:
                Path(name).unlink(missing_ok=True)


def _ffprobe(path: Path) -> tuple[dict, str] | None:
    """ffprobe's JSON and warnings for path, or None if ffprobe cannot read it."""
    cmd = [FFPROBE, "-v", "warning", "-hide_banner", "-print_format", "json"]
    cmd += ["-show_format", "-show_streams", str(path)]
    proc = subprocess.run(cmd, capture_output=True, timeout=FFPROBE_TIMEOUT_S, check=False)
    if proc.returncode:
        return None
    return json.loads(proc.stdout or b"{}"), proc.stderr.decode("utf-8", "replace")


# --- measurement -----------------------------------------------------------------------


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


# --- gain ------------------------------------------------------------------------------


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


# --- ingest ----------------------------------------------------------------------------

_MAGIC = (b"ID3", b"RIFF", b"OggS", b"fLaC", b"FORM", b"#!AMR", b"\x1aE\xdf\xa3", b"MAC ")


def _looks_like_audio_container(path: Path) -> bool:
    """True if the first bytes are a known audio container signature (or an MPEG sync)."""
    with path.open("rb") as f:
        head = f.read(12)
    mpeg_sync = len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    return head.startswith(_MAGIC) or head[4:8] == b"ftyp" or mpeg_sync


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
    """Probe an upload; reject empty files, non-audio and unreadable containers."""
    if src.stat().st_size == 0:
        raise AudioRejected("audio is empty (the file has 0 bytes)", "empty")
    probed = _ffprobe(src)
    if probed is None:
        if _looks_like_audio_container(src):
            raise AudioRejected("audio is corrupt or truncated (unreadable container)", "corrupt")
        raise AudioRejected("not an audio file", "not_audio")
    info, warnings = probed
    if int(info.get("format", {}).get("probe_score", 100)) <= 25:
        raise AudioRejected("not an audio file (format not recognised)", "not_audio")
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioRejected("not an audio file (no audio stream)", "not_audio")
    return _Probe(_source_format(info, streams[0]), _declared_ms(info, streams[0], warnings))


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


def _decode_source(src: Path, probe: _Probe, max_ms: int) -> bytearray:
    """Decode an upload to float32 mono 44.1 kHz, rejecting corrupt or overlong input."""
    if probe.declared_ms is not None and probe.declared_ms > max_ms + 1000:
        _reject_length(ms_to_frames(probe.declared_ms), 0, max_ms)
    if probe.source_format.startswith("ogg/") and _ogg_truncated(src):
        raise AudioRejected("audio is corrupt or truncated (Ogg stream has no end)", "corrupt")
    try:
        cap = ms_to_frames(max_ms + 60_000)  # bounds memory even if the header lies
        buf = _decode_to_buffer(src, "f32le", strict=True, max_frames=cap)
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
    max_peak_dbfs: float = -1.0,
    min_ms: int = 1000,
    max_ms: int = 20 * 60 * 1000,
    silence_dbfs: float = -60.0,
) -> IngestResult:
    """Validate an upload and write it as a normalised playout MP3 (a temp file in work_dir).

    Accepts anything ffmpeg decodes (MP3, WAV, OGG/Opus, M4A/AAC, FLAC, ...); the first audio
    stream is downmixed to mono and resampled to 44.1 kHz. Loudness goes to target_lufs
    unless that would put the sample peak above max_peak_dbfs - 0.1 dB (after allowing for
    the overshoot MP3 encoding adds); the decoded MP3's sample peak is guaranteed
    <= max_peak_dbfs (it is re-encoded with less gain if needed).
    Raises AudioRejected (nothing is left in work_dir) for unusable uploads.
    """
    src = Path(src)
    probe = _probe_source(src)
    buf = _decode_source(src, probe, max_ms)
    pcm = np.frombuffer(buf, dtype=F32)
    _reject_length(pcm.size, min_ms, max_ms)
    source = analyse_pcm(pcm)
    if source.max_rms_dbfs < silence_dbfs or not math.isfinite(source.loudness_lufs):
        raise AudioRejected(f"audio is silent throughout (below {silence_dbfs:g} dBFS)", "silent")
    ceiling = max_peak_dbfs - PEAK_MARGIN_DB
    gain = _choose_gain(source, target_lufs, ceiling, tolerance=0.0)
    out = _make_temp(Path(work_dir), prefix="ingest-", suffix=".mp3")
    try:
        gain = _preview_gain(pcm, gain, max_peak_dbfs, out.parent)
        playout = _playout_segment(pcm, gain)  # the float source is not needed any more
        del pcm, buf
        result, retry_gain = _export_verified(playout, 0.0, out, max_peak_dbfs)
        gain += retry_gain
        _check_frames(result.frames, int(playout.frame_count()), "ingest")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    limited = gain < target_lufs - source.loudness_lufs - 0.05
    return IngestResult(
        out, result.duration_ms, result.loudness_lufs, result.peak_dbfs,
        source.loudness_lufs, source.peak_dbfs, round(gain, 3), probe.source_format,
        result.frames, limited,
    )  # fmt: skip


def _make_temp(directory: Path, *, prefix: str, suffix: str) -> Path:
    """Create an empty temp file in directory (created if missing) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(name)


def _check_frames(got: int, expected: int, what: str) -> None:
    """Raise RuntimeError if a decoded MP3's length is off by more than the tolerance."""
    if abs(frames_to_ms(got) - frames_to_ms(expected)) > DURATION_TOLERANCE_MS:
        raise RuntimeError(f"{what}: MP3 decodes to {got} frames, expected {expected}")


# --- assembly --------------------------------------------------------------------------


def _check_join(gap_ms: int, crossfade_ms: int) -> None:
    """Validate gap/crossfade settings."""
    if gap_ms < 0 or crossfade_ms < 0:
        raise ValueError("gap_ms and crossfade_ms must not be negative")
    if gap_ms and crossfade_ms:
        raise ValueError("cannot crossfade and gap at once")


def _crossfaded_edges(index: int, count: int) -> int:
    """How many of item index's edges (0-2) are crossfaded with a neighbour."""
    return int(index > 0) + int(index < count - 1)


def planned_total_ms(durations_ms: Sequence[int], *, gap_ms: int = 0, crossfade_ms: int = 0) -> int:
    """Exact programme length before rendering: items + gaps - crossfade overlaps (ms)."""
    _check_join(gap_ms, crossfade_ms)
    count = len(durations_ms)
    for index, duration in enumerate(durations_ms):
        need = crossfade_ms * _crossfaded_edges(index, count)
        if duration < 0 or duration < need:
            raise ValueError(f"item {index} ({duration} ms) is shorter than its crossfades")
    if not count:
        return 0
    return sum(durations_ms) + (count - 1) * (gap_ms - crossfade_ms)


@dataclass
class _Joiner:
    """Joins decoded 16-bit items into one buffer with gaps or linear crossfades."""

    gap: int  # frames
    crossfade: int  # frames
    count: int  # number of items that will be added
    buf: bytearray = field(default_factory=bytearray)
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, frames) per item

    @property
    def frames(self) -> int:
        """Frames in the buffer so far."""
        return len(self.buf) // 2

    def add(self, label: str, segment: AudioSegment) -> None:
        """Append one decoded item (gap before it, or crossfade into the tail)."""
        index = len(self.spans)
        item_buf = segment.raw_data
        if not isinstance(item_buf, bytearray):
            item_buf = bytearray(item_buf)  # writable: the de-click ramps work in place
        item = np.frombuffer(item_buf, dtype=S16)
        if item.size < max(1, self.crossfade * _crossfaded_edges(index, self.count)):
            raise ValueError(f"item {index} ({label}) is shorter than its crossfades")
        self._declick(item, index)
        if index and self.crossfade:
            self._mix_into_tail(item[: self.crossfade])
            start = self.frames - self.crossfade
            self.buf += memoryview(item_buf)[self.crossfade * 2 :]
        else:
            self.buf += bytes(2 * self.gap if index else 0)
            start = self.frames
            self.buf += item_buf
        self.spans.append((start, item.size))

    def finish(self) -> AudioStats:
        """Measure the whole joined programme."""
        return analyse_pcm(np.frombuffer(self.buf, dtype=S16), threads=ANALYSIS_THREADS)

    def _declick(self, item: np.ndarray, index: int) -> None:
        """5 ms linear ramps on the item's edges that are not crossfaded."""
        n = min(EDGE_FADE_FRAMES, item.size // 2)
        if not n:
            return
        ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
        if not (index and self.crossfade):
            item[:n] = np.rint(item[:n] * ramp).astype(S16)
        if not (index < self.count - 1 and self.crossfade):
            item[-n:] = np.rint(item[-n:] * ramp[::-1]).astype(S16)

    def _mix_into_tail(self, head: np.ndarray) -> None:
        """Linear crossfade: the buffer's last frames fade out while head fades in."""
        n = head.size
        tail = np.frombuffer(self.buf, dtype=S16, count=n, offset=len(self.buf) - 2 * n)
        fade_in = (np.arange(n, dtype=np.float32) + 0.5) / n
        mixed = tail * (1 - fade_in) + head * fade_in
        tail[:] = np.clip(np.rint(mixed), -32768, 32767).astype(S16)


def _decode_item(index: int, label: str, path: Path) -> bytearray:
    """Decode one assembly item to 16-bit mono 44.1 kHz PCM with ffmpeg directly."""
    try:
        return _decode_to_buffer(path, "s16le", strict=True, max_frames=2**40)
    except _DecodeError as exc:
        raise ValueError(f"item {index} ({label}): cannot decode {path}: {exc}") from exc


def _decode_groups(paths: Sequence[Path], processes: int) -> list[list[int]]:
    """Item indexes split into at most `processes` groups of about equal file size."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(processes, len(paths))))]
    loads = [0] * len(groups)
    sizes = [_size_or_zero(path) for path in paths]  # a missing file fails in ffmpeg, named
    for index in sorted(range(len(paths)), key=lambda i: -sizes[i]):
        lightest = loads.index(min(loads))
        groups[lightest].append(index)
        loads[lightest] += sizes[index]
    return [sorted(group) for group in groups]


def _size_or_zero(path: Path) -> int:
    """A file's size in bytes, 0 if it cannot be read."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _decode_group(indexes: Sequence[int], paths: Sequence[Path], scratch: Path) -> None:
    """Decode several items with one ffmpeg: item i becomes scratch/item-i.pcm (s16le)."""
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-xerror"]
    for index in indexes:
        cmd += ["-i", str(paths[index])]
    for n, index in enumerate(indexes):
        out = scratch / f"item-{index}.pcm"
        cmd += ["-map", f"{n}:a:0", "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-y", str(out)]
    with tempfile.TemporaryFile() as err:
        if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, check=False).returncode:
            raise _DecodeError(_err_text(err))


def _decoded_items(
    items: Sequence[tuple[str, Path]], scratch: Path
) -> Iterator[tuple[str, AudioSegment]]:
    """Every item as a mono 44.1 kHz 16-bit AudioSegment, in order.

    The items are decoded by DECODE_PROCESSES ffmpeg processes at once, each taking a
    share (one process per item would pay ffmpeg's ~60 ms start-up a dozen times), into
    raw PCM files in scratch that are read back, and deleted, one at a time. Decoding is
    strict (``-xerror``); when a share fails, its items are decoded one by one so that the
    error names the broken item.
    """
    paths = [Path(path) for _, path in items]
    groups = _decode_groups(paths, DECODE_PROCESSES)
    with ThreadPoolExecutor(len(groups), thread_name_prefix="decode") as pool:
        futures = [pool.submit(_decode_group, group, paths, scratch) for group in groups]
        for group, future in zip(groups, futures, strict=True):
            try:
                future.result()
            except _DecodeError as exc:
                for index in group:
                    _decode_item(index, items[index][0], paths[index])
                raise ValueError(f"items {group}: cannot decode: {exc}") from exc
    for index, (label, _) in enumerate(items):
        pcm = scratch / f"item-{index}.pcm"
        data = bytearray(pcm.stat().st_size)
        with pcm.open("rb") as f:
            f.readinto(data)
        pcm.unlink()
        yield label, _segment(data)


def _join(
    items: Sequence[tuple[str, Path]], gap_ms: int, crossfade_ms: int, scratch: Path
) -> _Joiner:
    """Decode every item once and join them into one 16-bit buffer."""
    joiner = _Joiner(ms_to_frames(gap_ms), ms_to_frames(crossfade_ms), len(items))
    for label, segment in _decoded_items(items, scratch):
        joiner.add(label, segment)
    return joiner


def assemble(
    items: Sequence[tuple[str, Path]],
    *,
    out_path: Path,
    gap_ms: int = 0,
    crossfade_ms: int = 0,
    target_lufs: float = -16.0,
    max_peak_dbfs: float = -1.0,
) -> AssemblyResult:
    """Render (label, path) items in order into one playout-format master MP3 at out_path.

    Each item is decoded once to 16-bit PCM and joined in one buffer (gaps are silence,
    crossfades are linear and only touch the overlapping frames; other item edges get a
    5 ms de-click ramp). One overall gain is applied only if the master is more than
    0.5 LU off target_lufs, or if its sample peak is above max_peak_dbfs. The decoded
    result must last planned_total_ms +- 50 ms, else RuntimeError. out_path is replaced
    atomically. The MP3 is rendered in a hidden temp directory beside out_path; pydub's
    export also writes the master as a WAV temp file (~5.3 MB per minute) in the system temp
    directory. Neither is left behind on failure (except a WAV pydub could not finish
    writing, e.g. on a full disk: pydub does not say its name).
    """
    _check_join(gap_ms, crossfade_ms)
    if not items:
        raise ValueError("nothing to assemble")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.") as tmp:
        scratch = Path(tmp)
        joiner = _join(items, gap_ms, crossfade_ms, scratch)
        cues = [
            Cue(label, frames_to_ms(start), frames_to_ms(frames))
            for (label, _), (start, frames) in zip(items, joiner.spans, strict=True)
        ]
        durations = [c.duration_ms for c in cues]
        planned = planned_total_ms(durations, gap_ms=gap_ms, crossfade_ms=crossfade_ms)
        master, gain = _master_gain(joiner, target_lufs, max_peak_dbfs, scratch)
        rendered = scratch / "master.mp3"
        stats, gain = _export_verified(
            _segment(joiner.buf), gain, rendered, max_peak_dbfs, measure_loudness=False
        )
        _check_duration(stats.duration_ms, planned)
        os.replace(rendered, out_path)
    return AssemblyResult(
        out_path, stats.duration_ms, cues, round(master.loudness_lufs + gain, 3),
        stats.peak_dbfs, round(gain, 3), planned,
    )  # fmt: skip


def _master_gain(
    joiner: _Joiner, target_lufs: float, max_peak_dbfs: float, scratch: Path
) -> tuple[AudioStats, float]:
    """Measure the joined programme and choose its one gain (dB).

    The MP3 overshoot preview runs while the loudness is measured, at the highest gain the
    peak ceiling allows: the gain a peak-limited master gets. (MP3 overshoot depends on the
    level, so a preview at another gain predicts it less well.)
    """
    pcm = np.frombuffer(joiner.buf, dtype=S16)
    ceiling = max_peak_dbfs - PEAK_MARGIN_DB
    sample_peak = max(int(pcm.max()), -int(pcm.min())) / 32768 if pcm.size else 0.0
    peak_cap = ceiling - _db(sample_peak) if sample_peak else 0.0
    with ThreadPoolExecutor(1, thread_name_prefix="preview") as pool:
        preview = pool.submit(_preview_peak, pcm, peak_cap, scratch)
        master = joiner.finish()
        overshoot = max(0.0, preview.result() - ceiling)
    wanted = _choose_gain(master, target_lufs, ceiling, MASTER_TOLERANCE_LU)
    return master, min(wanted, peak_cap - overshoot)


def _check_duration(measured_ms: int, planned_ms: int) -> None:
    """Raise RuntimeError if the decoded master is not as long as planned (+-50 ms)."""
    if abs(measured_ms - planned_ms) > DURATION_TOLERANCE_MS:
        raise RuntimeError(f"master decodes to {measured_ms} ms but {planned_ms} ms were planned")
