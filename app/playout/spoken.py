"""Emergencies said in words: typed text read aloud, or a recording made in the browser.

One step does what the segment workflow does in several, because a storm does not wait:
the message becomes a segment of the station's own emergency programme (which filling,
the reports' topics and the podcast leave out: it has no broadcasts and no rundowns, and
planning and the programme lists skip it, app.stations.service.list_programmes), its audio
is the message said `repeat` times with a pause between, normalised like any audio; the
segment is approved (the audit log records the approver's act) and the emergency starts.

The heavy part (synthesis or decoding, normalising) runs with no transaction open; the
segment, its approval and the emergency are then written in one transaction, so a failure
leaves nothing half-made.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audio import pipeline
from app.audio import service as audio
from app.config import get_settings
from app.db import unit_of_work
from app.durations import describe_ms
from app.errors import Invalid
from app.playout import emergencies
from app.playout.models import Emergency
from app.segments import audio as segment_audio
from app.segments import service as segments
from app.segments.models import Topic
from app.stations import service as stations
from app.stations.models import EMERGENCY_SOURCE, Programme
from app.tts import service as tts

EMERGENCY_CODE = "khan-cap"
EMERGENCY_NAME = "Phát khẩn cấp"
MAX_SPOKEN_MS = 3 * 60_000  # the message once, read aloud
# Words a minute at which a message is judged read aloud (espeak-ng's pace).
WORDS_PER_MINUTE = 150
PAUSE_MS = 1500  # between two sayings of the message
DEFAULT_REPEAT = 2
MAX_REPEAT = 5
TITLE_CHARS = 80


def emergency_programme(session: Session, station_id: int) -> Programme:
    """The station's programme for emergencies, made on first use."""
    found = session.scalar(
        select(Programme).where(
            Programme.station_id == station_id, Programme.source_kind == EMERGENCY_SOURCE
        )
    )
    if found is not None:
        return found
    programme = Programme(
        station_id=station_id,
        code=EMERGENCY_CODE,
        name=EMERGENCY_NAME,
        scope="station",
        cadence={},  # no cadence: never planned (planning skips it by its source_kind)
        min_duration_ms=0,
        max_duration_ms=MAX_SPOKEN_MS * MAX_REPEAT + PAUSE_MS * (MAX_REPEAT - 1),
        source_kind=EMERGENCY_SOURCE,
    )
    session.add(programme)
    session.flush()
    return programme


def check_text(text: str, extra: dict[str, str]) -> str:
    """The message as read aloud; 422 when it is empty or longer than three minutes."""
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        raise Invalid("the message is empty: type what the villages must hear")
    normalized = tts.preview(text, extra)
    words = len(normalized.split())
    spoken_ms = words * 60_000 // WORDS_PER_MINUTE
    if words == 0:
        raise Invalid("the message has nothing that can be read aloud")
    if spoken_ms > MAX_SPOKEN_MS:
        raise Invalid(
            f"the message has {words} words: read aloud it takes about "
            f"{describe_ms(spoken_ms)}, longer than the {describe_ms(MAX_SPOKEN_MS)} an "
            "emergency may last; shorten it"
        )
    return normalized


def check_repeat(repeat: int | None) -> int:
    if repeat is None:
        return DEFAULT_REPEAT
    if not 1 <= repeat <= MAX_REPEAT:
        raise Invalid(f"repeat must be from 1 to {MAX_REPEAT} times, not {repeat}")
    return repeat


def _repeated(src: Path, repeat: int, out: Path) -> Path:
    """`src` said `repeat` times with PAUSE_MS of silence between (mono 44.1 kHz WAV)."""
    if repeat == 1:
        return src
    steps = [f"[{i}:a]aresample=44100,aformat=channel_layouts=mono[s{i}]" for i in range(repeat)]
    steps += [
        f"anullsrc=r=44100:cl=mono,atrim=duration={PAUSE_MS / 1000}[p{i}]"
        for i in range(repeat - 1)
    ]
    order = "".join(f"[s{i}]" + (f"[p{i}]" if i < repeat - 1 else "") for i in range(repeat))
    steps.append(f"{order}concat=n={2 * repeat - 1}:v=0:a=1[out]")
    inputs: list[str] = []
    for _ in range(repeat):
        inputs += ["-i", str(src)]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", ";".join(steps),
         "-map", "[out]", "-ac", "1", "-ar", "44100", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return out


def _store(src: Path, scratch: Path, *, origin: str, repeat: int) -> dict[str, object]:
    """Repeat, normalise and store `src`; the new asset's columns."""
    settings = get_settings()
    said = _repeated(src, repeat, scratch / "repeated.wav")
    try:
        ingested = pipeline.ingest(
            said,
            work_dir=scratch,
            min_ms=settings.min_audio_ms,
            max_ms=max(settings.max_audio_ms, MAX_SPOKEN_MS * MAX_REPEAT),
            **audio.sound_settings(),
        )
    except pipeline.AudioRejected as exc:
        raise Invalid(f"the emergency's audio is unusable: {exc}") from exc
    sha = audio.store().put(ingested.playout_path)
    audio.keep_envelopes(sha)
    source_sha = audio.store().put(src, ext=src.suffix.lstrip(".") or "wav")
    return {
        "sha256": sha,
        **audio.asset_fields(ingested, sha),
        "source_sha256": source_sha,
        "origin": origin,
    }


