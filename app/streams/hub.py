"""`loaxa hub`: the commune's stream hub, Icecast 2, run and watched by loaxa.

One process (a part of `loaxa up`, a service of docker-compose) that:

* writes Icecast's configuration from the relay programmes (app.streams.config) and starts
  ``icecast2`` as its child; when programmes change it rewrites the file and sends SIGHUP
  (Icecast re-reads it without dropping listeners);
* runs an ffmpeg source process for each HLS or https relay during its slot (from
  FEED_LEAD before its start to its end), restarted after a pause if it stops;
* watches, every TICK_SECONDS, which relay mounts receive their upstream (Icecast's
  status), records it for staff (StreamState: "VOV1: đang nhận" / "mất tín hiệu từ 06:12")
  and per slot (RelaySlot: how long it came in); when a slot ends with nothing received it
  records why (the upstream probed in words) and raises the grouped warning
  ``relay-not-received``.

It exits non-zero when Icecast does not come up (a port taken, icecast2 missing) or dies,
and `loaxa up` restarts it (app.supervisor). SIGTERM stops Icecast and every feeder.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.db import unit_of_work
from app.schedule import warnings
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations.models import RELAY, Programme
from app.streams.config import (
    Layout,
    Mount,
    Secrets,
    Upstream,
    default_layout,
    load_secrets,
    prepare_log_dir,
    relay_mounts,
    render,
    runtime_dir,
    share_with_icecast,
)
from app.streams.live_hub import LiveWatch
from app.streams.models import RelaySlot, StreamState
from app.streams.mounts import relay_mount
from app.streams.probe import probe, words_vi

log = logging.getLogger("loaxa.hub")

TICK_SECONDS = 2.0
LIVE_TICK_SECONDS = 0.5
READY_TIMEOUT_S = 15.0
FEED_LEAD = timedelta(seconds=30)
FEED_RETRY_S = 3.0
PROBE_EVERY = timedelta(seconds=30)
CLOSE_AFTER = timedelta(days=1)  # slots that ended longer ago are not judged any more
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Icecast:
    """The Icecast server of the hub: its config file, its process, its status."""

    def __init__(
        self, layout: Layout, secrets: Secrets, folder: Path, binary: str = "icecast2"
    ) -> None:
        self.layout, self.secrets, self.binary = layout, secrets, binary
        self.path = folder / "icecast.xml"  # app.streams.config.runtime_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{layout.port}"

    def configure(self, mounts: list[Mount]) -> bool:
        """Write the configuration for these mounts; whether it changed."""
        text = render(mounts, layout=self.layout, secrets=self.secrets)
        if self.path.exists() and self.path.read_text() == text:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        share_with_icecast(self.path.parent, self.layout)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        share_with_icecast(tmp, self.layout)
        os.replace(tmp, self.path)
        return True

    def start(self) -> None:
        prepare_log_dir(self.layout)
        self._stop_stale()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.path)],
            stdout=subprocess.DEVNULL,  # "Changed userid to 108." and the like
            preexec_fn=_die_with_parent,
        )
        self.path.with_suffix(".pid").write_text(str(self.process.pid))
        log.info("icecast started on port %d (pid %d)", self.layout.port, self.process.pid)

    def _stop_stale(self) -> None:
        """Stop an Icecast a killed hub left running on this configuration (it outlives a
        SIGKILL of its parent: dropping privileges clears the parent-death signal)."""
        pidfile = self.path.with_suffix(".pid")
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(self.path).encode() not in cmdline:
            return  # the pid now belongs to something else
        log.warning("stopping the icecast a previous hub left running (pid %d)", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)

    def reload(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)
            log.info("icecast configuration reloaded")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def sources(self) -> dict[str, dict[str, Any]] | None:
        """Each mount's status entry (Icecast's status-json.xsl); None when it does not answer."""
        try:
            r = httpx.get(f"{self.base}/status-json.xsl", timeout=2)
            r.raise_for_status()
            found = r.json().get("icestats", {}).get("source") or []
        except (httpx.HTTPError, ValueError):
            return None
        if isinstance(found, dict):
            found = [found]
        out = {}
        for entry in found:
            mount = "/" + str(entry.get("listenurl", "")).split("/", 3)[-1]
            out[mount] = entry
        return out

    def wait_ready(
        self, timeout: float = READY_TIMEOUT_S, stop: threading.Event | None = None
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if self.process is not None and self.process.poll() is not None:
                return False
            if self.sources() is not None:
                return True
            time.sleep(0.2)
        return False


def receiving(entry: dict[str, Any] | None) -> bool:
    """Whether a mount's status says a source (its upstream, or a feeder) is connected."""
    return bool(entry and entry.get("stream_start_iso8601"))


