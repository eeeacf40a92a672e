"""Limits on the media tools loaxa starts (ffmpeg, ffprobe, espeak-ng), one place for all.

Each child gets a CPU-time limit (LOAXA_CHILD_CPU_SECONDS: the kernel stops it past that)
and an address-space limit (LOAXA_CHILD_MEMORY_BYTES: its allocations fail past that), set
in the child between fork and exec (``preexec_fn``): a crafted upload, or a script that
reads for an hour, costs at most that, whatever the tool does with it. The limits are
generous for real work (a 20-minute ingest uses a few seconds of CPU and ~100 MB).
"""

from __future__ import annotations

import resource
from collections.abc import Callable

from app.config import get_settings


def child_limits() -> Callable[[], None]:
    """A ``preexec_fn`` that applies the limits in the child (read once, in the parent)."""
    settings = get_settings()
    cpu = int(settings.child_cpu_seconds)
    memory = int(settings.child_memory_bytes)

    def apply() -> None:  # runs in the child: nothing here may take a lock
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply
