"""A programme as one stream: its items decoded by one ffmpeg, in order, and joined as they
come (gaps, crossfades, de-click ramps), never held whole in memory.

* Decoding (``Decoder``): one ffmpeg reads every item, each through the high-pass filter
  (unless it went through it already) and converted to 16-bit mono 44.1 kHz on its own
  (``aformat``), and the ``concat`` filter plays
  them one after the other into one pipe. The filter pulls from one input at a time, so the
  decode runs at the pace the encoder takes the audio, a pipe's worth ahead (1 MiB, ~12 s).
  Each item's samples are those of decoding it alone through the same filter (a test
  compares them): the filter starts afresh on every input. One process, started once, where
  one ffmpeg per item pays its ~60 ms start-up a dozen times on the core LAME leaves free.
* The items' lengths are known before the decode (``envelopes``): the joiner (``joined``)
  cuts the stream at them, applies the 5 ms de-click ramps at the item edges that are not
  crossfaded, inserts the gaps, and mixes each crossfade from the held-back tail of one item
  and the head of the next. Every sample is computed as the whole-buffer join computed it
  before (the same float32 expressions), so the master is the same to the bit.
* A stream that is longer or shorter than the lengths it was cut at is an error
  (``LengthMismatch``): the lengths came from envelopes that do not describe these files.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from app.audio.pipeline.ffmpeg import (
    FFMPEG,
    NotAudio,
    _DecodeError,
    _err_text,
    _widen_pipe,
    highpass_args,
    input_args,
)
from app.audio.pipeline.frames import CHUNK_FRAMES, EDGE_FADE_FRAMES, RATE, S16
from app.children import child_limits

INPUT_QUEUE_PACKETS = 256  # per input of the decoding ffmpeg (~7 s of MP3; 4096 read whole
# items ahead: ~20 MB more resident for no gain, as the concat filter reads one at a time)


class LengthMismatch(RuntimeError):
    """The decoded items are not as long as the lengths the programme was laid out with."""


def _item_chain(highpass_hz: float) -> str:
    """The filters every item goes through: high-pass, then 16-bit mono 44.1 kHz."""
    stages = highpass_args(highpass_hz)[1:]  # ["-af", chain] or []
    convert = f"aformat=sample_fmts=s16:sample_rates={RATE}:channel_layouts=mono"
    return ",".join([*stages, convert])


def _per_item(highpass_hz: float | Sequence[float], count: int) -> list[float]:
    if isinstance(highpass_hz, int | float):
        return [float(highpass_hz)] * count
    if len(highpass_hz) != count:
        raise ValueError("one high-pass frequency per item")
    return [float(hz) for hz in highpass_hz]


def decode_command(paths: Sequence[Path], highpass_hz: float | Sequence[float]) -> list[str]:
    """The ffmpeg command line that decodes paths, in order, to one s16le stream on stdout;
    highpass_hz: for all items, or one per item (0: not filtered)."""
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-xerror"]
    for path in paths:
        # ffmpeg reads each input in a thread of its own that hands packets over through a
        # queue of 8 by default; a deep queue saves the futex calls (measured, see assembly).
        # Only this stored file, as the container its bytes say (app.audio.pipeline.ffmpeg).
        try:
            source = input_args(path)
        except (OSError, NotAudio) as exc:  # missing, unreadable or not audio: named
            raise _DecodeError(f"{path}: {exc}") from exc
        cmd += ["-thread_queue_size", str(INPUT_QUEUE_PACKETS), *source]
    chains = [_item_chain(hz) for hz in _per_item(highpass_hz, len(paths))]
    graph = [f"[{n}:a:0]{chain}[a{n}]" for n, chain in enumerate(chains)]
    inputs = "".join(f"[a{n}]" for n in range(len(paths)))
    graph.append(f"{inputs}concat=n={len(paths)}:v=0:a=1[out]")
    return [*cmd, "-filter_complex", ";".join(graph), "-map", "[out]", "-f", "s16le", "pipe:1"]


class Decoder:
    """An ffmpeg decoding items into one stream, started at once (its ~80 ms of start-up
    overlap the caller's work) and read with ``chunks``; ``close`` stops it."""

    def __init__(self, paths: Sequence[Path], highpass_hz: float | Sequence[float]) -> None:
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  (lives until close)
        self.proc = subprocess.Popen(
            decode_command(paths, highpass_hz), stdout=subprocess.PIPE, stderr=self.err,
            stdin=subprocess.DEVNULL, preexec_fn=child_limits(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        _widen_pipe(self.proc.stdout)
        self.closed = False

    def chunks(self) -> Iterator[np.ndarray]:
        """The decoded stream, CHUNK_FRAMES at a time (writable int16 arrays); raises
        _DecodeError when ffmpeg fails. Read it once."""
        reader = cast(io.BufferedReader, self.proc.stdout)
        step = CHUNK_FRAMES * 2
        try:
            while True:
                data = bytearray(step)
                got = reader.readinto(data)
                while got and got < step:  # a pipe gives what it has: fill the chunk
                    more = reader.readinto(memoryview(data)[got:])
                    if not more:
                        break
                    got += more
                if not got:
                    break
                yield np.frombuffer(data, dtype=S16, count=got // 2)
            if self.proc.wait():
                failed = f"ffmpeg exited with {self.proc.returncode}"
                raise _DecodeError(_err_text(self.err) or failed)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the decode (nothing if it ended) and release its pipes."""
        if self.closed:
            return
        self.closed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.err.close()


def decode_item(path: Path, highpass_hz: float) -> np.ndarray:
    """One item decoded whole, as assembly decodes it (int16 mono 44.1 kHz)."""
    decoder = Decoder([path], highpass_hz)
    buf = bytearray()
    for chunk in decoder.chunks():
        buf += chunk.tobytes()
    return np.frombuffer(buf, dtype=S16)


def layout(frames: Sequence[int], gap: int, crossfade: int) -> list[tuple[int, int]]:
    """(start, frames) of every item in the programme: gaps between them, or overlaps."""
    spans, start = [], 0
    for size in frames:
        spans.append((start, size))
        start += size + gap - crossfade
    return spans


class _Cutter:
    """Takes pieces of exact lengths from a stream of int16 chunks."""

    def __init__(self, chunks: Iterable[np.ndarray]) -> None:
        self.chunks = iter(chunks)
        self.rest = np.zeros(0, dtype=S16)

    def take(self, frames: int) -> Iterator[np.ndarray]:
        """The next `frames` frames, in pieces; LengthMismatch if the stream ends first."""
        while frames:
            if not self.rest.size:
                self.rest = next(self.chunks, self.rest)
                if not self.rest.size:
                    raise LengthMismatch("the items decode shorter than their envelopes say")
            piece, self.rest = self.rest[:frames], self.rest[frames:]
            frames -= piece.size
            yield piece

    def finish(self) -> None:
        """The stream must end here."""
        if self.rest.size or next(self.chunks, None) is not None:
            raise LengthMismatch("the items decode longer than their envelopes say")


def joined(
    chunks: Iterable[np.ndarray], frames: Sequence[int], *, gap: int, crossfade: int
) -> Iterator[np.ndarray]:
    """The programme: the decoded items (chunks, cut at frames) with gaps of `gap` frames
    between them, or crossfades of `crossfade` frames, and 5 ms de-click ramps on the item
    edges that are not crossfaded."""
    cutter = _Cutter(chunks)
    count = len(frames)
    held = np.zeros(0, dtype=S16)  # the previous item's tail, to be crossfaded
    for index, size in enumerate(frames):
        fade_in = not (index and crossfade)
        fade_out = not (index < count - 1 and crossfade)
        n = min(EDGE_FADE_FRAMES, size // 2)
        ramp = (np.arange(n, dtype=np.float32) + 0.5) / n if n else np.zeros(0, np.float32)
        hold = crossfade if index < count - 1 else 0
        mix = crossfade if index else 0
        if index and gap:
            yield np.zeros(gap, dtype=S16)
        tail: list[np.ndarray] = []
        pos = 0
        for piece in cutter.take(size):
            a, b = pos, pos + piece.size
            pos = b
            if n and fade_in and a < n:
                k = min(b, n)
                piece[: k - a] = np.rint(piece[: k - a] * ramp[a:k]).astype(S16)
            if n and fade_out and b > size - n:
                lo = max(a, size - n)
                down = ramp[::-1][lo - (size - n) : b - (size - n)]
                piece[lo - a :] = np.rint(piece[lo - a :] * down).astype(S16)
            if mix and a < mix:
                k = min(b, mix)
                fade = (np.arange(a, k, dtype=np.float32) + 0.5) / mix
                mixed = held[a:k] * (1 - fade) + piece[: k - a] * fade
                piece[: k - a] = np.clip(np.rint(mixed), -32768, 32767).astype(S16)
            keep = max(0, min(b, size - hold) - a)
            if keep:
                yield piece[:keep]
            if keep < piece.size:
                tail.append(piece[keep:])
        held = np.concatenate(tail) if tail else np.zeros(0, dtype=S16)
    cutter.finish()


def positioned(chunks: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    """Each chunk with the frame it starts at."""
    start = 0
    for chunk in chunks:
        yield start, chunk
        start += chunk.size
