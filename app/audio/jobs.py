"""Audio's periodic jobs: delete stored files nothing refers to, and stale scratch files;
make the listening copies still missing (``listen.make_missing``).

Envelope files (``AudioStore.iter_envelopes``) go with their audio: when nothing names it
(templates count: their envelopes are kept in the store too), or when they were measured
under another key than the current standard's (kept for a setting since changed).

A plain function of `now`, idempotent and safe to run twice; `app.schedule.runner` registers
it. Audio knows its own references (an asset's playout file and its upload); files named by
the domains above it (a broadcast's master, an emergency's audio) are passed in as columns,
so that audio imports none of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from app.audio import service as audio
from app.audio.models import AudioAsset
from app.db import unit_of_work


def housekeeping(
    now: datetime,
    *,
    kept_by: Sequence[InstrumentedAttribute[Any]] = (),
    min_age: timedelta = timedelta(days=1),
) -> int:
    """Delete stored files no asset and no `kept_by` column names, and scratch files, when
    last changed before `now - min_age`. Returns how many entries went."""
    cutoff = (now - min_age).timestamp()
    with unit_of_work(write=False) as session:
        referenced = set(session.scalars(select(AudioAsset.sha256)))
        for column in (AudioAsset.source_sha256, AudioAsset.listen_sha256, *kept_by):
            referenced |= set(session.scalars(select(column).where(column.is_not(None))))
    referenced |= audio.template_shas()
    keys = {audio.envelope_key(filtered=True), audio.envelope_key(filtered=False)}
    removed = 0
    for sha, envelope_key, path in audio.store().iter_envelopes():
        if (sha not in referenced or envelope_key not in keys) and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    for sha, path in audio.store().iter_all():
        if sha not in referenced and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    for entry in audio.work_dir().iterdir():
        if entry.stat().st_mtime < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed
