"""Encoding with a guarantee: the playout MP3, as a player decodes it, on target loudness
and with its true peak under the ceiling.

* The limiter (``limiter``) holds the PCM's true peak at ``ceiling - TP_MARGIN_DB``. MP3
  encoding moves peaks, and ffmpeg's ``ebur128`` meter, the reference, reads a true peak
  up to ~0.2 dB away from BS.1770's own filter: the margin covers both for speech, music
  and tones (measured: LAME V2 adds less than 0.1 dB of true peak to limited speech).
  Dense limited noise is the exception: a train of snare-like noise bursts pulled down
  13 dB came back from LAME 1.6 dB over the limiter's ceiling, and its loudness 0.4 LU
  lower (LAME's low-pass removes the noise's top octave, which K-weighting counts).
* Masters (``encode_streamed``) get no preview: their items' previews were encoded when the
  items were measured (``item_overshoot``), and the limiter's ceiling allows for
  MASTER_OVERSHOOT_FACTOR times the largest, plus PREVIEW_MARGIN_DB, from the first plan.
* Audio longer than 30 s that the limiter works on first has its loudest moments encoded
  alone (a "preview", ~45 s of audio): when LAME raises their true peak by more than the
  margin allows, the limiter's ceiling goes down by what was seen plus PREVIEW_MARGIN_DB
  before the full encode, which then usually passes at once.
* Every encode is decoded again and measured (``measure.encode_measured``): loudness,
  true peak, loudness range and length of what was stored, the same figures as decoding
  the stored file, but taken while LAME encodes, from a second copy of its output (on
  15 minutes the check cost ~1 s after the encode; now ~0.4 s more encode time). If the
  true peak is still above the ceiling the limiter's ceiling goes down by the excess plus
  a retry margin that grows with it (the deeper the limiting, the larger the codec's
  overshoot); if the loudness is more than LOUDNESS_RETRY_LU off a target the limiter
  could reach, the aim moves by the error; then it is encoded again (at most MAX_ENCODES
  encodes; a true peak still over the ceiling then is an error, never a stored file).
* The gain is applied while rendering to 16 bits (``limiter.render``), 10 s at a time
  straight into the encoder's pipe, never with ``AudioSegment.apply_gain``: that copies
  the whole programme (~100 MB more peak memory on 15 minutes) and truncates instead of
  rounding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio.pipeline.ffmpeg import EXPORT_PARAMETERS
from app.audio.pipeline.frames import EDGE_FADE_FRAMES, ENV_BLOCK, RATE, S16, SUB_BLOCK
from app.audio.pipeline.limiter import (
    ATTACK_DB_PER_MS,
    MAX_GAIN_DB,
    MAX_LIMIT_DB,
    RELEASES_DB_PER_MS,
    Plan,
    plan,
    render,
    render_chunk,
    render_stream,
)
from app.audio.pipeline.measure import AudioStats, Envelopes, MeasuredEncode

TP_MARGIN_DB = 0.5  # the limiter's ceiling sits this far under the true-peak ceiling
RETRY_MARGIN_DB = 0.2  # extra cut when a decoded MP3 still peaks above the ceiling ...
RETRY_MARGIN_SHARE = 0.25  # ... plus this share of the excess
LOUDNESS_RETRY_LU = 0.2  # re-encode when the MP3's loudness is further off a reachable target
MAX_ENCODES = 4
PREVIEW_MIN_FRAMES = 30 * RATE  # longer audio gets a preview encode of its loudest moments
PREVIEW_SPANS = 64  # loudest 100 ms stretches the preview encodes (~45 s) ...
PREVIEW_PAD = 3 * SUB_BLOCK  # ... with 300 ms either side
PREVIEW_MARGIN_DB = 0.5  # a preview samples the codec's overshoot: the whole file goes further
LOUDNESS_TOLERANCE_LU = 0.5  # a stored file further off target is reported (DESIGN.md)
STANDARD_VERSION = 1  # bump when a change to the code changes how files sound


def _codec_overshoot(
    pcm: np.ndarray, envelopes: Envelopes, chosen: Plan, preview: MeasuredEncode
) -> float:
    """How far (dB) LAME raises the true peak of the planned audio's loudest moments: the
    PREVIEW_SPANS 100 ms stretches with the highest planned true peak, +-300 ms, rendered,
    faded in and out, encoded together (by preview, already started) and decoded."""
    gain = chosen.block_gain if chosen.block_gain is not None else np.float32(chosen.factor())
    after = envelopes.tp_linear() * gain
    per_sub = SUB_BLOCK // ENV_BLOCK
    whole = after.size // per_sub * per_sub
    loudest = after[:whole].reshape(-1, per_sub).max(axis=1)
    spans: list[list[int]] = []
    for sub in sorted(np.argsort(loudest)[-PREVIEW_SPANS:].tolist()):
        start = max(0, sub * SUB_BLOCK - PREVIEW_PAD)
        end = min(pcm.size, (sub + 1) * SUB_BLOCK + PREVIEW_PAD)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    gap = np.zeros(SUB_BLOCK, dtype=S16)
    parts = [np.concatenate((_faded(render_chunk(pcm[s:e], s, chosen)), gap)) for s, e in spans]
    decoded = preview.encode(parts).true_peak_dbtp
    planned = 20 * math.log10(float(loudest.max())) if loudest.size else -math.inf
    return max(0.0, decoded - planned)


def _faded(part: np.ndarray) -> np.ndarray:
    """int16 audio with 5 ms linear fades at both ends (a cut would make its own peaks)."""
    n = min(EDGE_FADE_FRAMES, part.size // 2)
    ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
    out = part.astype(np.float32)
    out[:n] *= ramp
    out[out.size - n :] *= ramp[::-1]
    return np.rint(out).astype(S16)


@dataclass(frozen=True)
class Encoded:
    """A verified playout MP3: what was measured on it and how it was made."""

    stats: AudioStats  # of the decoded MP3
    plan: Plan  # the gain and limiter of the encode that was kept
    encodes: int


MASTER_TOLERANCE_LU = 0.2  # a master gets an overall gain only if off by more than this
# A master's codec overshoot is this many times its items' largest (``item_overshoot``):
# a preview encodes short stretches between silences, where LAME's bit reservoir is full,
# and a whole programme of dense audio comes back further over. Measured on three 5- to
# 15-minute masters of ingested items (the master's first encode against the items'
# largest preview): espeak-ng speech 0.12 dB against 0.07, the benchmark's noise-like
# speech 1.47 against 0.66, snare, chord and noise items 2.70 against 1.63: 1.7 to 2.2 times.
MASTER_OVERSHOOT_FACTOR = 2.0


def item_overshoot(
    pcm: np.ndarray, envelopes: Envelopes, *, target_lufs: float, ceiling_dbtp: float
) -> float:
    """How far LAME raises the true peak of an item's loudest moments when a master's
    limiter holds them at its ceiling (``codec_overshoot`` with the plan a master of
    normalised items gets): kept with the item's envelopes, so that the master needs no
    preview encode of its own."""
    chosen = plan(
        envelopes,
        target_lufs=target_lufs,
        ceiling_dbtp=ceiling_dbtp - TP_MARGIN_DB,
        tolerance_lu=MASTER_TOLERANCE_LU,
    )
    with tempfile.TemporaryDirectory(prefix="loaxa-overshoot-") as tmp:
        preview = MeasuredEncode(Path(tmp) / "preview.mp3")
        try:
            return _codec_overshoot(pcm, envelopes, chosen, preview)
        finally:
            preview.cancel()  # nothing if it ran


def _overshoot_limit(ceiling_dbtp: float, overshoot_db: float) -> float:
    """The limiter's ceiling when the codec is known to raise true peaks by overshoot_db."""
    return ceiling_dbtp - max(TP_MARGIN_DB, overshoot_db + PREVIEW_MARGIN_DB)


def encode_normalised(
    pcm: np.ndarray,
    envelopes: Envelopes,
    *,
    out: Path,
    target_lufs: float,
    ceiling_dbtp: float,
    tolerance_lu: float = 0.0,
) -> Encoded:
    """Gain, limit and encode pcm to the playout MP3 at out, and verify the decoded result
    (see the module docstring). tolerance_lu: leave audio that close to the target (and
    under the ceiling) at its level."""
    with contextlib.ExitStack() as started:

        def preview(chosen: Plan, encoder: MeasuredEncode) -> float:
            return _codec_overshoot(pcm, envelopes, chosen, encoder)

        return _encode_checked(
            lambda chosen: render(pcm, chosen),
            envelopes,
            out,
            started,
            target_lufs,
            ceiling_dbtp,
            tolerance_lu,
            preview=preview if pcm.size > PREVIEW_MIN_FRAMES else None,
        )


def encode_streamed(
    source: Callable[[], Iterable[np.ndarray]],
    envelopes: Envelopes,
    *,
    out: Path,
    target_lufs: float,
    ceiling_dbtp: float,
    tolerance_lu: float,
    overshoot_db: float,
    encoder: MeasuredEncode | None = None,
) -> Encoded:
    """``encode_normalised`` of audio that is never held whole: source() gives it as int16
    chunks (each call a new pass: a re-encode decodes again). The codec's overshoot is known
    (``item_overshoot``): no preview. encoder: one already started for out."""
    with contextlib.ExitStack() as started:
        if encoder is not None:
            started.callback(encoder.cancel)
        return _encode_checked(
            lambda chosen: render_stream(source(), chosen),
            envelopes,
            out,
            started,
            target_lufs,
            ceiling_dbtp,
            tolerance_lu,
            overshoot_db=overshoot_db,
            encoder=encoder,
        )


