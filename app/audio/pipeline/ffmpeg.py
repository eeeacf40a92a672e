"""ffmpeg plumbing: decode files to raw PCM, encode the playout MP3, probe containers.

Encoding: every MP3 written (playout file, master, preview) is 16-bit mono 44.1 kHz PCM
piped, as it is rendered, into one ffmpeg with ``ENCODE_ARGS`` (``_encode``): LAME V2, no
ID3, Xing/LAME header (gapless), bit-exact muxing, so the same PCM always gives the same
file. The bytes are exactly those of pydub's ``AudioSegment.export(format="mp3",
codec="libmp3lame", parameters=EXPORT_PARAMETERS)``, which we used before (a test
compares them); but pydub first writes the whole programme as a WAV temp file (~5.3 MB
per minute) and its export needs the rendered programme whole in memory (~80 MB for 15
minutes), while the pipe lets LAME encode on one core while the limiter renders the next
seconds on the other.

pydub (``pydub.AudioSegment``, mono, 44.1 kHz, 16-bit) is no longer on any path of the app:
assembly streams its items (``programme``). ``_segment`` and ``AudioSegment`` stay for the
tests that compare our encoder with pydub's export; pydub is imported when they are first
used, not at start-up (``loaxa assemble`` imports only what assembly uses). pydub imports
``audioop``, which Python 3.13 removed: the ``audioop-lts`` package provides it.

Verifying while encoding (``_encode(decoded=...)``): ffmpeg's tee muxer writes the
encoder's packets both to the file and to a pipe into a decoding ffmpeg, so the MP3 is
decoded and measured as it is made, on the core LAME leaves free. The file's bytes are
the same as without the tee (a test compares them); the piped copy lacks the Xing/LAME
header, so its decode still holds the encoder's priming and padding, which
``gapless_trim`` reads from the file's header afterwards.

Where ffmpeg is called directly (decoding uploads, assembly items and MP3s to be
verified; probing uploads), each caller's module says why: pydub's ``from_file`` cannot
tell a cut file from a short one, reads the whole decode in several copies, starts one
ffmpeg per file and cannot resample properly. Decodes stream through a widened pipe
(``_pcm_chunks``), optionally in a background thread (``_prefetched``) so that decoding
overlaps our processing.

Reading files: every ffmpeg and ffprobe that reads a file (an upload, a stored file, a
template, a synthesis) gets its input from ``input_args``: only the ``file`` protocol, and
the input format forced to the container named by the file's own first bytes
(``sniff_container``, with puremagic) among an allow-list of audio containers. ffmpeg's
own probing would take a text file for an HLS or DASH playlist, an SDP session or a
concat list and open whatever it names (another station's audio, by its store path); an
image or video container is no audio. Those are refused (``NotAudio``, saying what the
file is) before ffmpeg sees them. Each child also runs under ``app.children``'s CPU and
memory limits.

The high-pass filter (``highpass_args``) runs inside those decoders, in C, on the source
before downmix and resampling: a 4th-order Butterworth (two ffmpeg ``highpass`` biquads with
the Butterworth Qs, in double precision), 24 dB per octave below the corner. Village horn
loudspeakers reproduce little under ~150-200 Hz; what they cannot play only eats amplifier
power and headroom, so it goes before anything is measured. It costs no extra pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import puremagic

from app.audio.pipeline.frames import CHUNK_FRAMES, RATE, S16
from app.children import child_limits


def __getattr__(name: str) -> Any:
    """``AudioSegment``, pydub's, imported on first use (see the module docstring)."""
    if name != "AudioSegment":
        raise AttributeError(name)
    with warnings.catch_warnings():
        # pydub imports the stdlib audioop (deprecated in 3.11/3.12; audioop-lts on 3.13+).
        warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
        from pydub import AudioSegment
    return AudioSegment

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"

