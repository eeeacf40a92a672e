"""The hub's Icecast configuration, written from the database and the settings.

What it holds, and why (DESIGN.md "Processes", checked on Debian's Icecast 2.4.4):

* one mount per relay programme (app.streams.mounts). An upstream Icecast or Shoutcast
  over plain http is an on-demand ``<relay>``: Icecast connects to it when the first
  device listens and lets go after the last, so a commune pulls one connection whatever
  the number of clusters. HLS and https upstreams (which Icecast 2.4 cannot relay) are fed
  by an ffmpeg source process during the slot (app.streams.hub); their mount is declared
  so that the same listener checks apply;
* every mount checks its listeners with loaxa (``<authentication type="url">``,
  ``listener_add``): a device's token is its password; loaxa answers with the header
  ``icecast-auth-user: 1`` when it may listen (app.streams.listeners);
* a small burst on connect (4 KB): what a listener is sent at once is played late, after
  the upstream is gone, so a burst (Icecast's default, 64 KB: 8 s at 64 kbit/s) lags and
  hides dropouts;
* ``<master-update-interval>`` of 2 s: Icecast waits that long before retrying an upstream
  that failed (its default, 120 s, would keep a relay silent for two minutes after a cut);
* run as root, Icecast refuses to start unless the config drops privileges
  (``<security><changeowner>``), and its log directory must be writable by that user;
* passwords (source, relay, admin) are random, kept in ``<data dir>/icecast/secrets.json``
  (read by its owner only), made on first use.

A live mount (a person speaking, issue 24) is a Mount with its own source credentials and
no relay: the same listener checks, the same file.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.stations.models import RELAY, Programme
from app.streams.mounts import relay_mount

ICECAST_USER, ICECAST_GROUP = "icecast2", "icecast"  # what Debian's package creates
RETRY_SECONDS = 2
LISTENER_AUTH_PATH = "/api/v1/streams/listener"
SOURCE_AUTH_PATH = "/api/v1/streams/source"
LIVE_MOUNTS = "/live-*"  # every live session's mount (app.playout.live)
LIVE_SOURCES = 20  # live mounts the hub takes at once, beyond its relays


@dataclass(frozen=True)
class Secrets:
    """The hub's passwords: sources (ffmpeg feeders), relays, the admin interface."""

    source: str
    relay: str
    admin: str


def hub_dir() -> Path:
    return get_settings().data_dir / "icecast"


def load_secrets(folder: Path | None = None) -> Secrets:
    """The hub's passwords, made (random) on first use and kept for its owner only."""
    folder = folder or hub_dir()
    path = folder / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text())
        return Secrets(source=data["source"], relay=data["relay"], admin=data["admin"])
    folder.mkdir(parents=True, exist_ok=True)
    made = Secrets(*(secrets.token_urlsafe(24) for _ in range(3)))
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(made.__dict__, f)
    os.replace(tmp, path)
    return made