def speak(text: str, *, extra: dict[str, str], scratch: Path, engine: str = "auto") -> Path:
    """The message read aloud (gTTS, or espeak-ng offline), a WAV in scratch."""
    return tts.read_aloud(text, engine=engine, work_dir=scratch, extra=extra).path


def _title(text: str) -> str:
    words = " ".join(text.split())
    if len(words) > TITLE_CHARS:
        words = words[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return f"Khẩn cấp: {words}"


def _prepare(user: User, station_id: int) -> dict[str, str]:
    with unit_of_work(write=False) as session:
        stations.get_station(session, station_id, user=user)
        return tts.station_dictionary(session, station_id)


def emergency_from_text(
    *,
    user: User,
    station_id: int,
    text: str,
    village_ids: Sequence[int] | None = None,
    repeat: int | None = None,
    engine: str | None = None,
) -> int:
    """Read `text` aloud and put it on air at once, said `repeat` times; the emergency's id."""
    times = check_repeat(repeat)
    extra = _prepare(user, station_id)
    check_text(text, extra)
    text = unicodedata.normalize("NFC", text).strip()
    with audio.audio_job(), audio.disk_full_is_507():
        scratch = Path(tempfile.mkdtemp(prefix="emergency-", dir=audio.work_dir()))
        try:
            engine = engine or get_settings().emergency_tts_engine
            wav = speak(text, extra=extra, scratch=scratch, engine=engine)
            fields = _store(wav, scratch, origin="tts", repeat=times)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _go_on_air(
        user=user,
        station_id=station_id,
        title=_title(text),
        script=text,
        fields=fields,
        village_ids=village_ids,
        repeat=times,
    )


def emergency_from_recording(
    *,
    user: User,
    station_id: int,
    upload: Path,
    title: str | None = None,
    village_ids: Sequence[int] | None = None,
    repeat: int | None = None,
) -> int:
    """Put a recording (the browser's, any audio) on air at once, said `repeat` times."""
    times = check_repeat(repeat)
    _prepare(user, station_id)
    with audio.audio_job(), audio.disk_full_is_507():
        scratch = Path(tempfile.mkdtemp(prefix="emergency-", dir=audio.work_dir()))
        try:
            probe = audio.ingest_file(upload, scratch)  # 422 for unusable audio
            if probe.duration_ms > MAX_SPOKEN_MS:
                raise Invalid(
                    f"the recording lasts {describe_ms(probe.duration_ms)}, longer than the "
                    f"{describe_ms(MAX_SPOKEN_MS)} an emergency may last"
                )
            wav = scratch / "recording.wav"
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(upload), "-vn",
                 "-ac", "1", "-ar", "44100", str(wav)],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            fields = _store(wav, scratch, origin="upload", repeat=times)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    local = clock.now().astimezone(get_settings().tz)
    return _go_on_air(
        user=user,
        station_id=station_id,
        title=(title or "").strip()[:TITLE_CHARS] or f"Khẩn cấp: ghi âm lúc {local:%H:%M}",
        script=None,
        fields=fields,
        village_ids=village_ids,
        repeat=times,
    )


def _go_on_air(
    *,
    user: User,
    station_id: int,
    title: str,
    script: str | None,
    fields: dict[str, object],
    village_ids: Sequence[int] | None,
    repeat: int,
) -> int:
    """One transaction: the segment, its audio, its approval by `user`, the emergency."""
    with unit_of_work() as session:
        programme = emergency_programme(session, station_id)
        segment = segments.create_segment(
            session,
            user=user,
            title=title,
            programme=programme.code,
            topic=Topic.emergency.value,
            script=script,
            priority="emergency",
            station_id=station_id,
        )
        segment_audio.set_segment_audio(
            session,
            segment=segment,
            user=user,
            expected_version=None,
            action="segment.audio",
            new_asset=fields,
        )
        segments.submit_segment(session, user=user, segment=segment)
        segments.approve_segment(session, user=user, segment=segment)
        emergency: Emergency = emergencies.create_emergency(
            session,
            station_id=station_id,
            segment_id=segment.id,
            village_ids=village_ids,
            actor=user,
            repeat=repeat,
        )
        return emergency.id


def preview_mp3(text: str, *, extra: dict[str, str]) -> bytes:
    """ "Nghe thử": the message read aloud once, as a small MP3 for the page (not stored)."""
    with audio.audio_job():
        scratch = Path(tempfile.mkdtemp(prefix="emergency-preview-", dir=audio.work_dir()))
        try:
            engine = get_settings().emergency_tts_engine
            wav = speak(text, extra=extra, scratch=scratch, engine=engine)
            out = scratch / "preview.mp3"
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-ac", "1",
                 "-c:a", "libmp3lame", "-b:a", "32k", str(out)],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            return out.read_bytes()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
