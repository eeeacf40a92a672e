"""Assembly: render a rundown's items, in order, into one playout-format master MP3.

* Planning comes first and touches no audio: every item's envelopes (its block true peak
  and loudness, its length, its codec overshoot; ``envelopes``) are read from where they
  were kept when it was ingested, or measured now and kept (an item seen for the first
  time, or kept for another standard). Joined as the programme lays the items out, they
  give the gain and the limiter curve of the whole master (``limiter.plan``): a master of
  items that are already normalised is within MASTER_TOLERANCE_LU of the target, keeps its
  level, and the limiter only catches what the joins and the new encode add. The limiter's
  ceiling allows for the items' codec overshoot (``gain.MASTER_OVERSHOOT_FACTOR`` times the
  largest): no preview encode.
* Then one pass streams: one ffmpeg decodes the items in order (``programme.Decoder``), the
  joiner adds gaps, crossfades and de-click ramps (``programme.joined``), the limiter
  renders 10 s at a time into LAME, and LAME's output is decoded and measured as it is made
  (``gain``). Memory stays bounded whatever the programme's length: no whole-programme
  buffer. The decoder and the encoder are started before the planning, so that their
  start-up overlaps it.
* ``measure_programme=True`` measures the joined programme itself in a first pass instead of
  joining the items' envelopes (a second decode; what tests compare against).
* The master's stored figures (loudness, true peak, loudness range, length) are measured
  on the decoded MP3, as for every playout file (``gain``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio.pipeline import envelopes as env
from app.audio.pipeline.ffmpeg import _DecodeError
from app.audio.pipeline.frames import (
    DURATION_TOLERANCE_MS,
    MP3_FRAME,
    frames_to_ms,
    ms_to_frames,
)
from app.audio.pipeline.gain import (
    MASTER_OVERSHOOT_FACTOR,
    MASTER_TOLERANCE_LU,
    encode_streamed,
    standard_key,
)
from app.audio.pipeline.measure import Envelopes, MeasuredEncode, _Analyser
from app.audio.pipeline.programme import Decoder, LengthMismatch, joined, layout

__all__ = ["MASTER_TOLERANCE_LU", "AssemblyResult", "Cue", "Item", "assemble"]


@dataclass(frozen=True)
class Item:
    """One item of a programme: its label (for cues and errors), its file, the sha256 of
    that file when it is known (its envelopes are kept under it), and whether the file went
    through the current high-pass filter already (filtered: a playout file made to the
    current standard), in which case assembly does not filter it a second time."""

    label: str
    path: Path
    sha256: str | None = None
    filtered: bool = False


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
    planning_s: float = 0.0  # from the call to LAME's first audio: envelopes read, joined, planned


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


def _items(items: Sequence[Item | tuple[str, Path]]) -> list[Item]:
    return [i if isinstance(i, Item) else Item(i[0], Path(i[1])) for i in items]


def _keys(sound: dict[str, float]) -> dict[bool, str]:
    """The envelope keys of filtered and not filtered items."""
    standard = standard_key(**sound)
    return {filtered: env.envelope_key(standard, filtered=filtered) for filtered in (False, True)}


def _item_envelopes(
    items: Sequence[Item],
    cache: env.EnvelopeCache | None,
    keys: dict[bool, str],
    sound: dict[str, float],
    *,
    fresh: bool = False,
) -> list[env.ItemEnvelopes]:
    """Every item's envelopes: kept ones when they can be trusted, else measured now (and
    kept). A file that cannot be decoded is a ValueError naming the item."""
    found: list[env.ItemEnvelopes] = []
    for index, item in enumerate(items):
        kept = None
        key = keys[item.filtered]
        if cache is not None and item.sha256 and not fresh:
            kept = cache.get(item.sha256, key)
        if kept is None:
            try:
                kept = env.measure_item(item.path, filtered=item.filtered, **sound)
            except _DecodeError as exc:
                raise ValueError(
                    f"item {index} ({item.label}): cannot decode {item.path}: {exc}"
                ) from exc
            if cache is not None and item.sha256:
                cache.put(item.sha256, key, kept)
        found.append(kept)
    return found


def _check_crossfades(items: Sequence[Item], frames: Sequence[int], crossfade: int) -> None:
    for index, (item, size) in enumerate(zip(items, frames, strict=True)):
        if size < max(1, crossfade * _crossfaded_edges(index, len(items))):
            raise ValueError(f"item {index} ({item.label}) is shorter than its crossfades")


def _measured_programme(
    paths: Sequence[Path],
    frames: Sequence[int],
    gap: int,
    crossfade: int,
    highpass_hz: Sequence[float],
) -> Envelopes:
    """The joined programme's own envelopes, from a pass of its own over the decode."""
    analyser = _Analyser()
    for chunk in joined(Decoder(paths, highpass_hz).chunks(), frames, gap=gap, crossfade=crossfade):
        analyser.feed(chunk)
    return analyser.envelopes()