@dataclass(frozen=True)
class Upstream:
    """Where a relay's stream comes from, and how the hub pulls it."""

    url: str

    @property
    def fed_by_ffmpeg(self) -> bool:
        """HLS, and https (Icecast 2.4 relays plain http only): an ffmpeg source process."""
        parts = urlsplit(self.url)
        return parts.scheme == "https" or parts.path.lower().endswith((".m3u8", ".m3u"))

    def relay_parts(self) -> tuple[str, int, str]:
        """(host, port, mount with its query) for an Icecast ``<relay>``."""
        parts = urlsplit(self.url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return parts.hostname or "", parts.port or 80, path


@dataclass(frozen=True)
class Mount:
    """One mount of the hub: a relay (its upstream), or a mount fed by a source client
    with its own credentials (an HLS feeder; a live session, issue 24)."""

    name: str
    title: str
    upstream: Upstream | None = None
    source_username: str | None = None
    source_password: str | None = None
    listener_auth: bool = True


def relay_mounts(session: Session) -> list[Mount]:
    """Every relay programme's mount, in a stable order."""
    rows = session.execute(
        select(Programme.station_id, Programme.code, Programme.name, Programme.source_url)
        .where(Programme.source_kind == RELAY, Programme.source_url.is_not(None))
        .order_by(Programme.station_id, Programme.code)
    )
    return [
        Mount(relay_mount(sid, code), name, Upstream(url))
        for sid, code, name, url in rows
        if url is not None
    ]


@dataclass(frozen=True)
class Layout:
    """Where the hub listens, whom it asks about listeners, and where it writes."""

    port: int
    bind: str
    auth_url: str  # loaxa's listener check, e.g. http://127.0.0.1:8000/api/v1/streams/listener
    log_dir: Path
    run_as: tuple[str, str] | None  # (user, group) when started as root
    max_clients: int = 2000
    # What a listener gets at once when it connects: half a second at 64 kbit/s, so that
    # the loudspeakers stay live (a burst is played after the upstream is gone, hiding a
    # dropout's start). Not 0: Icecast 2.4.4 then sends nothing to a listener who joins a
    # mount already on air (checked).
    burst_bytes: int = 4096
    # A live mount: speech at 64 kbit/s, a quarter of a second at once (not 0, see above).
    live_burst_bytes: int = 2048


def runtime_dir(port: int) -> Path:
    """Where the hub's Icecast configuration is written. As root, a folder the unprivileged
    user can read (Icecast re-reads the file on SIGHUP after dropping privileges), whatever
    the data directory's parents allow; else the data directory."""
    if os.geteuid() != 0:
        return hub_dir()
    return Path("/run") / f"loaxa-icecast-{port}"


def share_with_icecast(path: Path, layout: Layout) -> None:
    """As root, let the user Icecast becomes read `path` (a file or a folder), no one else."""
    if layout.run_as is None:
        return
    group = grp.getgrnam(layout.run_as[1])
    os.chown(path, 0, group.gr_gid)
    os.chmod(path, 0o750 if path.is_dir() else 0o640)


def log_dir_for(port: int) -> Path:
    """Where the hub writes its logs: the data directory, or, as root, a folder the
    unprivileged user can reach whatever the data directory's parents allow."""
    if os.geteuid() != 0:
        return hub_dir() / "log"
    return Path("/var/log/icecast2") / f"loaxa-{port}"


def prepare_log_dir(layout: Layout) -> None:
    """Make the log directory; as root, hand it to the user Icecast becomes."""
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    if layout.run_as is not None:
        user = pwd.getpwnam(layout.run_as[0])
        os.chown(layout.log_dir, user.pw_uid, user.pw_gid)
        for child in layout.log_dir.iterdir():
            os.chown(child, user.pw_uid, user.pw_gid)


def default_layout(*, port: int | None = None, auth_url: str | None = None) -> Layout:
    """The layout of the hub loaxa runs itself (`loaxa up`, `loaxa hub`)."""
    settings = get_settings()
    port = port or settings.icecast_port
    return Layout(
        port=port,
        bind="0.0.0.0",
        auth_url=auth_url or f"http://127.0.0.1:8000{LISTENER_AUTH_PATH}",
        log_dir=log_dir_for(port),
        run_as=(ICECAST_USER, ICECAST_GROUP) if os.geteuid() == 0 else None,
    )


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def render(mounts: Sequence[Mount], *, layout: Layout, secrets: Secrets) -> str:
    """The Icecast 2.4 configuration (XML) for these mounts."""
    lines = [
        "<icecast>",
        "  <!-- Written by loaxa (app/streams/config.py); loaxa rewrites it. -->",
        "  " + _el("location", "loaxa"),
        "  <limits>",
        "    " + _el("clients", layout.max_clients),
        "    " + _el("sources", max(len(mounts) * 2, 4) + LIVE_SOURCES),
        "    <queue-size>524288</queue-size>",
        "    <client-timeout>30</client-timeout>",
        "    <header-timeout>15</header-timeout>",
        "    <source-timeout>5</source-timeout>",
        "    " + _el("burst-size", layout.burst_bytes),
        "  </limits>",
        "  <authentication>",
        "    " + _el("source-password", secrets.source),
        "    " + _el("relay-password", secrets.relay),
        "    <admin-user>admin</admin-user>",
        "    " + _el("admin-password", secrets.admin),
        "  </authentication>",
        "  " + _el("hostname", "127.0.0.1"),
        "  " + _el("master-update-interval", RETRY_SECONDS),
        "  <listen-socket>",
        "    " + _el("port", layout.port),
        "    " + _el("bind-address", layout.bind),
        "  </listen-socket>",
        "  <fileserve>0</fileserve>",
    ]
    for m in mounts:
        if m.upstream is not None and not m.upstream.fed_by_ffmpeg:
            host, port, path = m.upstream.relay_parts()
            lines += [
                "  <relay>",
                "    " + _el("server", host),
                "    " + _el("port", port),
                "    " + _el("mount", path),
                "    " + _el("local-mount", m.name),
                "    <on-demand>1</on-demand>",
                "    <relay-shoutcast-metadata>0</relay-shoutcast-metadata>",
                "  </relay>",
            ]
    for m in mounts:
        lines += ['  <mount type="normal">', "    " + _el("mount-name", m.name)]
        lines.append("    " + _el("stream-name", m.title))
        if m.source_username and m.source_password:
            lines.append("    " + _el("username", m.source_username))
            lines.append("    " + _el("password", m.source_password))
        if m.listener_auth:
            lines += [
                '    <authentication type="url">',
                f'      <option name="listener_add" value={quoteattr(layout.auth_url)}/>',
                '      <option name="auth_header" value="icecast-auth-user: 1"/>',
                # A device reconnecting after a drop may find its old connection not yet
                # gone; two clusters may send the same user name. The token decides.
                '      <option name="allow_duplicate_users" value="1"/>',
                "    </authentication>",
            ]
        lines.append("  </mount>")
    # Live sessions (issue 24): one pattern for every session's mount, so that a session
    # opens and closes without rewriting this file. Icecast asks loaxa about each source
    # (stream_auth: the session's own credentials) and listener (checked on Icecast 2.4.4:
    # a normal mount's name may be a pattern; a default mount's may not).
    source_auth = layout.auth_url.replace(LISTENER_AUTH_PATH, SOURCE_AUTH_PATH)
    lines += [
        '  <mount type="normal">',
        "    " + _el("mount-name", LIVE_MOUNTS),
        "    " + _el("stream-name", "Phát trực tiếp"),
        "    " + _el("burst-size", layout.live_burst_bytes),
        '    <authentication type="url">',
        f'      <option name="stream_auth" value={quoteattr(source_auth)}/>',
        f'      <option name="listener_add" value={quoteattr(layout.auth_url)}/>',
        '      <option name="auth_header" value="icecast-auth-user: 1"/>',
        '      <option name="allow_duplicate_users" value="1"/>',
        "    </authentication>",
        "  </mount>",
    ]
    lines += [
        "  <paths>",
        "    <basedir>/usr/share/icecast2</basedir>",
        "    " + _el("logdir", layout.log_dir),
        "    <webroot>/usr/share/icecast2/web</webroot>",
        "    <adminroot>/usr/share/icecast2/admin</adminroot>",
        "  </paths>",
        "  <logging>",
        "    <accesslog>access.log</accesslog>",
        "    <errorlog>error.log</errorlog>",
        "    <loglevel>2</loglevel>",
        "  </logging>",
        "  <security>",
        "    <chroot>0</chroot>",
    ]
    if layout.run_as is not None:
        user, group = layout.run_as
        lines += ["    <changeowner>", "      " + _el("user", user), "      " + _el("group", group)]
        lines.append("    </changeowner>")
    lines += ["  </security>", "</icecast>", ""]
    return "\n".join(lines)
