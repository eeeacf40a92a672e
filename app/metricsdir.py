"""Where the processes of each loaxa command keep their Prometheus numbers (see app.metrics).

Kept apart from app.metrics on purpose: prometheus-client decides at import whether it
counts in memory or in files, so this must run before anything imports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ROLES = ("serve", "scheduler")


def metrics_root(data_dir: Path) -> Path:
    return data_dir / "metrics"


def prepare_multiprocess_dir(data_dir: Path, role: str) -> Path:
    """Empty (or create) this command's metrics directory and point prometheus-client at it.

    `loaxa serve` calls it before uvicorn starts its workers, which inherit the environment;
    `loaxa scheduler` before it runs a job. Each command empties only its own directory, so
    a restarted API keeps showing the running scheduler's numbers.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if "app.metrics" in sys.modules:
        raise RuntimeError("prepare_multiprocess_dir must run before app.metrics is imported")
    directory = metrics_root(data_dir) / role
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory
