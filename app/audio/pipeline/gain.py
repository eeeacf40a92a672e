"""Encoding with a guarantee: the playout MP3, as a player decodes it, on target loudness
and with its true peak under the ceiling.

* The limiter (``limiter``) holds the PCM's true peak at ``ceiling - TP_MARGIN_DB``. MP3
  encoding moves peaks, and ffmpeg's ``ebur128`` meter, the reference, reads a true peak
  up to ~0.2 dB away from BS.1770's own filter: the margin covers both for speech, music
  and tones (measured: LAME V2 adds less than 0.1 dB of true peak to limited speech).
  Dense limited noise is the exception: a train of snare-like noise bursts pulled down
  13 dB came back from LAME 1.6 dB over the limiter's ceiling, and its loudness 0.4 LU
  lower (LAME's low-pass removes the noise's top octave, which K-weighting counts).
* Every encode is decoded again and measured (``measure.analyse_file``): loudness, true
  peak, loudness range and length of what was stored. If the true peak is still above
  the ceiling the limiter's ceiling goes down by the excess plus a retry margin that grows
  with it (the deeper the limiting, the larger the codec's overshoot); if the loudness is
  more than LOUDNESS_RETRY_LU off a target the limiter could reach, the aim moves by the
  error; then it is encoded again (at most MAX_ENCODES encodes; a true peak still over
  the ceiling then is an error, never a stored file).
* The gain is applied while rendering to 16 bits (``limiter.render``), never with
  ``AudioSegment.apply_gain``: that copies the whole programme (~100 MB more peak memory
  on 15 minutes) and truncates instead of rounding.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio.pipeline.ffmpeg import EXPORT_PARAMETERS, _export, _segment
from app.audio.pipeline.limiter import (
    ATTACK_DB_PER_MS,
    MAX_GAIN_DB,
    MAX_LIMIT_DB,
    RELEASES_DB_PER_MS,
    Plan,
    plan,
    render,
)
from app.audio.pipeline.measure import AudioStats, Envelopes, analyse_file

TP_MARGIN_DB = 0.5  # the limiter's ceiling sits this far under the true-peak ceiling
RETRY_MARGIN_DB = 0.2  # extra cut when a decoded MP3 still peaks above the ceiling ...
RETRY_MARGIN_SHARE = 0.25  # ... plus this share of the excess
LOUDNESS_RETRY_LU = 0.2  # re-encode when the MP3's loudness is further off a reachable target
MAX_ENCODES = 4
LOUDNESS_TOLERANCE_LU = 0.5  # a stored file further off target is reported (DESIGN.md)
STANDARD_VERSION = 1  # bump when a change to the code changes how files sound


@dataclass(frozen=True)
class Encoded:
    """A verified playout MP3: what was measured on it and how it was made."""

    stats: AudioStats  # of the decoded MP3
    plan: Plan  # the gain and limiter of the encode that was kept
    encodes: int


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
    limit, aim = ceiling_dbtp - TP_MARGIN_DB, target_lufs
    for attempt in range(1, MAX_ENCODES + 1):
        tolerance = tolerance_lu if attempt == 1 else 0.0
        chosen = plan(envelopes, target_lufs=aim, ceiling_dbtp=limit, tolerance_lu=tolerance)
        _export(_segment(render(pcm, chosen)), out)
        stats = analyse_file(out)
        over = stats.true_peak_dbtp - ceiling_dbtp
        off = target_lufs - stats.loudness_lufs
        reachable = abs(chosen.predicted_lufs - aim) <= 0.1 or chosen.gain_db == 0
        loudness_ok = (
            not math.isfinite(off)
            or abs(off) <= max(LOUDNESS_RETRY_LU, tolerance)
            or not reachable
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