def _preview_dir(parent: Path) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(dir=parent, prefix=".preview-")


def _encode_checked(
    rendered: Callable[[Plan], Iterable[np.ndarray]],
    envelopes: Envelopes,
    out: Path,
    started: contextlib.ExitStack,
    target_lufs: float,
    ceiling_dbtp: float,
    tolerance_lu: float,
    *,
    preview: Callable[[Plan, MeasuredEncode], float] | None = None,
    overshoot_db: float | None = None,
    encoder: MeasuredEncode | None = None,
) -> Encoded:
    """The plan, preview, encode and verify loop of encode_normalised.

    Each encoder is started one step before it gets its audio, so that ffmpeg's ~80 ms of
    start-up overlap the planning: the preview's before the plan, the file's before the
    plan is corrected by the preview (one at a time: each is two ffmpeg processes). With a
    known overshoot there is no preview: the limiter's ceiling allows for it at once."""

    def start(path: Path) -> MeasuredEncode:
        made = MeasuredEncode(path)
        started.callback(made.cancel)  # nothing, once it has made the file
        return made

    preview_encoder: MeasuredEncode | None = None
    if preview is not None and overshoot_db is None:
        scratch = Path(started.enter_context(_preview_dir(out.parent)))
        preview_encoder = start(scratch / "preview.mp3")
    elif encoder is None:
        encoder = start(out)
    limit, aim = ceiling_dbtp - TP_MARGIN_DB, target_lufs
    if overshoot_db is not None:
        limit = _overshoot_limit(ceiling_dbtp, overshoot_db)
    chosen: Plan | None = None
    for attempt in range(1, MAX_ENCODES + 1):
        tolerance = tolerance_lu if attempt == 1 else 0.0
        hint = chosen if attempt > 1 else None
        chosen = plan(
            envelopes, target_lufs=aim, ceiling_dbtp=limit, tolerance_lu=tolerance, hint=hint
        )
        overshoot = 0.0
        if attempt == 1 and preview_encoder is not None and preview is not None:
            if chosen.reduction_db > 0:
                overshoot = preview(chosen, preview_encoder)
            preview_encoder.cancel()  # nothing if it ran
            encoder = encoder or start(out)
            if overshoot + PREVIEW_MARGIN_DB > TP_MARGIN_DB:
                limit = _overshoot_limit(ceiling_dbtp, overshoot)
                chosen = plan(
                    envelopes, target_lufs=aim, ceiling_dbtp=limit, tolerance_lu=tolerance,
                    hint=chosen,
                )  # fmt: skip
        encoder = encoder or start(out)
        # Verified while LAME encodes, in one measuring thread: the encoder has a core of
        # its own and the decode, the measuring and the render share the other; a second
        # measuring thread only takes time from LAME (15 minutes: 2.71 s against 3.19 s).
        stats = encoder.encode(rendered(chosen))
        encoder = None
        over = stats.true_peak_dbtp - ceiling_dbtp
        off = target_lufs - stats.loudness_lufs
        reachable = abs(chosen.predicted_lufs - aim) <= 0.1 or chosen.gain_db == 0
        loudness_ok = (
            not math.isfinite(off) or abs(off) <= max(LOUDNESS_RETRY_LU, tolerance) or not reachable
        )
        if over <= 0 and loudness_ok:
            return Encoded(stats, chosen, attempt)
        if over > 0:
            limit -= over * (1 + RETRY_MARGIN_SHARE) + RETRY_MARGIN_DB
        if not loudness_ok:
            aim += off
    if over > 0:
        raise RuntimeError(
            f"MP3 still has a true peak of {stats.true_peak_dbtp:.2f} dBTP "
            f"after {MAX_ENCODES} encodes"
        )
    assert chosen is not None
    return Encoded(stats, chosen, MAX_ENCODES)


