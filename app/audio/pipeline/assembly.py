"""Assembly: render a rundown's items, in order, into one playout-format master MP3.

* ``assemble`` holds each item as an ``AudioSegment``. Their ``raw_data`` is joined into
  one growing bytearray with frame-exact offsets (never with ``+``, which copies the whole
  programme on every item, nor ``append``, which crossfades 100 ms unless told otherwise);
  that buffer is wrapped, without a copy, as the master ``AudioSegment``.
* Decoding assembly items: two ffmpeg processes decode all of them, a share each, strictly
  (``-xerror``), with ``-ac 1 -ar 44100``, into raw PCM files that are read back into
  ``AudioSegment`` objects. ``AudioSegment.from_file`` starts one ffmpeg per item: ffmpeg's
  start-up alone is ~60 ms, so a 12-item programme spent 0.8 s loading against 0.5 s now
  (measured), and pydub reads each decode through a WAV copy. It also cannot resample
  properly: it appends ``parameters`` after the output, where ffmpeg ignores ``-ac``/``-ar``,
  and its own ``set_frame_rate`` (audioop ``ratecv``) has no anti-alias filter. The samples
  are those of ffmpeg's default decoder either way (a test compares them).
* The joined programme is measured by two threads, a half each (``measure.analyse_pcm``).
* A master's loudness is measured on the PCM handed to the encoder (gain included), which
  saves a second filter pass over the whole programme: V2 moves integrated loudness by
  less than 0.1 LU (a test compares it with ffmpeg's ebur128 reading of the file). The
  master's peak and length are still read off the decoded MP3.
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
    _decode_to_buffer,
    _DecodeError,
    _err_text,
    _segment,
)
from app.audio.pipeline.frames import (
    DURATION_TOLERANCE_MS,
    EDGE_FADE_FRAMES,
    RATE,
    S16,
    frames_to_ms,
    ms_to_frames,
)
from app.audio.pipeline.gain import (
    PEAK_MARGIN_DB,
    _choose_gain,
    _export_verified,
    _preview_peak,
)
from app.audio.pipeline.measure import AudioStats, _db, analyse_pcm

DECODE_PROCESSES = 2  # ffmpeg processes that decode an assembly's items, a share each
ANALYSIS_THREADS = 2  # threads that measure a joined programme, a part each
MASTER_TOLERANCE_LU = 0.5  # the master gets an overall gain only if off by more than this


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