EXPORT_PARAMETERS = (
    "-q:a", "2", "-map_metadata", "-1", "-id3v2_version", "0", "-write_xing", "1",
    "-fflags", "+bitexact",
)  # fmt: skip
# The same encode as one ffmpeg command line (for tools and tests that run ffmpeg directly).
ENCODE_ARGS = ("-c:a", "libmp3lame", *EXPORT_PARAMETERS, "-f", "mp3")
BUTTERWORTH_4_Q = (0.54119610, 1.30656296)  # the two biquads of a 4th-order Butterworth
PIPE_BYTES = 1 << 20  # ask Linux for 1 MiB pipes so ffmpeg runs ahead of our processing
FFPROBE_TIMEOUT_S = 120


class _DecodeError(RuntimeError):
    """ffmpeg could not decode a file."""


class NotAudio(ValueError):
    """A file that is not one of the accepted audio containers; ``str()`` says what it is."""


# The containers loaxa reads (puremagic's best match -> the ffmpeg demuxer forced): MP3,
# WAV, Ogg (Vorbis, Opus), FLAC, MP4/M4A (AAC; Safari's recorder), ADTS AAC, and WebM
# (what Chrome's and Firefox's MediaRecorder post; a Matroska demuxer reads it).
ALLOWED_CONTAINERS = {
    ".mp3": "mp3",
    ".mpga": "mp3",  # MPEG audio frames without an ID3 tag
    ".wav": "wav",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
    ".flac": "flac",
    ".m4a": "mov",
    ".mp4": "mov",
    ".f4a": "mov",
    ".aac": "aac",
    ".webm": "matroska",
}
# Text that ffmpeg would follow to other files or hosts, named for the refusal.
_TEXT_FORMATS = (
    (b"#EXTM3U", "a playlist (M3U/HLS)"),
    (b"#EXTINF", "a playlist (M3U)"),
    (b"[playlist]", "a playlist (PLS)"),
    (b"ffconcat", "an ffmpeg concat list"),
    (b"v=0", "a stream description (SDP)"),
)
_SNIFF_BYTES = 4096


def sniff_container(path: Path) -> str:
    """The ffmpeg demuxer for the file's container, from its own first bytes; NotAudio
    naming what it is when it is not one of ALLOWED_CONTAINERS."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head:
        raise NotAudio("the file is empty")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, what in _TEXT_FORMATS:
        if text.startswith(magic):
            raise NotAudio(f"{what}, not audio: only the uploaded file itself is read")
    if b"<MPD" in head or b"urn:mpeg:dash" in head:
        raise NotAudio("a DASH manifest, not audio: only the uploaded file itself is read")
    try:
        matches = puremagic.magic_string(head)
    except puremagic.PureError:
        matches = []
    if not matches:
        raise NotAudio("not an audio file (format not recognised)")
    best = matches[0]
    container = ALLOWED_CONTAINERS.get(best.extension.lower())
    if container is not None:
        return container
    kind = (best.mime_type or "").split("/")[0]
    what = {"image": "an image", "video": "a video", "text": "text"}.get(kind, "a file")
    name = best.extension.lstrip(".").upper() or best.name
    raise NotAudio(
        f"not an audio file: {what} ({name}); send MP3, WAV, OGG/Opus, FLAC, M4A/AAC or WebM"
    )


def input_args(path: Path, container: str | None = None) -> list[str]:
    """ffmpeg/ffprobe input options that read exactly this one local file: the ``file``
    protocol alone, the demuxer forced (``container``, else sniffed from the file's bytes;
    NotAudio when it is not an accepted audio container)."""
    demuxer = container or sniff_container(Path(path))
    return ["-protocol_whitelist", "file", "-f", demuxer, "-i", f"file:{Path(path).resolve()}"]


def _err_text(err: IO[bytes]) -> str:
    """The tail of ffmpeg's stderr, captured in a temp file."""
    err.seek(0)
    return err.read()[-2000:].decode("utf-8", "replace").strip()


