"""The hub's side of live sessions: who is on air, the 60 s rule, and the recording.

Every tick (app.streams.hub) the hub looks at each open session's mount:

* a source on it: the session's ``source_seen_at`` is now, and a recorder (ffmpeg, a
  listener of the mount with its own password, app.streams.mounts.mount_secret) copies
  what goes out into ``<data dir>/live/<id>/part-<n>.mp3``, a new part after each gap;
* no source for SOURCE_GONE (since it was last seen, or since the session opened): the
  session ends ("nguồn phát mất tín hiệu quá 60 giây") and devices go back to their
  schedule.

When a session has ended, its recorder stops and its parts are joined, normalised and
stored like any audio (``origin: "live"``): the session's ``recording_audio_id`` and
``recording_ms``, or ``recording_note`` saying why there is nothing. Whatever fed it (the
console's WebSocket, `loaxa-agent live`, any source client), the same recording is kept.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app import clock
from app.audio import service as audio
from app.config import get_settings
from app.db import unit_of_work
from app.playout import live
from app.playout.models import LiveSession
from app.streams.mounts import mount_secret

log = logging.getLogger("loaxa.hub")


def recordings_dir(live_id: int) -> Path:
    return get_settings().data_dir / "live" / str(live_id)


def _on_air(entry: dict[str, Any] | None) -> bool:
    return bool(entry and entry.get("stream_start_iso8601"))


class LiveWatch:
    """The hub's live sessions: recorders running, recordings being kept."""

    def __init__(self, port: int, admin_password: str | None = None) -> None:
        self.port = port
        self.admin_password = admin_password
        self.recorders: dict[int, subprocess.Popen[bytes]] = {}
        self.parts: dict[int, int] = {}
        self.keeping: dict[int, threading.Thread] = {}

    def recorder_command(self, mount: str, out: Path) -> list[str]:
        secret = mount_secret("recorder", mount)
        url = f"http://{live.RECORDER_USER}:{secret}@127.0.0.1:{self.port}{mount}"
        return [
            # Little probing: ffmpeg's default (5 s of a live stream) would lose the
            # start, and all of a session shorter than that.
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "mp3", "-probesize", "4096",
            "-analyzeduration", "0", "-i", url, "-vn", "-c:a", "copy", "-f", "mp3", str(out),
        ]  # fmt: skip

    def tick(self, sources: dict[str, dict[str, Any]]) -> None:
        """Record this moment (see the module's docstring)."""
        now = clock.now()
        finished: list[int] = []
        with unit_of_work() as session:
            open_now = session.scalars(
                select(LiveSession).where(LiveSession.ended_at.is_(None))
            ).all()
            for s in open_now:
                if _on_air(sources.get(s.mount)):
                    s.source_seen_at = now
                    self._record(s.id, s.mount)
                    continue
                self._stop(s.id)
                since = s.source_seen_at or s.created_at
                if now - since >= live.SOURCE_GONE:
                    live.end_session(session, s, reason=live.ENDED_SOURCE_GONE, at=now)
                    log.info("live session %d ended: its source was gone for 60 s", s.id)
            open_ids = {s.id for s in open_now if s.ended_at is None}
            # A source still on an ended session's mount (Icecast asks about a source only
            # when it connects): cut it off, so that nothing more goes out.
            on_air_mounts = [m for m, entry in sources.items() if _on_air(entry)]
            lingering = session.scalars(
                select(LiveSession.mount).where(
                    LiveSession.mount.in_(on_air_mounts), LiveSession.ended_at.is_not(None)
                )
            ).all() if on_air_mounts else []
            # Ended sessions not kept yet (ended here, by a person, or before a restart).
            pending = session.scalars(
                select(LiveSession.id).where(
                    LiveSession.ended_at.is_not(None),
                    LiveSession.recording_audio_id.is_(None),
                    LiveSession.recording_note.is_(None),
                )
            ).all()
            finished = [i for i in pending if i not in open_ids]
        for mount in lingering:
            self._kill_source(mount)
        for live_id in finished:
            self._stop(live_id)
            if live_id not in self.keeping:
                thread = threading.Thread(
                    target=keep_recording, args=(live_id,), daemon=True, name=f"keep-{live_id}"
                )
                self.keeping[live_id] = thread
                thread.start()

    def _kill_source(self, mount: str) -> None:
        if self.admin_password is None:
            return
        try:
            httpx.get(
                f"http://127.0.0.1:{self.port}/admin/killsource",
                params={"mount": mount},
                auth=("admin", self.admin_password),
                timeout=2,
            )
            log.info("cut off the source of %s: its live session has ended", mount)
        except httpx.HTTPError as exc:
            log.warning("could not cut off the source of %s: %s", mount, exc)

    def _record(self, live_id: int, mount: str) -> None:
        process = self.recorders.get(live_id)
        if process is not None and process.poll() is None:
            return
        n = self.parts.get(live_id, 0) + 1
        self.parts[live_id] = n
        folder = recordings_dir(live_id)
        folder.mkdir(parents=True, exist_ok=True)
        self.recorders[live_id] = subprocess.Popen(
            self.recorder_command(mount, folder / f"part-{n:03d}.mp3"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        log.info("recording live session %d (part %d)", live_id, n)

    def _stop(self, live_id: int) -> None:
        process = self.recorders.pop(live_id, None)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for live_id in list(self.recorders):
            self._stop(live_id)


def keep_recording(live_id: int) -> None:
    """Join a session's parts, normalise and store them, and note it on the session."""
    folder = recordings_dir(live_id)
    found = sorted(folder.glob("part-*.mp3"))
    log.info("live session %d: keeping %s", live_id, [(p.name, p.stat().st_size) for p in found])
    parts = [p for p in found if p.stat().st_size > 0]
    fields: dict[str, object] | None = None
    note: str | None = None
    if not parts:
        note = "không thu được âm thanh nào: nguồn phát chưa từng lên sóng"
    else:
        scratch = Path(tempfile.mkdtemp(prefix="live-", dir=audio.work_dir()))
        try:
            joined = scratch / "joined.wav"
            listing = scratch / "parts.txt"
            listing.write_text("".join(f"file '{p}'\n" for p in parts))
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0",
                 "-i", str(listing), "-ac", "1", "-ar", "44100", str(joined)],
                check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            try:
                ingested = audio.ingest_file(joined, scratch)
            except Exception as exc:  # too short, silent: say so on the session
                note = f"bản ghi không dùng được: {exc}"[:300]
            else:
                sha = audio.store().put(ingested.playout_path)
                fields = {"sha256": sha, **audio.asset_fields(ingested, sha), "origin": "live"}
        except (OSError, subprocess.SubprocessError) as exc:
            note = f"không ghép được bản ghi: {exc}"[:300]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    with unit_of_work() as session:
        s = session.get(LiveSession, live_id)
        if s is None:
            return
        if fields is not None:
            sha = str(fields.pop("sha256"))
            asset = audio.register_asset(session, sha256=sha, **fields)
            session.flush()
            s.recording_audio_id = asset.id
            s.recording_ms = asset.duration_ms
        else:
            s.recording_note = note
    if fields is not None:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("live session %d: recording kept (%s)", live_id, note or "stored")
