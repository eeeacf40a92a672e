"""Text-to-speech engines: gTTS (Google Translate's voice), espeak-ng, and falling back.

Every engine turns one chunk of normalised Vietnamese (see ``normalize.py``) into one audio
file: gTTS writes MP3 (24 kHz mono, as Google sends it), espeak-ng writes WAV (22.05 kHz mono).
``synthesis.py`` decodes and joins the chunks; nothing here resamples or checks loudness.

Failures are ``SynthesisFailed`` with a reason fit for a log line and ``retryable`` telling
whether trying again later may help (network down, timeout, HTTP 429, HTTP 5xx).

gTTS endpoint override: ``GTTSEngine(endpoint=...)`` makes gTTS post to another URL (a local
stub in tests, or a relay). It is done by ``_EndpointGTTS``, a subclass of ``gtts.gTTS`` that
lets gTTS build its requests as usual (form body, headers, its ``tld`` URL) and then only
re-targets the URL of each prepared request; sending, status handling and the parsing of
the batchexecute response are gTTS's own code. The override is per instance: nothing global
(no class attribute, no environment variable) is changed, so concurrent engines pointing at
different endpoints do not interfere. An endpoint without a path (``http://127.0.0.1:8123``)
gets gTTS's own path (``/_/TranslateWebserverUi/data/batchexecute``) appended.

After gTTS stops answering, ``auto`` skips it for a cool-down (``GTTSCooldown``): the first
request pays for the retries (three tries of ``timeout_s`` and the back-off, ~31 s with the
defaults), the ones after it go straight to espeak-ng and say why.

Two gTTS behaviours callers should know: gTTS sends with the proxies of the environment
(``urllib.request.getproxies()``, which ignores ``NO_PROXY``), so a loopback endpoint needs
no ``HTTP(S)_PROXY`` set; and gTTS sends with TLS verification switched off.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from gtts import gTTS, gTTSError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from app import clock
from app.children import child_limits

__all__ = [
    "DEFAULT_GTTS_COOLDOWN_S",
    "GTTS_COOLDOWN",
    "GTTS_MAX_CHARS",
    "GTTS_PATH",
    "AutoEngine",
    "EspeakEngine",
    "GTTSCooldown",
    "GTTSEngine",
    "SynthesisFailed",
    "Synthesizer",
    "get_engine",
]

log = logging.getLogger("loaxa.tts")

GTTS_MAX_CHARS = gTTS.GOOGLE_TTS_MAX_CHARS  # 100: longer text is split by gTTS itself
GTTS_PATH = "/_/TranslateWebserverUi/data/batchexecute"
ESPEAK_MAX_CHARS = 600  # espeak-ng reads whole sentences; only very long ones are cut
ENGINE_NAMES = ("auto", "gtts", "espeak")
DEFAULT_GTTS_COOLDOWN_S = 300.0


class SynthesisFailed(RuntimeError):
    """An engine could not produce audio; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Synthesizer(Protocol):
    """One text-to-speech engine: writes one chunk of text as one audio file."""

    name: str  # "gtts" | "espeak"
    voice: str  # gTTS language ("vi") or espeak-ng voice ("vi")
    max_chars: int  # the longest chunk the engine should be given
    suffix: str  # extension of the file synthesize_chunk writes (".mp3" / ".wav")

    def synthesize_chunk(self, text: str, out: Path) -> None:
        """Write ``text`` read aloud to ``out``; raise SynthesisFailed on failure."""
        ...


# --- gTTS ------------------------------------------------------------------------------------


def _endpoint_url(endpoint: str) -> str:
    """The full URL to post to: gTTS's own path is appended when the endpoint has none."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"gTTS endpoint must be an http(s) URL, got {endpoint!r}")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + GTTS_PATH
    return endpoint


class _EndpointGTTS(gTTS):
    """gTTS whose prepared requests go to ``endpoint``; request and response handling unchanged."""

    def __init__(self, *args: Any, endpoint: str, **kwargs: Any) -> None:
        if not callable(getattr(gTTS, "_prepare_requests", None)):  # gTTS internals changed
            raise RuntimeError("this gTTS version cannot be pointed at another endpoint")
        super().__init__(*args, **kwargs)
        self.endpoint = endpoint

    def _prepare_requests(self) -> list[requests.PreparedRequest]:
        """gTTS's own prepared requests, re-targeted at the endpoint."""
        prepared: list[requests.PreparedRequest] = super()._prepare_requests()
        for request in prepared:
            request.prepare_url(self.endpoint, None)
        return prepared