def assemble(
    items: Sequence[Item | tuple[str, Path]],
    *,
    out_path: Path,
    gap_ms: int = 0,
    crossfade_ms: int = 0,
    target_lufs: float = -16.0,
    max_true_peak_dbtp: float = -1.0,
    highpass_hz: float = 100.0,
    envelopes: env.EnvelopeCache | None = None,
    measure_programme: bool = False,
) -> AssemblyResult:
    """Render items (``Item``, or (label, path)) in order into one playout-format master MP3
    at out_path (see the module docstring).

    Gaps are silence, crossfades are linear and only touch the overlapping frames; other
    item edges get a 5 ms de-click ramp. A master more than MASTER_TOLERANCE_LU off
    target_lufs gets one overall gain; the true-peak limiter keeps the decoded MP3 at most
    max_true_peak_dbtp. envelopes: where items' envelopes are kept (by their sha256).
    The decoded result must be as long as the joined PCM (+- one MP3 frame) and last
    planned_total_ms +- 50 ms, else RuntimeError. out_path is replaced atomically. The MP3
    is rendered in a hidden temp directory beside out_path, which is not left behind on
    failure. A file that cannot be decoded is a ValueError naming its item.
    """
    _check_join(gap_ms, crossfade_ms)
    if not items:
        raise ValueError("nothing to assemble")
    listed = _items(items)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sound = {
        "target_lufs": target_lufs,
        "max_true_peak_dbtp": max_true_peak_dbtp,
        "highpass_hz": highpass_hz,
    }
    keys = _keys(sound)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.") as tmp:
        rendered = Path(tmp) / "master.mp3"
        try:
            return _assemble(listed, rendered, out_path, gap_ms, crossfade_ms, sound, keys,
                             envelopes, measure_programme, fresh=False)  # fmt: skip
        except LengthMismatch:
            # Kept envelopes that do not describe these files: never trusted again.
            for item in listed:
                if envelopes is not None and item.sha256:
                    envelopes.discard(item.sha256, keys[item.filtered])
            return _assemble(listed, rendered, out_path, gap_ms, crossfade_ms, sound, keys,
                             envelopes, measure_programme, fresh=True)  # fmt: skip


def _assemble(
    items: list[Item],
    rendered: Path,
    out_path: Path,
    gap_ms: int,
    crossfade_ms: int,
    sound: dict[str, float],
    keys: dict[bool, str],
    cache: env.EnvelopeCache | None,
    measure_programme: bool,
    *,
    fresh: bool,
) -> AssemblyResult:
    paths = [item.path for item in items]
    highpass_hz = [0.0 if item.filtered else sound["highpass_hz"] for item in items]
    gap, crossfade = ms_to_frames(gap_ms), ms_to_frames(crossfade_ms)
    decoders: list[Decoder] = []
    started, planned_at = time.perf_counter(), []

    def decode() -> Iterator[np.ndarray]:
        planned_at.append(time.perf_counter() - started)
        try:
            decoder = decoders.pop() if decoders else Decoder(paths, highpass_hz)
        except _DecodeError as exc:  # an item missing or not audio (app.audio.pipeline.ffmpeg)
            raise _named_decode_error(items, highpass_hz, exc) from exc
        try:
            yield from joined(decoder.chunks(), frames, gap=gap, crossfade=crossfade)
        except _DecodeError as exc:
            raise _named_decode_error(items, highpass_hz, exc) from exc
        finally:
            decoder.close()

    frames: list[int] = []
    encoder = MeasuredEncode(rendered)  # started now: its start-up overlaps the planning
    try:
        with contextlib.suppress(_DecodeError):  # the item is named by its envelopes below
            decoders.append(Decoder(paths, highpass_hz))
        kept = _item_envelopes(items, cache, keys, sound, fresh=fresh)
        frames = [item.frames for item in kept]
        _check_crossfades(items, frames, crossfade)
        spans = layout(frames, gap, crossfade)
        cues = [
            Cue(item.label, frames_to_ms(start), frames_to_ms(size))
            for item, (start, size) in zip(items, spans, strict=True)
        ]
        planned = planned_total_ms(
            [c.duration_ms for c in cues], gap_ms=gap_ms, crossfade_ms=crossfade_ms
        )
        if measure_programme:
            programme = _measured_programme(paths, frames, gap, crossfade, highpass_hz)
        else:
            programme = env.join(kept, spans, crossfade)
        overshoot = MASTER_OVERSHOOT_FACTOR * max(item.overshoot_db for item in kept)
        del kept  # ~1 MB per minute: the programme's envelopes hold what the plan needs
        encoded = encode_streamed(
            decode,
            programme,
            out=rendered,
            target_lufs=sound["target_lufs"],
            ceiling_dbtp=sound["max_true_peak_dbtp"],
            tolerance_lu=MASTER_TOLERANCE_LU,
            overshoot_db=overshoot,
            encoder=encoder,
        )
    finally:
        encoder.cancel()  # nothing once it made the file
        for decoder in decoders:
            decoder.close()
    stats = encoded.stats
    if abs(stats.frames - programme.frames) > MP3_FRAME:
        raise RuntimeError(f"master decodes to {stats.frames} frames, not {programme.frames}")
    _check_duration(stats.duration_ms, planned)
    os.replace(rendered, out_path)
    return AssemblyResult(
        out_path, stats.duration_ms, cues, stats.loudness_lufs, stats.true_peak_dbtp,
        stats.loudness_range_lu, round(encoded.plan.gain_db, 3), encoded.plan.reduction_db,
        planned, planned_at[0] if planned_at else 0.0,
    )  # fmt: skip


def _named_decode_error(
    items: Sequence[Item], highpass_hz: Sequence[float], exc: Exception
) -> ValueError:
    """The decode of the programme failed: find the item that cannot be decoded."""
    from app.audio.pipeline.programme import decode_item

    for index, item in enumerate(items):
        try:
            decode_item(item.path, highpass_hz[index])
        except _DecodeError as item_exc:
            return ValueError(f"item {index} ({item.label}): cannot decode {item.path}: {item_exc}")
    return ValueError(f"the items cannot be decoded together: {exc}")


def _check_duration(measured_ms: int, planned_ms: int) -> None:
    """Raise RuntimeError if the decoded master is not as long as planned (+-50 ms)."""
    if abs(measured_ms - planned_ms) > DURATION_TOLERANCE_MS:
        raise RuntimeError(f"master decodes to {measured_ms} ms but {planned_ms} ms were planned")