def highpass_args(hz: float) -> list[str]:
    """ffmpeg output options for the high-pass filter at hz (none when hz is 0)."""
    if hz <= 0:
        return []
    stages = [f"highpass=f={hz:g}:t=q:w={q}:r=f64" for q in BUTTERWORTH_4_Q]
    return ["-af", ",".join(stages)]


def _pcm_chunks(
    path: Path, fmt: str, *, strict: bool, highpass_hz: float = 0.0, container: str | None = None
) -> Generator[bytes, None, None]:
    """Decode path to mono 44.1 kHz raw PCM (s16le or f32le), yielding ~10 s chunks
    (``container``: the demuxer, when already known; else sniffed)."""
    try:
        source = input_args(path, container)
    except OSError as exc:  # missing or unreadable: the same failure as ffmpeg's own
        raise _DecodeError(str(exc)) from exc
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", *(["-xerror"] if strict else [])]
    cmd += [*source, "-map", "0:a:0", *highpass_args(highpass_hz)]
    cmd += ["-ac", "1", "-ar", str(RATE), "-f", fmt, "pipe:1"]
    chunk_bytes = CHUNK_FRAMES * (2 if fmt == "s16le" else 4)
    with tempfile.TemporaryFile() as err:
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, preexec_fn=child_limits()
        ) as proc:
            assert proc.stdout is not None
            _widen_pipe(proc.stdout)
            finished = False
            try:
                while chunk := proc.stdout.read(chunk_bytes):
                    yield chunk
                finished = True
            finally:
                if not finished:
                    proc.kill()  # the consumer stopped early or failed
        if proc.returncode:
            raise _DecodeError(_err_text(err) or f"ffmpeg exited with {proc.returncode}")


