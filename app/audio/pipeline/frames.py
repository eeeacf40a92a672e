"""Time arithmetic and the PCM formats every part of the pipeline shares.

Durations are counted in PCM frames of the audio as ffmpeg decodes it to 44.1 kHz mono,
honouring the gapless header. ``frames_to_ms`` and ``ms_to_frames`` round half up.
``IngestResult.duration_ms`` and ``assemble`` use the same decoder, so they agree exactly.
"""

from __future__ import annotations

import numpy as np

from app.durations import describe_ms  # noqa: F401  (re-exported: the pipeline's messages)

RATE = 44_100
SUB_BLOCK = RATE // 10  # 100 ms: the gating step; four make one 400 ms block
CHUNK_FRAMES = SUB_BLOCK * 100  # 10 s of audio per read / filter / write step
ENV_BLOCK = 21  # ~0.48 ms: the limiter's time step; divides SUB_BLOCK (210 per 100 ms)
S16 = np.dtype("<i2")
F32 = np.dtype("<f4")

DURATION_TOLERANCE_MS = 50  # how far a master may be off the length planned from rounded ms
MP3_FRAME = 1152  # samples per MP3 frame: how far a decoded MP3 may be off the PCM encoded
EDGE_FADE_FRAMES = 220  # 5 ms de-click ramp at every item edge that is not crossfaded


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
