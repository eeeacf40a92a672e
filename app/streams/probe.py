""" "Nghe thử": listen to a stream from the server for a moment and say what it is.

Bounded on purpose (it fetches what an admin typed): http(s) only, at most PROBE_SECONDS
in all and PROBE_BYTES of audio, no more than MAX_REDIRECTS redirects. An HLS playlist
(``.m3u8``, or served as ``mpegurl``) is followed to its first media segment. ffprobe
reads what came and names the codec and bitrate; a failure is named in words (`detail`)
and by a short code (`error`: unreachable, timeout, http-status, not-audio, too-slow).
"""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import urljoin, urlsplit

import httpx

from app.streams.schemas import ProbeOut

PROBE_SECONDS = 6.0
PROBE_BYTES = 300 * 1024
MIN_BYTES = 16 * 1024
MAX_REDIRECTS = 3
HLS_TYPES = ("mpegurl", "x-mpegurl", "vnd.apple.mpegurl")


class _Failed(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error, self.detail = error, detail


def _fetch(
    client: httpx.Client, url: str, *, deadline: float, limit: int
) -> tuple[bytes, str, int | None]:
    """Up to `limit` bytes of `url` before `deadline`; (bytes, content type, the bitrate an
    Icecast or Shoutcast server announces in `icy-br`, in bit/s)."""
    try:
        with client.stream("GET", url) as r:
            if r.status_code >= 400:
                raise _Failed("http-status", f"the server answered HTTP {r.status_code}")
            kind = r.headers.get("content-type", "").lower()
            announced = _int(r.headers.get("icy-br", "").split(",")[0])
            got = bytearray()
            for chunk in r.iter_bytes():
                got += chunk
                if len(got) >= limit or time.monotonic() >= deadline:
                    break
            return bytes(got[:limit]), kind, announced * 1000 if announced else None
    except httpx.TimeoutException as exc:
        raise _Failed("timeout", f"no answer within {PROBE_SECONDS:.0f} s") from exc
    except httpx.TooManyRedirects as exc:
        raise _Failed("unreachable", f"more than {MAX_REDIRECTS} redirects") from exc
    except httpx.HTTPError as exc:
        raise _Failed("unreachable", f"could not connect: {exc}") from exc


def _is_hls(url: str, kind: str, body: bytes) -> bool:
    return (
        urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))
        or any(t in kind for t in HLS_TYPES)
        or body.lstrip().startswith(b"#EXTM3U")
    )


def _first_uri(playlist: bytes, base: str) -> tuple[str, bool]:
    """The playlist's first URI and whether it is a variant (another playlist)."""
    variant = False
    for raw in playlist.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-STREAM-INF"):
            variant = True
        elif line and not line.startswith("#"):
            return urljoin(base, line), variant
    raise _Failed("not-audio", "the HLS playlist lists no media")


def _ffprobe(data: bytes) -> dict[str, object]:
    try:
        out = subprocess.run(
            [
                "ffprobe", "-v", "error", "-show_entries",
                "stream=codec_name,bit_rate,sample_rate,channels:format=bit_rate,format_name",
                "-of", "json", "-i", "pipe:0",
            ],
            input=data,
            capture_output=True,
            timeout=10,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise _Failed("not-audio", "the audio could not be read in time") from exc
    info = json.loads(out.stdout or b"{}")
    streams = [s for s in info.get("streams", []) if s.get("codec_name")]
    if not streams:
        raise _Failed("not-audio", "what the server sent is not audio that can be played")
    stream = streams[0]
    fmt = info.get("format") or {}
    return {"stream": stream, "format": fmt}


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def probe(url: str) -> ProbeOut:
    """What the stream at `url` is (codec, bitrate), or why it cannot be heard."""
    deadline = time.monotonic() + PROBE_SECONDS
    timeout = httpx.Timeout(PROBE_SECONDS / 2, connect=PROBE_SECONDS / 2)
    hls = False
    read = 0
    try:
        with httpx.Client(
            timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS
        ) as client:
            body, kind, icy_br = _fetch(client, url, deadline=deadline, limit=PROBE_BYTES)
            read += len(body)
            if _is_hls(url, kind, body):
                hls = True
                uri, variant = _first_uri(body, url)
                if variant:
                    body, _, _ = _fetch(client, uri, deadline=deadline, limit=PROBE_BYTES)
                    read += len(body)
                    uri, _variant = _first_uri(body, uri)
                body, kind, _ = _fetch(client, uri, deadline=deadline, limit=PROBE_BYTES)
                read += len(body)
            if len(body) < MIN_BYTES and not hls:
                raise _Failed("too-slow", f"only {len(body)} bytes came in {PROBE_SECONDS:.0f} s")
            found = _ffprobe(body)
    except _Failed as exc:
        return ProbeOut(ok=False, hls=hls, error=exc.error, detail=exc.detail, bytes_read=read)
    stream, fmt = found["stream"], found["format"]
    assert isinstance(stream, dict) and isinstance(fmt, dict)
    bits = _int(stream.get("bit_rate")) or _int(fmt.get("bit_rate")) or icy_br
    return ProbeOut(
        ok=True,
        codec=str(stream.get("codec_name")),
        bitrate_kbps=round(bits / 1000) if bits else None,
        sample_rate=_int(stream.get("sample_rate")),
        channels=_int(stream.get("channels")),
        hls=hls,
        bytes_read=read,
    )


_WORDS_VI = {
    "unreachable": "không kết nối được tới máy chủ phát",
    "timeout": "máy chủ phát không trả lời",
    "http-status": "máy chủ phát báo lỗi",
    "not-audio": "nội dung nhận được không phải âm thanh",
    "too-slow": "tín hiệu về quá chậm",
}


def words_vi(result: ProbeOut) -> str:
    """A probe's failure in Vietnamese words, for staff."""
    words = _WORDS_VI.get(result.error or "", "không nghe được")
    if result.error == "http-status" and result.detail:
        words += " (" + result.detail.removeprefix("the server answered ") + ")"
    return words
