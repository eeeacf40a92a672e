"""Prometheus metrics: what loaxa counts, and `GET /metrics` in the text format.

Several processes count: every uvicorn worker of `loaxa serve`, and `loaxa scheduler`.
Each command gives its processes a directory of their own under `<data dir>/metrics/`
(`serve/`, `scheduler/`) through PROMETHEUS_MULTIPROC_DIR, emptied when the command starts,
and prometheus-client keeps each process's numbers in a file there. A scrape of any worker
merges every file of both directories, so the numbers add up across workers, and the
scheduler's own (job runs, failures and durations, the assemblies it renders) appear in the
API's `/metrics` as long as both share the data directory (docker-compose shares `/data`).
Without PROMETHEUS_MULTIPROC_DIR (tests, an embedded app) the numbers are the process's own.

What is read from the database at scrape time rather than counted: the devices online
(seen within devices.service.ONLINE_WITHIN) and the active devices, so that every worker
gives the same answer.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.metricsdir import MULTIPROC_ENV, ROLES

# Request latency by route template (never the raw path: ids would make a series each).
HTTP_LATENCY = Histogram(
    "loaxa_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PLAYLIST_PULLS = Counter(
    "loaxa_playlist_pulls_total",
    "Playlists served to devices, by answer (full, not_modified) and format (json, m3u)",
    ["answer", "format"],
)
ASRUN_LAG = Histogram(
    "loaxa_asrun_lag_seconds",
    "Seconds between an as-run event's ended_at and its receipt by the server",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400),
)
ASSEMBLIES = Counter(
    "loaxa_assemblies_total",
    "Broadcast masters rendered, by outcome (rendered, reused, failed)",
    ["outcome"],
)
ASSEMBLY_SECONDS = Histogram(
    "loaxa_assembly_duration_seconds",
    "Time to render a broadcast's master file",
    buckets=(0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300),
)
JOB_RUNS = Counter(
    "loaxa_scheduler_job_runs_total",
    "Scheduler job runs this host's scheduler claimed, by job and outcome (done, failed)",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "loaxa_scheduler_job_duration_seconds",
    "Duration of a scheduler job run, by job",
    ["job"],
    buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
PUSH_PUBLISHED = Counter(
    "loaxa_push_published_total",
    "Messages the push broker acknowledged, by kind (alert, playlist, token)",
    ["kind"],
)
PUSH_FAILURES = Counter(
    "loaxa_push_failures_total",
    "Push messages or login commands not acknowledged by the broker (retried later)",
)
PUSH_LOGINS = Counter(
    "loaxa_push_logins_total",
    "Device logins on the push broker, by outcome (made, failed, dropped)",
    ["outcome"],
)


class _MergedMultiProcess(Collector):
    """The numbers of every process of every loaxa command sharing the metrics root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterator[Metric]:
        files: list[str] = []
        for role in ROLES:
            files += glob.glob(str(self.root / role / "*.db"))
        return iter(MultiProcessCollector.merge(files, accumulate=True))


class _Database(Collector):
    """Gauges read from the database at scrape time: every worker answers the same."""

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy.exc import SQLAlchemyError

        from app.devices.service import device_counts

        try:
            online, active = device_counts()
        except SQLAlchemyError:
            # /readyz says why; the process's own numbers are still worth scraping.
            yield GaugeMetricFamily("loaxa_database_up", "The database answered", value=0)
            return
        yield GaugeMetricFamily("loaxa_database_up", "The database answered", value=1)
        yield GaugeMetricFamily(
            "loaxa_devices_online", "Active devices seen within the last 5 minutes", value=online
        )
        yield GaugeMetricFamily("loaxa_devices_active", "Devices not disabled", value=active)
        yield from _push_gauges()


def _push_gauges() -> Iterator[Metric]:
    """Active devices by the push state their agent last reported, the outbox's unsent
    rows, and whether this process's publisher is connected to the broker."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.push.publisher import current
    from app.push.status import outbox_pending, push_states

    try:
        states, pending = push_states(), outbox_pending()
    except SQLAlchemyError:
        return
    family = GaugeMetricFamily(
        "loaxa_push_devices",
        "Active devices by push state reported by their agent (connected, polling, off, unknown)",
        labels=["state"],
    )
    for state, count in sorted(states.items()):
        family.add_metric([state], count)
    yield family
    yield GaugeMetricFamily(
        "loaxa_push_outbox_pending", "Push messages not yet acknowledged by the broker", pending
    )
    publisher = current()
    if publisher is not None:
        yield GaugeMetricFamily(
            "loaxa_push_broker_up",
            "This process's publisher is connected to the push broker",
            value=1 if publisher.connected else 0,
        )


class _Process(Collector):
    """This process's own registry (used when not in multiprocess mode)."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    multiproc = os.environ.get(MULTIPROC_ENV)
    if multiproc:
        registry.register(_MergedMultiProcess(Path(multiproc).parent))
    else:
        registry.register(_Process())
    registry.register(_Database())
    return generate_latest(registry), CONTENT_TYPE_LATEST