@dataclass(frozen=True)
class RelayWindow:
    """A relay broadcast's slot as the hub serves it."""

    broadcast_id: int
    station_id: int
    programme_id: int
    code: str
    title: str
    url: str
    starts_at: datetime
    ends_at: datetime
    local_month: str
    village_id: int | None

    @property
    def mount(self) -> str:
        return relay_mount(self.station_id, self.code)


def relay_windows(session: Session, *, since: datetime, until: datetime) -> list[RelayWindow]:
    """Relay broadcasts (not cancelled) whose slot meets [since, until)."""
    rows = session.execute(
        select(
            Broadcast.id,
            Broadcast.station_id,
            Programme.id,
            Programme.code,
            Programme.name,
            Programme.source_url,
            Broadcast.starts_at,
            Programme.max_duration_ms,
            Broadcast.local_month,
            Broadcast.village_id,
        )
        .join(Programme, Programme.id == Broadcast.programme_id)
        .where(
            Programme.source_kind == RELAY,
            Broadcast.status != BroadcastStatus.cancelled.value,
            Broadcast.starts_at < until,
            Broadcast.starts_at >= since - timedelta(days=1),
        )
        .order_by(Broadcast.starts_at)
    )
    out = []
    for bid, sid, pid, code, name, url, starts, window_ms, month, village in rows:
        ends = starts + timedelta(milliseconds=window_ms)
        if ends > since and url:
            out.append(RelayWindow(bid, sid, pid, code, name, url, starts, ends, month, village))
    return out


