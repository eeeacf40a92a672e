"""`loaxa-agent live`: feed a live session from this PC's line or microphone input.

The session's source URL comes from whoever opened it (POST /api/v1/live answers
``source``: ``icecast://<username>:<password>@<hub host>:<port><mount>``). ffmpeg captures
the input (PulseAudio or ALSA on Linux, DirectShow on Windows, AVFoundation on macOS; any
ffmpeg input format with ``--input-format``) and sends MP3 64 kbit/s mono to the mount as
it comes. It stops on Ctrl+C, or when the hub refuses it (the session has ended).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from urllib.parse import urlsplit

DEFAULT_INPUTS = {
    "linux": ("pulse", "default"),
    "win32": ("dshow", ""),
    "darwin": ("avfoundation", ":0"),
}


def default_input() -> tuple[str, str]:
    """(ffmpeg input format, device) for this system's default recording input."""
    for prefix, found in DEFAULT_INPUTS.items():
        if sys.platform.startswith(prefix):
            return found
    return ("alsa", "default")


def command(source: str, *, input_format: str, device: str, ffmpeg: str = "ffmpeg") -> list[str]:
    """The ffmpeg command line that feeds `source` from the input."""
    if input_format == "dshow" and not device.startswith("audio="):
        device = f"audio={device}" if device else "audio=default"
    realtime = ["-re"] if input_format == "lavfi" else []  # a generated test input
    return [
        ffmpeg, "-nostdin", "-v", "error", *realtime, "-f", input_format, "-i", device,
        "-vn", "-ac", "1", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "64k",
        "-write_xing", "0", "-id3v2_version", "0", "-flush_packets", "1",
        "-content_type", "audio/mpeg", "-f", "mp3", source,
    ]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    fmt, device = default_input()
    p = argparse.ArgumentParser(
        prog="loaxa-agent live",
        description="Feed a live session of the station's hub from this PC's input.",
    )
    p.add_argument(
        "--source",
        required=True,
        help="the session's source URL: icecast://USER:PASSWORD@HOST:PORT/MOUNT",
    )
    p.add_argument("--input-format", default=fmt, help=f"ffmpeg input format (default: {fmt})")
    p.add_argument("--input", default=device, help=f"the input device (default: {device!r})")
    p.add_argument("--ffmpeg", default="ffmpeg", help="the ffmpeg program")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    parts = urlsplit(args.source)
    if parts.scheme != "icecast" or not parts.username or not parts.password or not parts.path:
        print(
            "loaxa-agent live: --source must be icecast://USER:PASSWORD@HOST:PORT/MOUNT",
            file=sys.stderr,
        )
        return 2
    if shutil.which(args.ffmpeg) is None:
        print(f"loaxa-agent live: {args.ffmpeg} is not installed", file=sys.stderr)
        return 2
    print(
        f"loaxa-agent live: sending {args.input_format} {args.input!r} to {parts.path}", flush=True
    )
    process = subprocess.Popen(
        command(args.source, input_format=args.input_format, device=args.input, ffmpeg=args.ffmpeg)
    )

    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:  # a service manager stopping us
        stopping.append(signum)
        process.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        return 0
    if stopping:
        return 0
    if code != 0:
        print(
            "loaxa-agent live: the hub refused or dropped the feed (wrong password, or the "
            "session has ended)",
            file=sys.stderr,
        )
    return 0 if code == 0 else 1