def _prefetched(chunks: Generator[bytes, None, None], depth: int = 8) -> Iterator[bytes]:
    """Run a chunk iterator in a background thread, so decoding overlaps our processing."""
    q: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()

    def put(item: tuple[bytes | None, BaseException | None]) -> bool:
        while not cancelled.is_set():
            with contextlib.suppress(queue.Full):
                q.put(item, timeout=0.05)
                return True
        return False

    def pump() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((None, None))
        except BaseException as exc:
            put((None, exc))
        finally:
            chunks.close()  # stops ffmpeg if we quit early

    thread = threading.Thread(target=pump, name="pcm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            chunk, exc = q.get()
            if exc is not None:
                raise exc
            if chunk is None:
                return
            yield chunk
    finally:
        cancelled.set()
        thread.join()


def _widen_pipe(pipe: IO[bytes]) -> None:
    """Grow a pipe's kernel buffer (Linux) so producer and consumer overlap; best effort."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _decode_to_buffer(
    path: Path,
    fmt: str,
    *,
    strict: bool,
    max_frames: int,
    highpass_hz: float = 0.0,
    container: str | None = None,
) -> bytearray:
    """Decode a whole file into one growing buffer; stop with _TooLong past max_frames."""
    width = 2 if fmt == "s16le" else 4
    buf = bytearray()
    chunks = _pcm_chunks(path, fmt, strict=strict, highpass_hz=highpass_hz, container=container)
    for chunk in chunks:
        buf += chunk
        if len(buf) > max_frames * width:
            chunks.close()
            raise _TooLong(len(buf) // width)
    return buf


class _TooLong(Exception):
    """Decoding went past the frame cap."""

    def __init__(self, frames: int) -> None:
        super().__init__(frames)
        self.frames = frames


def _segment(data: bytes | bytearray) -> Any:
    """Wrap mono 44.1 kHz 16-bit PCM as a pydub AudioSegment (no copy)."""
    segment_class = __getattr__("AudioSegment")
    return segment_class(data=data, sample_width=2, frame_rate=RATE, channels=1)


def _encode(
    chunks: Iterable[np.ndarray], out: Path, *, decoded: Callable[[bytes], None] | None = None
) -> None:
    """Encode int16 mono 44.1 kHz chunks, piped as they come, to the playout MP3 at out
    (replaced). On failure out is removed and RuntimeError names ffmpeg's error.

    decoded: also decode the MP3 while it is being made, and call decoded() from another
    thread with every CHUNK_FRAMES of it (mono 44.1 kHz f32le, in order, the last chunk
    shorter). The encoder's tee muxer writes its packets twice, to out and to a pipe into
    a decoding ffmpeg, so verifying a file costs no pass of its own after the encode. The
    piped copy has no Xing/LAME header (a pipe cannot be rewound to fill it in), so the
    stream it decodes to also holds the encoder's priming and padding: ``gapless_trim``
    says how much of each, from the header of out."""
    Encoder(out, decoded=decoded).encode(chunks)


class Encoder:
    """An ffmpeg encoding to the playout MP3 at out (see ``_encode``), started before its
    audio is ready: ffmpeg takes ~80 ms to start (it loads some 200 libraries), which the
    caller spends on its own work meanwhile. Use it once: ``encode`` or ``cancel``."""

    def __init__(self, out: Path, *, decoded: Callable[[bytes], None] | None = None) -> None:
        self.out = Path(out)
        cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-f", "s16le"]
        cmd += ["-ar", str(RATE), "-ac", "1", "-i", "pipe:0"]
        if decoded is None:
            cmd += [*ENCODE_ARGS, "-y", str(out)]
        else:
            # The same encode; the file muxer gets the options ENCODE_ARGS gives it (a test
            # checks the bytes are the same), the piped copy only needs raw MP3 frames.
            options = "f=mp3:id3v2_version=0:write_xing=1:fflags=+bitexact"
            cmd += ["-map", "0:a", "-c:a", "libmp3lame", "-q:a", "2", "-map_metadata", "-1"]
            cmd += ["-fflags", "+bitexact", "-f", "tee", "-y"]
            cmd += [f"[{options}]{_tee_escaped(str(out))}|[f=mp3:id3v2_version=0]pipe:1"]
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  (lives until encode or cancel)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stderr=self.err,
            stdout=subprocess.PIPE if decoded is not None else None, preexec_fn=child_limits(),
        )  # fmt: skip
        assert self.proc.stdin is not None
        _widen_pipe(self.proc.stdin)
        self.reader = _Decoding(self.proc, decoded) if decoded is not None else None
        self.made = False

    def encode(self, chunks: Iterable[np.ndarray]) -> None:
        """Feed the audio, wait for the file (and the decode); raise what went wrong."""
        proc, stdin = self.proc, self.proc.stdin
        assert stdin is not None
        try:
            try:
                for chunk in chunks:
                    stdin.write(np.ascontiguousarray(chunk, dtype=S16).tobytes())
                stdin.close()
            except BrokenPipeError:  # ffmpeg stopped early: its exit status and stderr say why
                with contextlib.suppress(OSError):
                    stdin.close()
            returncode = proc.wait()
            if self.reader is not None:
                self.reader.finish()
        except BaseException:
            self.cancel()
            raise
        if returncode:
            message = _err_text(self.err)
            self.cancel()
            raise RuntimeError(f"ffmpeg MP3 encode failed: {message}")
        self.err.close()
        self.made = True

    def cancel(self) -> None:
        """Stop the encode (and its decode) and remove what it wrote; nothing once the file
        has been made."""
        if self.made:
            return
        self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        if self.reader is not None:
            self.reader.abort()
        self.out.unlink(missing_ok=True)
        self.err.close()


def _tee_escaped(name: str) -> str:
    """A file name as the tee muxer reads it (av_get_token: backslash escapes)."""
    return "".join("\\" + c if c in "\\'|[]" else c for c in name)


class _Decoding:
    """A decoding ffmpeg fed by an encoder's stdout, and the thread that reads it."""

    def __init__(self, encoder: subprocess.Popen[bytes], decoded: Callable[[bytes], None]) -> None:
        assert encoder.stdout is not None
        cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-f", "mp3", "-i", "pipe:0"]
        cmd += ["-ac", "1", "-ar", str(RATE), "-f", "f32le", "pipe:1"]
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  (lives until encode or cancel)
        self.proc = subprocess.Popen(
            cmd, stdin=encoder.stdout, stdout=subprocess.PIPE, stderr=self.err,
            preexec_fn=child_limits(),
        )  # fmt: skip
        _widen_pipe(encoder.stdout)  # LAME may run ahead of the measuring by a minute or so
        encoder.stdout.close()  # the decoder holds the pipe now; EOF reaches it when ours closes
        _yield_to_encoder(self.proc.pid)
        assert self.proc.stdout is not None
        _widen_pipe(self.proc.stdout)
        self.decoded = decoded
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, name="mp3-verify", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        _yield_to_encoder(threading.get_native_id())
        try:
            while chunk := self.proc.stdout.read(CHUNK_FRAMES * 4):
                self.decoded(chunk)
        except BaseException as exc:  # re-raised in finish(), on the encoding thread
            self.error = exc
            self.proc.kill()
            with contextlib.suppress(OSError):
                self.proc.stdout.read()  # drain, so that nothing upstream blocks

    def finish(self) -> None:
        """Wait for the decode to end; raise what went wrong in it."""
        self.thread.join()
        if self.proc.wait() and self.error is None:
            self.error = RuntimeError(f"ffmpeg could not decode its own MP3: {_err_text(self.err)}")
        self._close()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Stop the decode (the encode failed)."""
        self.proc.kill()
        self.proc.wait()
        self.thread.join()
        self._close()

    def _close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.err.close()


VERIFY_NICENESS = 10


def _yield_to_encoder(task_id: int) -> None:
    """Lower the priority of a process or (on Linux) a thread of the verification: LAME is
    the one step that cannot be split, so when the two cores are short the decode and the
    measuring of its output wait, not the encoder; they catch up from the pipes' buffers
    (a minute of MP3) when it is done. Best effort: lowering one's priority is allowed."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, task_id, VERIFY_NICENESS)


def gapless_trim(path: Path) -> tuple[int, int] | None:
    """(frames at the start, frames at the end) that a decoder drops from the MP3 at path,
    as its LAME header says (encoder delay + the decoder's 529; padding - 529), or None when
    the file has no such header. What ffmpeg's own demuxer does when it reads the file."""
    with open(path, "rb") as f:
        head = f.read(4096)
    # ffmpeg's muxer writes the header into the first frame: "Xing" (VBR) or "Info" (CBR)
    # after the side information, then its LAME extension 120 bytes on.
    for tag in (b"Xing", b"Info"):
        at = head.find(tag, 0, 64)
        if at >= 0 and len(head) >= at + 144:
            packed = int.from_bytes(head[at + 141 : at + 144], "big")
            delay, padding = packed >> 12, packed & 0xFFF
            if padding < _DECODER_DELAY:
                return None
            return delay + _DECODER_DELAY, padding - _DECODER_DELAY
    return None


_DECODER_DELAY = 529  # samples an MP3 decoder lags its input (528 + 1, as LAME counts)


def _ffprobe(path: Path, container: str) -> tuple[dict, str] | None:
    """ffprobe's JSON and warnings for path read as `container` (``input_args``), or None
    if ffprobe cannot read it."""
    cmd = [FFPROBE, "-v", "warning", "-hide_banner", "-print_format", "json"]
    cmd += ["-show_format", "-show_streams", *input_args(path, container)]
    proc = subprocess.run(
        cmd, capture_output=True, timeout=FFPROBE_TIMEOUT_S, check=False, preexec_fn=child_limits()
    )
    if proc.returncode:
        return None
    return json.loads(proc.stdout or b"{}"), proc.stderr.decode("utf-8", "replace")
