"""Envelopes measured once per item and kept: what an assembly plans from without decoding
and measuring its programme first.

* An item's envelopes (``ItemEnvelopes``) are those of ``measure.measure_pcm`` on the item as
  assembly decodes it (``programme.decode_item``: 16-bit mono 44.1 kHz, high-passed unless
  it was made to the current standard, which filtered it already at ingest): per
  ENV_BLOCK block its true peak (dB) and K-weighted energy, and its length in frames. With
  them, the item's codec overshoot: how far LAME raises the true peak of its loudest
  moments when they are limited at the ceiling and encoded again (``gain.codec_overshoot``,
  a preview of ~45 s at most), which the master's limiter allows for instead of a preview
  encode of the whole programme.
* They are kept beside the stored audio (``EnvelopeCache``, one file per sha256 and key),
  keyed by ``envelope_key``: the playout standard (loudness target, true-peak ceiling,
  high-pass, limiter, encoder) and ENVELOPE_VERSION. A file of another key, or one that
  does not read back whole and consistent, is not used: the item is measured again.
* Stored as float32 (true peak in dB, energy linear): 8 bytes per 21 frames, ~1 MB per
  minute, about the size of the MP3. Loading is a read, with no conversion, which is what
  the assembly's planning budget (well under 100 ms for 15 minutes) asks for.
* Joining (``join``): the items' envelopes laid out as the programme lays them out. Item
  blocks start at the item's first frame, programme blocks every 21 frames from 0: an item
  whose start is not on a block boundary has each block straddle two programme blocks; its
  true peak goes to both (so the limiter still sees every peak where it is, or earlier) and
  its energy to the one holding most of it (energy is conserved; the loudness gating
  windows are 100 ms wide). A crossfade's blocks get the sum of the two faded true peaks
  (an upper bound) and the faded energies added. The de-click ramps only lower the audio
  and are left out (the true peak stays an upper bound; 5 ms per edge of energy is below
  any loudness figure we keep). Measured against the programme's own measurement: within
  0.01 LU and 0.05 dB (tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio.pipeline.frames import ENV_BLOCK, RATE
from app.audio.pipeline.measure import Envelopes, measure_pcm

ENVELOPE_VERSION = 1  # bump when what is measured or how it is stored changes
MAGIC = b"LOAXAENV"
PARALLEL_MIN_FRAMES = 60 * RATE  # longer items are measured in two threads
F32 = np.dtype("<f4")


def envelope_key(standard: str, *, filtered: bool = True) -> str:
    """The key an item's envelopes are kept under: the playout standard they were measured
    for (``gain.standard_key``, which names the high-pass), whether the item was decoded
    without the high-pass (filtered: a file made to that standard went through it already)
    or through it, and how they are measured."""
    spec = {
        "standard": standard,
        "filtered": filtered,
        "envelopes": ENVELOPE_VERSION,
        "block": ENV_BLOCK,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ItemEnvelopes:
    """One item's envelopes (see the module docstring)."""

    frames: int
    peak_db: np.ndarray  # float32, true peak per ENV_BLOCK block in dB
    energy: np.ndarray  # float32, K-weighted sum of squares per block
    overshoot_db: float  # LAME's rise of the limited loudest moments' true peak

    def envelopes(self) -> Envelopes:
        """As the limiter plans with them."""
        return Envelopes(self.frames, None, self.energy, self.peak_db)


def measure_item(
    path: Path,
    *,
    target_lufs: float,
    max_true_peak_dbtp: float,
    highpass_hz: float,
    filtered: bool = False,
) -> ItemEnvelopes:
    """Decode an item as assembly does (through the high-pass filter unless it is filtered
    already) and measure its envelopes and codec overshoot. Raises _DecodeError when ffmpeg
    cannot decode it."""
    from app.audio.pipeline.gain import item_overshoot  # gain plans with these envelopes
    from app.audio.pipeline.programme import decode_item

    pcm = decode_item(Path(path), 0.0 if filtered else highpass_hz)
    threads = 2 if pcm.size >= PARALLEL_MIN_FRAMES else 1
    _, env = measure_pcm(pcm, threads=threads)
    overshoot = item_overshoot(
        pcm, env, target_lufs=target_lufs, ceiling_dbtp=max_true_peak_dbtp
    )
    energy = env.energy.astype(F32)
    return ItemEnvelopes(env.frames, env.tp_db(), energy, round(overshoot, 4))


