"""Listening copies: the light file people play in the console and the podcast (see
``pipeline.listen`` for the format), made after the playout file, never before it.

Rules:

* A copy is made for a stored playout file that has an asset (a segment's audio, a master)
  and none yet (``audio_assets.listen_sha256`` is null: ``listen_url`` is null meanwhile,
  and players fall back to the playout file). It is stored in the audio store like any
  file (named by its own sha256, ``.m4a``), and housekeeping keeps it while its asset
  names it.
* It is made after the playout file has been stored and recorded, outside any
  transaction: right after the request that made the playout file has been answered
  (``make_soon``, a FastAPI background task), by ``loaxa assemble`` after it has printed
  its master, and by the scheduler's ``listen_copies`` job for whatever is still missing
  (files from before, or a server that stopped in between).
* The playout agents never get it: they play and cache the full file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from fastapi import BackgroundTasks, Response
from sqlalchemy import select, update
from starlette.background import BackgroundTask

from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audio.pipeline.listen import LISTEN_EXT, ListenCopyTooLarge, make_listen_copy
from app.db import unit_of_work

log = logging.getLogger("loaxa.audio")

MISSING_BATCH = 20  # copies one run of the job makes at most
LISTENED_ORIGINS = ("upload", "tts", "assembly")  # what people play (not the templates)


def listen_url(listen_sha256: str | None) -> str | None:
    """Where staff (with a token) fetch a listening copy; None while there is none."""
    return f"/api/v1/audio/{listen_sha256}" if listen_sha256 else None


def make(sha256: str) -> str | None:
    """Make the listening copy of the stored playout file sha256 and record it on its asset;
    its sha256 (the existing one when it was made already). None when there is no such
    asset or file, or no copy fits (logged)."""
    with unit_of_work(write=False) as session:
        row = session.execute(
            select(AudioAsset.duration_ms, AudioAsset.listen_sha256).where(
                AudioAsset.sha256 == sha256
            )
        ).first()
    if row is None:
        return None
    duration_ms, existing = row
    store = audio.store()
    if existing and store.exists(existing, LISTEN_EXT):
        return str(existing)
    src = store.path_for(sha256)
    if not src.is_file():
        return None
    scratch = Path(tempfile.mkdtemp(prefix="listen-", dir=audio.work_dir()))
    try:
        made = make_listen_copy(src, scratch / f"listen.{LISTEN_EXT}", duration_ms=duration_ms)
        listen_sha = store.put(made.path, ext=LISTEN_EXT)
    except ListenCopyTooLarge as exc:
        log.warning("no listening copy for %s: %s", sha256, exc)
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    with unit_of_work() as session:
        session.execute(
            update(AudioAsset)
            .where(AudioAsset.sha256 == sha256)
            .values(listen_sha256=listen_sha)
        )
    return listen_sha


def make_quietly(sha256: str) -> None:
    """``make``, logging instead of raising (a background task has nobody to answer)."""
    try:
        make(sha256)
    except Exception:
        log.exception("the listening copy of %s could not be made", sha256)


def make_soon(background: BackgroundTasks, sha256: str | None) -> None:
    """Make the listening copy once the current request has been answered."""
    if sha256:
        background.add_task(make_quietly, sha256)


def made_after(response: Response, sha256: str | None) -> Response:
    """The response, making the listening copy of sha256 once it has been sent (the
    console's answers, which are built by pages rather than returned by routes)."""
    if sha256:
        response.background = BackgroundTask(make_quietly, sha256)
    return response


def make_missing(*, limit: int = MISSING_BATCH) -> int:
    """Make the missing copies of uploads, syntheses and masters, newest first, at most
    `limit`; how many were made."""
    with unit_of_work(write=False) as session:
        shas = list(
            session.scalars(
                select(AudioAsset.sha256)
                .where(
                    AudioAsset.listen_sha256.is_(None),
                    AudioAsset.origin.in_(LISTENED_ORIGINS),
                )
                .order_by(AudioAsset.id.desc())
                .limit(limit)
            )
        )
    return sum(1 for sha in shas if make(sha))