class Feeders:
    """ffmpeg source processes for HLS and https relays, one per mount during its slot."""

    def __init__(self, icecast: Icecast) -> None:
        self.icecast = icecast
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.retry_at: dict[str, float] = {}

    def command(self, mount: str, url: str) -> list[str]:
        target = (
            f"icecast://source:{self.icecast.secrets.source}@127.0.0.1:"
            f"{self.icecast.layout.port}{mount}"
        )
        return [
            "ffmpeg", "-nostdin", "-v", "error", "-re",
            "-reconnect", "1", "-reconnect_streamed", "1", "-reconnect_delay_max", "4",
            "-i", url, "-vn", "-ac", "1", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "64k",
            "-content_type", "audio/mpeg", "-f", "mp3", target,
        ]  # fmt: skip

    def keep(self, wanted: dict[str, str]) -> None:
        """Run a feeder for each wanted mount (mount -> upstream URL), stop the others."""
        for mount in list(self.running):
            if mount not in wanted:
                self._stop(mount)
        now = time.monotonic()
        for mount, url in wanted.items():
            process = self.running.get(mount)
            if process is not None and process.poll() is None:
                continue
            if process is not None:
                log.warning("feeder of %s stopped (code %s)", mount, process.returncode)
                del self.running[mount]
                self.retry_at[mount] = now + FEED_RETRY_S
            if now < self.retry_at.get(mount, 0.0):
                continue
            self.running[mount] = subprocess.Popen(
                self.command(mount, url),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            log.info("feeding %s from %s", mount, url)

    def _stop(self, mount: str) -> None:
        process = self.running.pop(mount)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.info("stopped feeding %s", mount)

    def stop_all(self) -> None:
        for mount in list(self.running):
            self._stop(mount)


class Watch:
    """What the hub records of its relays: each mount's state, each slot's reception."""

    def __init__(self) -> None:
        self.last_tick: datetime | None = None
        self.probed: dict[str, tuple[datetime, str]] = {}  # mount -> (when, words)

    def trouble(self, window: RelayWindow, now: datetime) -> str:
        """Why a mount receives nothing, in words: its upstream probed (at most every
        PROBE_EVERY)."""
        seen = self.probed.get(window.mount)
        if seen is None or now - seen[0] >= PROBE_EVERY:
            found = probe(window.url)
            words = "đang nhận được" if found.ok else words_vi(found)
            seen = (now, words)
            self.probed[window.mount] = seen
        return seen[1]

    def tick(
        self, session: Session, *, now: datetime, sources: dict[str, dict[str, Any]]
    ) -> list[warnings.Change | None]:
        """Record this moment; returns the warning changes to tell after commit."""
        elapsed = now - self.last_tick if self.last_tick else timedelta(0)
        elapsed = min(elapsed, timedelta(seconds=TICK_SECONDS * 3))
        self.last_tick = now
        windows = relay_windows(session, since=now - CLOSE_AFTER, until=now + timedelta(seconds=1))
        states = {s.programme_id: s for s in session.scalars(select(StreamState))}
        slots = {
            s.broadcast_id: s
            for s in session.scalars(
                select(RelaySlot).where(
                    RelaySlot.broadcast_id.in_([w.broadcast_id for w in windows])
                )
            )
        }
        changes: list[warnings.Change | None] = []
        for w in windows:
            slot = slots.get(w.broadcast_id)
            if w.starts_at <= now < w.ends_at:
                on = receiving(sources.get(w.mount))
                if slot is None:
                    slot = RelaySlot(broadcast_id=w.broadcast_id, received_ms=0, updated_at=now)
                    session.add(slot)
                    slots[w.broadcast_id] = slot
                if on:
                    slot.received_ms += elapsed // timedelta(milliseconds=1)
                    slot.first_received_at = slot.first_received_at or now
                    slot.lost_at = None
                elif slot.lost_at is None:
                    slot.lost_at = now
                slot.updated_at = now
                self._state(session, states, w, on=on, now=now)
            elif now >= w.ends_at and (slot is None or slot.closed_at is None):
                changes.append(self._close(session, w, slot, now))
        return changes

    def _state(
        self,
        session: Session,
        states: dict[int, StreamState],
        w: RelayWindow,
        *,
        on: bool,
        now: datetime,
    ) -> None:
        state = states.get(w.programme_id)
        if state is None:
            state = StreamState(
                programme_id=w.programme_id, receiving=on, since=now, checked_at=now
            )
            session.add(state)
            states[w.programme_id] = state
        elif state.receiving != on:
            state.receiving, state.since = on, now
        state.checked_at = now
        state.detail = None if on else self.trouble(w, now)

    def _close(
        self, session: Session, w: RelayWindow, slot: RelaySlot | None, now: datetime
    ) -> warnings.Change | None:
        if slot is None:
            slot = RelaySlot(broadcast_id=w.broadcast_id, received_ms=0, updated_at=now)
            session.add(slot)
        slot.closed_at = now
        if slot.received_ms > 0:
            return None
        found = probe(w.url)
        if found.ok:  # the upstream answers: no device listened (their as-run tells why)
            slot.reason = "nguồn vẫn phát nhưng không máy phát nào nghe trong khung giờ"
            return None
        slot.reason = f"nguồn tiếp sóng không trả lời: {words_vi(found)}"[:300]
        session.flush()
        return warnings.update_group(
            session,
            kind="relay-not-received",
            station_id=w.station_id,
            month=w.local_month,
            put=[
                warnings.broadcast_item(
                    broadcast_id=w.broadcast_id,
                    starts_at=w.starts_at,
                    village_id=w.village_id,
                    village=None,
                    detail=slot.reason,
                )
            ],
        )


def _wanted_feeds(windows: list[RelayWindow], now: datetime) -> dict[str, str]:
    return {
        w.mount: w.url
        for w in windows
        if Upstream(w.url).fed_by_ffmpeg and w.starts_at - FEED_LEAD <= now < w.ends_at
    }


def run_hub(
    *,
    stop: threading.Event,
    port: int | None = None,
    auth_url: str | None = None,
    secrets_dir: Path | None = None,
    tick: float = TICK_SECONDS,
) -> int:
    """Run the hub until `stop` is set; the exit code (1: Icecast did not come up or died)."""
    layout = default_layout(port=port, auth_url=auth_url)
    icecast = Icecast(layout, load_secrets(secrets_dir), runtime_dir(layout.port))
    with unit_of_work(write=False) as session:
        icecast.configure(relay_mounts(session))
    icecast.start()
    feeders = Feeders(icecast)
    watch = Watch()
    lives = LiveWatch(layout.port, icecast.secrets.admin)
    try:
        if not icecast.wait_ready(stop=stop):
            if stop.is_set():
                return 0
            log.error(
                "icecast did not come up on port %d (see %s/error.log)", layout.port, layout.log_dir
            )
            return 1
        log.info("hub ready on port %d", layout.port)
        # Live sessions are looked at more often than relays: a recorder started late
        # loses the start of what the official said.
        step = min(tick, LIVE_TICK_SECONDS)
        next_relay = time.monotonic()
        while not stop.wait(step):
            if icecast.process is not None and icecast.process.poll() is not None:
                log.error("icecast exited with code %s", icecast.process.returncode)
                return 1
            try:
                if time.monotonic() >= next_relay:
                    next_relay = time.monotonic() + tick
                    _tick(icecast, feeders, watch)
                sources = icecast.sources()
                if sources is not None:
                    lives.tick(sources)
            except Exception:  # a database hiccup must not take the streams down
                log.exception("hub tick failed; carrying on")
        return 0
    finally:
        feeders.stop_all()
        lives.stop_all()
        icecast.stop()


def _tick(icecast: Icecast, feeders: Feeders, watch: Watch) -> None:
    now = clock.now()
    with unit_of_work() as session:
        if icecast.configure(relay_mounts(session)):
            icecast.reload()
        windows = relay_windows(session, since=now, until=now + FEED_LEAD)
    feeders.keep(_wanted_feeds(windows, now))
    sources = icecast.sources()
    if sources is None:
        return
    with unit_of_work() as session:
        changes = watch.tick(session, now=now, sources=sources)
    warnings.notify(changes)
