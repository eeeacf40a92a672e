"""Assembly: render a rundown's items, in order, into one playout-format master MP3.

* ``assemble`` holds each item as an ``AudioSegment``. Their ``raw_data`` is joined into
  one growing bytearray with frame-exact offsets (never with ``+``, which copies the whole
  programme on every item, nor ``append``, which crossfades 100 ms unless told otherwise);
  the limiter renders that buffer into the encoder 10 s at a time (``gain``).
* Decoding assembly items: two ffmpeg processes decode all of them, a share each, strictly
  (``-xerror``), high-passed (``ffmpeg.highpass_args``), with ``-ac 1 -ar 44100``, into raw
  PCM files that are read back into ``AudioSegment`` objects. ``AudioSegment.from_file``
  starts one ffmpeg per item: ffmpeg's start-up alone is ~60 ms, so a 12-item programme
  spent 0.8 s loading against 0.5 s now (measured), and pydub reads each decode through a
  WAV copy. It also cannot resample properly: it appends ``parameters`` after the output,
  where ffmpeg ignores ``-ac``/``-ar``, and its own ``set_frame_rate`` (audioop ``ratecv``)
  has no anti-alias filter. The samples are those of ffmpeg's decoder with the same
  filter either way (a test compares them).
* The joined programme is measured by two threads, a half each (``measure.measure_pcm``):
  loudness and the envelopes the limiter plans with. A master of items that are already
  normalised is within MASTER_TOLERANCE_LU of the target: it keeps its level and the
  limiter only catches what the joins and the new encode add.
* The master's stored figures (loudness, true peak, loudness range, length) are measured
  on the decoded MP3, as for every playout file (``gain``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.audio.pipeline.ffmpeg import (
    FFMPEG,
    AudioSegment,
    NotAudio,
    _decode_to_buffer,
    _DecodeError,
    _err_text,
    _segment,
    highpass_args,
    input_args,
)
from app.audio.pipeline.frames import (
    DURATION_TOLERANCE_MS,
    EDGE_FADE_FRAMES,
    MP3_FRAME,
    RATE,
    S16,
    frames_to_ms,
    ms_to_frames,
)
from app.audio.pipeline.gain import encode_normalised
from app.audio.pipeline.measure import AudioStats, Envelopes, measure_pcm
from app.children import child_limits

DECODE_PROCESSES = 2  # ffmpeg processes that decode an assembly's items, a share each
INPUT_QUEUE_PACKETS = 4096  # per input of a decoding ffmpeg (~100 s of MP3, ~2 MB)
ANALYSIS_THREADS = 2  # threads that measure a joined programme, a part each
MASTER_TOLERANCE_LU = 0.2  # the master gets an overall gain only if off by more than this


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
    loudness_lufs: float  # of the decoded MP3, as its true peak and loudness range
    true_peak_dbtp: float = float("nan")
    loudness_range_lu: float = float("nan")
    gain_db: float = 0.0
    limiter_db: float = 0.0  # the limiter's deepest gain reduction
    planned_ms: int = 0


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

    def finish(self) -> tuple[AudioStats, Envelopes]:
        """Measure the whole joined programme."""
        return measure_pcm(np.frombuffer(self.buf, dtype=S16), threads=ANALYSIS_THREADS)

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


def _decode_item(index: int, label: str, path: Path, highpass_hz: float) -> bytearray:
    """Decode one assembly item to 16-bit mono 44.1 kHz PCM with ffmpeg directly."""
    try:
        return _decode_to_buffer(
            path, "s16le", strict=True, max_frames=2**40, highpass_hz=highpass_hz
        )
    except (_DecodeError, NotAudio) as exc:
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


def _decode_group(
    indexes: Sequence[int], paths: Sequence[Path], scratch: Path, highpass_hz: float
) -> None:
    """Decode several items with one ffmpeg: item i becomes scratch/item-i.pcm (s16le)."""
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-xerror"]
    for index in indexes:
        # ffmpeg reads each input in a thread of its own that hands over packets through a
        # queue of 8 by default: six inputs then spent a third of their time in futex calls
        # (0.49 s -> 0.40 s for six 90 s items with a deep queue; measured).
        try:
            source = input_args(paths[index])
        except (OSError, NotAudio) as exc:
            raise _DecodeError(f"{paths[index]}: {exc}") from exc
        cmd += ["-thread_queue_size", str(INPUT_QUEUE_PACKETS), *source]
    for n, index in enumerate(indexes):
        out = scratch / f"item-{index}.pcm"
        cmd += ["-map", f"{n}:a:0", *highpass_args(highpass_hz), "-ac", "1"]
        cmd += ["-ar", str(RATE), "-f", "s16le", "-y", str(out)]
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=err, check=False, preexec_fn=child_limits()
        )
        if done.returncode:
            raise _DecodeError(_err_text(err))


def _decoded_items(
    items: Sequence[tuple[str, Path]], scratch: Path, highpass_hz: float = 0.0
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
        futures = [
            pool.submit(_decode_group, group, paths, scratch, highpass_hz) for group in groups
        ]
        for group, future in zip(groups, futures, strict=True):
            try:
                future.result()
            except _DecodeError as exc:
                for index in group:
                    _decode_item(index, items[index][0], paths[index], highpass_hz)
                raise ValueError(f"items {group}: cannot decode: {exc}") from exc
    for index, (label, _) in enumerate(items):
        pcm = scratch / f"item-{index}.pcm"
        data = bytearray(pcm.stat().st_size)
        with pcm.open("rb") as f:
            f.readinto(data)
        pcm.unlink()
        yield label, _segment(data)


def _join(
    items: Sequence[tuple[str, Path]],
    gap_ms: int,
    crossfade_ms: int,
    scratch: Path,
    highpass_hz: float,
) -> _Joiner:
    """Decode every item once and join them into one 16-bit buffer."""
    joiner = _Joiner(ms_to_frames(gap_ms), ms_to_frames(crossfade_ms), len(items))
    for label, segment in _decoded_items(items, scratch, highpass_hz):
        joiner.add(label, segment)
    return joiner


def assemble(
    items: Sequence[tuple[str, Path]],
    *,
    out_path: Path,
    gap_ms: int = 0,
    crossfade_ms: int = 0,
    target_lufs: float = -16.0,
    max_true_peak_dbtp: float = -1.0,
    highpass_hz: float = 100.0,
) -> AssemblyResult:
    """Render (label, path) items in order into one playout-format master MP3 at out_path.

    Each item is decoded once, high-passed, to 16-bit PCM and joined in one buffer (gaps
    are silence, crossfades are linear and only touch the overlapping frames; other item
    edges get a 5 ms de-click ramp). A master more than MASTER_TOLERANCE_LU off
    target_lufs gets one overall gain; the true-peak limiter keeps the decoded MP3 at most
    max_true_peak_dbtp (``gain``). The decoded result must be as long as the joined PCM
    (+- one MP3 frame) and last planned_total_ms +- 50 ms, else RuntimeError. out_path is
    replaced atomically. The MP3 is rendered in a hidden temp directory beside out_path,
    which is not left behind on failure.
    """
    _check_join(gap_ms, crossfade_ms)
    if not items:
        raise ValueError("nothing to assemble")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.") as tmp:
        scratch = Path(tmp)
        joiner = _join(items, gap_ms, crossfade_ms, scratch, highpass_hz)
        cues = [
            Cue(label, frames_to_ms(start), frames_to_ms(frames))
            for (label, _), (start, frames) in zip(items, joiner.spans, strict=True)
        ]
        durations = [c.duration_ms for c in cues]
        planned = planned_total_ms(durations, gap_ms=gap_ms, crossfade_ms=crossfade_ms)
        _, envelopes = joiner.finish()
        rendered = scratch / "master.mp3"
        encoded = encode_normalised(
            np.frombuffer(joiner.buf, dtype=S16),
            envelopes,
            out=rendered,
            target_lufs=target_lufs,
            ceiling_dbtp=max_true_peak_dbtp,
            tolerance_lu=MASTER_TOLERANCE_LU,
        )
        stats = encoded.stats
        if abs(stats.frames - joiner.frames) > MP3_FRAME:
            raise RuntimeError(f"master decodes to {stats.frames} frames, not {joiner.frames}")
        _check_duration(stats.duration_ms, planned)
        os.replace(rendered, out_path)
    return AssemblyResult(
        out_path, stats.duration_ms, cues, stats.loudness_lufs, stats.true_peak_dbtp,
        stats.loudness_range_lu, round(encoded.plan.gain_db, 3), encoded.plan.reduction_db,
        planned,
    )  # fmt: skip


def _check_duration(measured_ms: int, planned_ms: int) -> None:
    """Raise RuntimeError if the decoded master is not as long as planned (+-50 ms)."""
    if abs(measured_ms - planned_ms) > DURATION_TOLERANCE_MS:
        raise RuntimeError(f"master decodes to {measured_ms} ms but {planned_ms} ms were planned")
