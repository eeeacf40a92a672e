"""The listening copy: a light file for people to play on a phone, made from a playout file.

* Format: AAC-LC, mono, in MP4 (``.m4a``, ``audio/mp4``), with the index at the front
  (``+faststart``) so that a player starts before the whole file has arrived. AAC-LC in MP4
  is the one compressed format that every phone browser plays natively: Safari on every
  iPhone (AAC is Apple's own format), Chromium and Firefox everywhere. Opus would sound
  better at these bitrates, but Safari plays it only from iOS 17 on (and in WebM only from
  iOS 18.4), and commune staff keep their phones for years.
* Size: at most LISTEN_SHARE (a quarter) of the playout file. The bitrate is chosen from the
  playout file's own (size over length): 90 % of a quarter of it, at most LISTEN_MAX_BPS;
  speech at LAME V2 (~100 kbit/s) gets ~22 kbit/s. Under 24 kbit/s the copy is sampled at
  16 kHz (AAC spends its bits on the 0-8 kHz band, where speech is), else at 22.05 kHz.
  A copy that still comes out over the share is made once more at the bitrate that fits,
  then given up (``ListenCopyTooLarge``): people play the full file meanwhile.
* Length: the encoder's priming is written into the MP4 edit list, so that the copy decodes
  exactly as long as its source (within one AAC frame; a test checks 50 ms).
* The playout file is what the loudspeakers play; this copy is never used for playout.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.audio.pipeline.ffmpeg import FFMPEG, _err_text, input_args
from app.children import child_limits

LISTEN_SHARE = 0.25  # the copy is at most this share of the playout file's size
LISTEN_MAX_BPS = 32_000
LISTEN_MIN_BPS = 8_000
WIDE_BAND_MIN_BPS = 24_000  # from this bitrate up the copy keeps 0-11 kHz, else 0-8 kHz
LISTEN_EXT = "m4a"
LISTEN_MEDIA_TYPE = "audio/mp4"


class ListenCopyTooLarge(RuntimeError):
    """No bitrate made a copy small enough."""


@dataclass(frozen=True)
class ListenCopy:
    path: Path
    size_bytes: int
    bitrate: int  # bit/s asked of the encoder
    sample_rate: int


def listen_bitrate(playout_bytes: int, duration_ms: int) -> int:
    """The bitrate (bit/s) the copy of a playout file of this size and length is made at."""
    playout_bps = playout_bytes * 8 * 1000 / max(duration_ms, 1)
    wanted = int(0.9 * LISTEN_SHARE * playout_bps) // 1000 * 1000
    return max(LISTEN_MIN_BPS, min(LISTEN_MAX_BPS, wanted))


def _encode(src: Path, out: Path, bitrate: int) -> int:
    """One AAC encode of src to out; the sample rate used."""
    rate = 22_050 if bitrate >= WIDE_BAND_MIN_BPS else 16_000
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", *input_args(src, "mp3")]
    cmd += ["-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-c:a", "aac", "-b:a", str(bitrate)]
    cmd += ["-map_metadata", "-1", "-fflags", "+bitexact", "-movflags", "+faststart"]
    cmd += ["-f", "mp4", "-y", str(out)]
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=err, check=False, preexec_fn=child_limits()
        )
        if done.returncode:
            out.unlink(missing_ok=True)
            raise RuntimeError(f"ffmpeg AAC encode failed: {_err_text(err)}")
    return rate


def make_listen_copy(src: Path, out: Path, *, duration_ms: int) -> ListenCopy:
    """Encode the listening copy of the playout file src (duration_ms long) to out."""
    limit = LISTEN_SHARE * Path(src).stat().st_size
    bitrate = listen_bitrate(Path(src).stat().st_size, duration_ms)
    for _ in range(2):
        rate = _encode(Path(src), Path(out), bitrate)
        size = Path(out).stat().st_size
        if size <= limit:
            return ListenCopy(Path(out), size, bitrate, rate)
        smaller = int(bitrate * limit / size * 0.95) // 1000 * 1000
        if smaller < LISTEN_MIN_BPS:
            break
        bitrate = smaller
    Path(out).unlink(missing_ok=True)
    raise ListenCopyTooLarge(f"no listening copy of {src.name} fits in a quarter of its size")