def _request_failure(cause: BaseException | None, where: str, timeout_s: float) -> SynthesisFailed:
    """SynthesisFailed for a request that got no HTTP answer (network down, timeout...)."""
    if isinstance(cause, requests.Timeout):
        return SynthesisFailed(
            f"gTTS: no answer from {where} within {timeout_s:g} s (timeout)", retryable=True
        )
    if isinstance(cause, requests.ConnectionError):
        return SynthesisFailed(
            f"gTTS: cannot reach {where} (network down or connection closed): {cause}",
            retryable=True,
        )
    return SynthesisFailed(f"gTTS: request to {where} failed: {cause}", retryable=False)


def _gtts_failure(exc: gTTSError, where: str, timeout_s: float) -> SynthesisFailed:
    """Translate gTTS's error (it keeps the response, and the requests error as context)."""
    response = exc.rsp
    if response is None:
        return _request_failure(exc.__cause__ or exc.__context__, where, timeout_s)
    status = response.status_code
    if status == 429:
        return SynthesisFailed(
            f"gTTS: HTTP 429 Too Many Requests from {where} (rate limited)", retryable=True
        )
    if status >= 500:
        return SynthesisFailed(
            f"gTTS: HTTP {status} {response.reason} from {where} (server error)", retryable=True
        )
    if status == 200:
        return SynthesisFailed(f"gTTS: the answer from {where} held no audio", retryable=False)
    return SynthesisFailed(f"gTTS: HTTP {status} {response.reason} from {where}", retryable=False)