def _blocks(frames: int) -> int:
    return -(-frames // ENV_BLOCK)


def dump(env: ItemEnvelopes, *, sha256: str, key: str) -> bytes:
    """The bytes of an envelope file."""
    header = json.dumps(
        {
            "sha256": sha256,
            "key": key,
            "frames": env.frames,
            "blocks": int(env.peak_db.size),
            "overshoot_db": env.overshoot_db,
        },
        sort_keys=True,
    ).encode()
    head = MAGIC + len(header).to_bytes(4, "little") + header
    pad = b" " * (-len(head) % 4)  # the arrays start 4-byte aligned
    return head + pad + env.peak_db.astype(F32).tobytes() + env.energy.astype(F32).tobytes()


def load(data: bytes, *, sha256: str, key: str) -> ItemEnvelopes | None:
    """An envelope file read back, or None unless it is whole, consistent and of this
    sha256 and key."""
    try:
        if not data.startswith(MAGIC):
            return None
        size = int.from_bytes(data[8:12], "little")
        header = json.loads(data[12 : 12 + size])
        offset = 12 + size + (-(12 + size) % 4)
        frames, blocks = int(header["frames"]), int(header["blocks"])
        overshoot = float(header["overshoot_db"])
        if header["sha256"] != sha256 or header["key"] != key:
            return None
        if blocks != _blocks(frames) or len(data) != offset + 8 * blocks:
            return None
        if not math.isfinite(overshoot):
            return None
        peak = np.frombuffer(data, dtype=F32, count=blocks, offset=offset)
        energy = np.frombuffer(data, dtype=F32, count=blocks, offset=offset + 4 * blocks)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return ItemEnvelopes(frames, peak, energy, overshoot)


class EnvelopeCache:
    """Envelope files where path_for(sha256, key) says (``AudioStore.envelope_path``)."""

    def __init__(self, path_for: Callable[[str, str], Path]) -> None:
        self.path_for = path_for

    def get(self, sha256: str, key: str) -> ItemEnvelopes | None:
        """The kept envelopes, or None when there are none that can be trusted."""
        try:
            data = self.path_for(sha256, key).read_bytes()
        except OSError:
            return None
        return load(data, sha256=sha256, key=key)

    def put(self, sha256: str, key: str, env: ItemEnvelopes) -> None:
        """Keep envelopes (atomically: a reader sees the whole file or none). Best effort:
        a full disk leaves them to be measured again next time."""
        path = self.path_for(sha256, key)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sha256[:12]}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(dump(env, sha256=sha256, key=key))
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def discard(self, sha256: str, key: str) -> None:
        """Forget envelopes that turned out wrong."""
        with contextlib.suppress(OSError):
            self.path_for(sha256, key).unlink(missing_ok=True)


def join(
    items: Sequence[ItemEnvelopes], spans: Sequence[tuple[int, int]], crossfade: int
) -> Envelopes:
    """The programme's envelopes from its items' (see the module docstring); spans are the
    items' (start, frames) in the programme."""
    total = spans[-1][0] + spans[-1][1] if spans else 0
    blocks = _blocks(total)
    peak = np.full(blocks, -np.inf, dtype=F32)
    energy = np.zeros(blocks, dtype=F32)
    for index, (item, (start, _)) in enumerate(zip(items, spans, strict=True)):
        q, r = divmod(start, ENV_BLOCK)
        overlap = crossfade if index and crossfade else 0
        item_peak, item_energy = item.peak_db, item.energy
        if overlap:
            item_peak, item_energy = _fade_in(item, overlap)
            _fade_out(peak, energy, start, overlap)
        placed = item_peak
        if r:  # each item block straddles two programme blocks: its peak goes to both
            placed = np.full(item_peak.size + 1, -np.inf, dtype=F32)
            placed[:-1] = item_peak
            np.maximum(placed[1:], item_peak, out=placed[1:])
        dst = peak[q : q + placed.size]
        src = placed[: dst.size]
        mixed = min(dst.size, (start + overlap - 1) // ENV_BLOCK + 1 - q) if overlap else 0
        if mixed:  # both items sound here: at most the sum of their (faded) peaks
            dst[:mixed] = _db_sum(dst[:mixed], src[:mixed])
        np.maximum(dst[mixed:], src[mixed:], out=dst[mixed:])
        at = q + int(r > ENV_BLOCK // 2)  # the block holding most of each item block
        n = min(item_energy.size, blocks - at)
        energy[at : at + n] += item_energy[:n]
    return Envelopes(total, None, energy, peak)


def _db_sum(a_db: np.ndarray, b_db: np.ndarray) -> np.ndarray:
    """20 log10 of the sum of two amplitudes given in dB."""
    with np.errstate(divide="ignore"):
        return (20 * np.log10(10 ** (a_db / 20.0) + 10 ** (b_db / 20.0))).astype(F32)


def _fade(first: int, blocks: int, offset: int, overlap: int) -> tuple[np.ndarray, ...]:
    """The crossfade's fade-in, (t + 0.5) / overlap for frame t of the overlap (0 before it,
    1 after), over blocks first..first+blocks of a grid whose frame 0 is `offset` frames
    before the overlap: its lowest, highest and middle value on each block's frames."""
    edges = (first + np.arange(blocks + 1)) * ENV_BLOCK - offset
    lo, hi = edges[:-1], edges[1:] - 1

    def fade(t: np.ndarray) -> np.ndarray:
        return np.clip((t + 0.5) / overlap, 0.0, 1.0)

    return fade(lo), fade(hi), fade((lo + hi) / 2)


def _fade_in(item: ItemEnvelopes, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """The item's peak and energy envelopes with its first `overlap` frames faded in."""
    blocks = min(item.peak_db.size, _blocks(overlap))
    _, f_hi, f_mid = _fade(0, blocks, 0, overlap)
    peak, energy = item.peak_db.copy(), item.energy.copy()
    with np.errstate(divide="ignore"):
        peak[:blocks] += (20 * np.log10(f_hi)).astype(F32)
    energy[:blocks] *= (f_mid**2).astype(F32)
    return peak, energy


def _fade_out(peak: np.ndarray, energy: np.ndarray, start: int, overlap: int) -> None:
    """The previous item's tail, already in place, faded out over the crossfade that starts
    at programme frame `start` (gone after it)."""
    first = start // ENV_BLOCK
    last = min(peak.size, (start + overlap - 1) // ENV_BLOCK + 1)
    f_lo, _, f_mid = _fade(first, last - first, start, overlap)
    with np.errstate(divide="ignore"):
        peak[first:last] += (20 * np.log10(1 - f_lo)).astype(F32)
    energy[first:last] *= ((1 - f_mid) ** 2).astype(F32)
