"""The playout agent (`loaxa agent`, or `loaxa-agent` alone): plays the day's playlist.

It runs on each playout PC, Linux or Windows. Nothing on its import path needs the server's
dependencies: httpx, pydantic, tzdata and the standard library (tests/playout/test_portable.py
checks it), so that it installs alone from a small offline bundle (scripts/build_agent.py).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from app.playout.agent.config import AgentConfig, ConfigError, load_config
from app.playout.agent.journal import Journal, JournalLocked
from app.playout.agent.loop import Agent, utc_now
from app.playout.agent.player import DryRunPlayer, Player, PlayerError, SubprocessPlayer

# The signals that stop the agent cleanly: SIGTERM (systemd's stop, `kill`), SIGINT (Ctrl+C)
# and, on Windows only, SIGBREAK (Ctrl+Break). Missing names are skipped.
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGBREAK")

__all__ = [
    "Agent",
    "AgentConfig",
    "ConfigError",
    "DryRunPlayer",
    "Journal",
    "JournalLocked",
    "Player",
    "PlayerError",
    "SubprocessPlayer",
    "install_stop_handlers",
    "load_config",
    "run_agent",
]

log = logging.getLogger("loaxa.agent")


def install_stop_handlers(stop: Callable[[], None]) -> list[int]:
    """Make each stop signal this system has call `stop`; the signals handled.

    `stop` must only set a flag: the agent's loop checks it at least every half second,
    then records what was playing as interrupted and stops the player before it exits.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop()

    handled = []
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, handler)
            handled.append(int(signum))
    return handled


def run_agent(config_path: Path, *, dry_run: bool = False) -> None:
    """Run the agent until a stop signal; with `dry_run`, log instead of playing.

    A dry run still pulls playlists and caches audio, but plays nothing, keeps its journal
    in memory and sends no as-run events.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # httpx logs every request at INFO: an emergency poll every 5 s would flood the journal.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load_config(config_path)
        player: Player = (
            DryRunPlayer(utc_now) if dry_run else SubprocessPlayer(config.player_command)
        )
        agent = Agent(config, player=player, dry_run=dry_run)
    except (ConfigError, JournalLocked, ValueError, OSError) as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc

    install_stop_handlers(agent.request_stop)
    log.info(
        "agent started%s: server %s, cache %s, journal %s",
        " (dry run)" if dry_run else "",
        config.server_url,
        config.cache_dir,
        ":memory:" if dry_run else config.journal,
    )
    try:
        agent.run()
    finally:
        agent.close()
        log.info("agent stopped")
        sys.stdout.flush()