class GTTSEngine:
    """Google Translate's Vietnamese voice through the gTTS library (needs the internet)."""

    name = "gtts"
    suffix = ".mp3"
    max_chars = GTTS_MAX_CHARS

    def __init__(
        self,
        *,
        lang: str = "vi",
        tld: str = "com",
        timeout_s: float = 10.0,
        endpoint: str | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.voice = lang
        self.tld = tld
        self.timeout_s = timeout_s
        self.endpoint = _endpoint_url(endpoint) if endpoint else None

    @property
    def url(self) -> str:
        """The URL gTTS posts to."""
        return self.endpoint or f"https://translate.google.{self.tld}{GTTS_PATH}"

    @property
    def sound_options(self) -> dict[str, object]:
        """What, besides the text, changes the audio Google sends (part of the cache key)."""
        return {"lang": self.voice, "tld": self.tld, "slow": False}

    def make_tts(self, text: str) -> gTTS:
        """The gTTS object for one chunk (gTTS's text pre-processors are off: ours ran)."""
        options: dict[str, Any] = {
            "lang": self.voice,
            "tld": self.tld,
            "timeout": self.timeout_s,
            "pre_processor_funcs": [],
        }
        if self.endpoint:
            return _EndpointGTTS(text, endpoint=self.endpoint, **options)
        return gTTS(text, **options)

    def synthesize_chunk(self, text: str, out: Path) -> None:
        """Write ``text`` as MP3 to ``out`` (one request per 100 characters)."""
        where = urlsplit(self.url).netloc
        buffer = io.BytesIO()
        try:
            self.make_tts(text).write_to_fp(buffer)
        except gTTSError as exc:
            raise _gtts_failure(exc, where, self.timeout_s) from exc
        except requests.RequestException as exc:
            raise _request_failure(exc, where, self.timeout_s) from exc
        except AssertionError as exc:  # gTTS asserts there is text to send
            raise SynthesisFailed(f"gTTS: nothing to read in {text!r}: {exc}") from exc
        except ValueError as exc:  # undecodable answer (base64, UTF-8) or unknown language
            raise SynthesisFailed(f"gTTS: unusable answer from {where}: {exc}") from exc
        if not buffer.getbuffer().nbytes:
            raise SynthesisFailed(f"gTTS: empty audio from {where}")
        out.write_bytes(buffer.getvalue())


# --- espeak-ng -------------------------------------------------------------------------------


class EspeakEngine:
    """espeak-ng's Vietnamese voice: local, robotic, always available (no network)."""

    name = "espeak"
    suffix = ".wav"
    max_chars = ESPEAK_MAX_CHARS

    def __init__(
        self,
        *,
        voice: str = "vi",
        rate_wpm: int = 150,
        timeout_s: float = 60.0,
        binary: str = "espeak-ng",
    ) -> None:
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.timeout_s = timeout_s
        self.binary = binary

    @property
    def sound_options(self) -> dict[str, object]:
        """What, besides the text, changes espeak-ng's audio (part of the cache key)."""
        return {"voice": self.voice, "rate_wpm": self.rate_wpm}

    def synthesize_chunk(self, text: str, out: Path) -> None:
        """Write ``text`` as WAV to ``out``; the text goes through stdin as UTF-8."""
        exe = shutil.which(self.binary)
        if exe is None:
            raise SynthesisFailed(f"espeak-ng is not installed ({self.binary!r} not on PATH)")
        command = [
            exe, "-v", self.voice, "-s", str(self.rate_wpm), "-b", "1", "-w", str(out), "--stdin",
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout_s,
                preexec_fn=child_limits(),
            )
        except subprocess.TimeoutExpired as exc:
            raise SynthesisFailed(f"espeak-ng took longer than {self.timeout_s:g} s") from exc
        except OSError as exc:
            raise SynthesisFailed(f"espeak-ng could not be started: {exc}") from exc
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip()
            raise SynthesisFailed(f"espeak-ng failed (exit {proc.returncode}): {detail}")
        if _wav_frames(out) == 0:
            raise SynthesisFailed(f"espeak-ng produced no audio (empty output) for {text!r}")


def _wav_frames(path: Path) -> int:
    """Frames in a WAV file; 0 when it is missing or unreadable."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes()
    except (OSError, EOFError, wave.Error):
        return 0


# --- Fallback --------------------------------------------------------------------------------


def _is_retryable(exc: BaseException) -> bool:
    """Whether tenacity should try gTTS again."""
    return isinstance(exc, SynthesisFailed) and exc.retryable


def _log_retry(state: RetryCallState) -> None:
    """Log each gTTS retry."""
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("gTTS attempt %d failed (%s); retrying in %.2f s", state.attempt_number, exc, wait)


@dataclass(frozen=True)
class _Outage:
    """gTTS at one URL failed at ``failed_at`` and is skipped until ``until``."""

    failed_at: datetime
    until: datetime
    reason: str


class GTTSCooldown:
    """A circuit breaker for gTTS: after it stops answering, skip it for a cool-down.

    Rules: a failure that says the service is not answering (a retryable one: network down,
    timeout, HTTP 429 or 5xx, after ``AutoEngine``'s retries) opens the breaker for that URL
    for ``cooldown_s``; an answer that is merely unusable (no audio, silence) does not, since
    the next script may fare better and costs no wait. While open, ``auto`` goes straight to
    espeak-ng. Once the cool-down is over gTTS is tried again: a success closes the breaker,
    another failure opens it for another cool-down. Time is ``app.clock.now()``, so tests move
    it. The state is per process (thread-safe: requests run in a thread pool): with several
    web workers each learns of an outage by itself, and pays the wait once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outages: dict[str, _Outage] = {}

    def failed(self, url: str, reason: str, *, cooldown_s: float) -> None:
        """Skip gTTS at ``url`` for ``cooldown_s`` from now (0 turns the breaker off)."""
        if cooldown_s <= 0:
            return
        now = clock.now()
        with self._lock:
            self._outages[url] = _Outage(now, now + timedelta(seconds=cooldown_s), reason)
        log.warning("gTTS skipped for %g s after a failure: %s", cooldown_s, reason)

    def succeeded(self, url: str) -> None:
        """gTTS at ``url`` answered: close the breaker."""
        with self._lock:
            self._outages.pop(url, None)

    def skip_reason(self, url: str, *, tz: tzinfo = UTC) -> str | None:
        """Why gTTS at ``url`` is skipped now (times in ``tz``), or None when it may be tried."""
        with self._lock:
            outage = self._outages.get(url)
        if outage is None or clock.now() >= outage.until:
            return None
        until, at = outage.until.astimezone(tz), outage.failed_at.astimezone(tz)
        return (
            f"gTTS skipped until {until:%H:%M} {until:%Z} after a failure at "
            f"{at:%H:%M} {at:%Z}: {outage.reason}"
        )

    def reset(self) -> None:
        """Forget every outage."""
        with self._lock:
            self._outages.clear()


# The process's breaker: every auto engine of this process shares what it learnt.
GTTS_COOLDOWN = GTTSCooldown()


class AutoEngine:
    """gTTS with retries, then espeak-ng for good: ``name``/``voice`` tell who is speaking now.

    Once gTTS has failed (after retries for retryable failures, at once for others) the engine
    stays on espeak-ng, so a caller that restarts its script on a switch gets one voice.
    ``synthesize_chunk`` returns the engine that wrote the file. A retryable failure opens
    ``breaker`` for ``cooldown_s``; an engine made while it is open starts on espeak-ng
    (``skipped``, with the reason in ``fallback_reason``) and never connects to gTTS.
    """

    def __init__(
        self,
        primary: GTTSEngine,
        fallback: EspeakEngine,
        *,
        attempts: int = 3,
        wait_min_s: float = 0.5,
        wait_max_s: float = 4.0,
        cooldown_s: float = DEFAULT_GTTS_COOLDOWN_S,
        breaker: GTTSCooldown | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.primary = primary
        self.fallback = fallback
        self.attempts = attempts
        self.wait_min_s = wait_min_s
        self.wait_max_s = wait_max_s
        self.cooldown_s = cooldown_s
        self.breaker = GTTS_COOLDOWN if breaker is None else breaker
        self.active: GTTSEngine | EspeakEngine = primary
        self.fallback_reason: str | None = None
        self.skipped = False
        skip = self.breaker.skip_reason(primary.url, tz=tz)
        if skip is not None:
            self.skipped = True
            self.fallback_reason = skip
            self.active = fallback
            log.info("using espeak-ng: %s", skip)

    @property
    def name(self) -> str:
        """Name of the engine now in use."""
        return self.active.name

    @property
    def voice(self) -> str:
        """Voice of the engine now in use."""
        return self.active.voice

    @property
    def max_chars(self) -> int:
        """Longest chunk for the engine now in use."""
        return self.active.max_chars

    @property
    def suffix(self) -> str:
        """File extension of the engine now in use."""
        return self.active.suffix

    @property
    def fell_back(self) -> bool:
        """Whether gTTS has been given up for espeak-ng."""
        return self.active is self.fallback

    def fall_back(self, reason: str) -> None:
        """Switch to espeak-ng for good, logging why (also for callers that reject gTTS audio)."""
        if self.fell_back:
            return
        self.fallback_reason = reason
        self.active = self.fallback
        log.warning("falling back from gTTS to espeak-ng: %s", reason)

    def _retrying(self) -> Retrying:
        """tenacity policy: retry retryable failures with exponential backoff."""
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(
                multiplier=self.wait_min_s, min=self.wait_min_s, max=self.wait_max_s
            ),
            retry=retry_if_exception(_is_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )

    def synthesize_chunk(self, text: str, out: Path) -> GTTSEngine | EspeakEngine:
        """Write ``text`` to ``out`` with gTTS, or espeak-ng once gTTS has failed."""
        if self.active is self.primary:
            try:
                for attempt in self._retrying():
                    with attempt:
                        self.primary.synthesize_chunk(text, out)
                self.breaker.succeeded(self.primary.url)
                return self.primary
            except SynthesisFailed as exc:
                tries = "after retries" if exc.retryable and self.attempts > 1 else "at once"
                self.fall_back(f"{exc} (gave up {tries})")
                if exc.retryable:
                    self.breaker.failed(self.primary.url, str(exc), cooldown_s=self.cooldown_s)
        self.fallback.synthesize_chunk(text, out)
        return self.fallback


def get_engine(
    name: str,
    *,
    timeout_s: float = 10.0,
    gtts_endpoint: str | None = None,
    gtts_cooldown_s: float = DEFAULT_GTTS_COOLDOWN_S,
    tz: tzinfo = UTC,
) -> GTTSEngine | EspeakEngine | AutoEngine:
    """The engine called ``name``: "auto" (gTTS, falling back to espeak-ng), "gtts" or "espeak".

    ``gtts_cooldown_s`` and ``tz`` (the time zone of the cool-down message) are for "auto".
    """
    if name == "gtts":
        return GTTSEngine(timeout_s=timeout_s, endpoint=gtts_endpoint)
    if name == "espeak":
        return EspeakEngine()
    if name == "auto":
        primary = GTTSEngine(timeout_s=timeout_s, endpoint=gtts_endpoint)
        return AutoEngine(primary, EspeakEngine(), cooldown_s=gtts_cooldown_s, tz=tz)
    raise ValueError(f"unknown TTS engine {name!r}; expected one of {', '.join(ENGINE_NAMES)}")