def standard_key(*, target_lufs: float, max_true_peak_dbtp: float, highpass_hz: float) -> str:
    """Names the playout standard a file is made to: every setting and constant that changes
    how it sounds. Files (and masters) made to another standard are made again."""
    spec = {
        "version": STANDARD_VERSION,
        "target_lufs": target_lufs,
        "max_true_peak_dbtp": max_true_peak_dbtp,
        "highpass_hz": highpass_hz,
        "tp_margin_db": TP_MARGIN_DB,
        "attack_db_per_ms": ATTACK_DB_PER_MS,
        "releases_db_per_ms": RELEASES_DB_PER_MS,
        "max_gain_db": MAX_GAIN_DB,
        "max_limit_db": MAX_LIMIT_DB,
        "encode": EXPORT_PARAMETERS,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def off_target(
    *,
    loudness_lufs: float | None,
    true_peak_dbtp: float | None,
    target_lufs: float,
    max_true_peak_dbtp: float,
) -> list[str]:
    """What is wrong with a playout file's measured figures, one sentence each: loudness
    more than LOUDNESS_TOLERANCE_LU off the target, or true peak over the ceiling."""
    problems = []
    if loudness_lufs is None or not math.isfinite(loudness_lufs):
        problems.append("its loudness cannot be measured (too short, or silence)")
    elif abs(loudness_lufs - target_lufs) > LOUDNESS_TOLERANCE_LU:
        off = loudness_lufs - target_lufs
        side = "under" if off < 0 else "over"
        problems.append(
            f"loudness {loudness_lufs:.1f} LUFS is {abs(off):.1f} LU {side} the "
            f"{target_lufs:g} LUFS target"
        )
    if true_peak_dbtp is None:
        problems.append("its true peak was never measured (stored before; renormalise it)")
    elif true_peak_dbtp > max_true_peak_dbtp + 0.005:
        problems.append(
            f"true peak {true_peak_dbtp:.2f} dBTP is over the {max_true_peak_dbtp:g} dBTP ceiling"
        )
    return problems
