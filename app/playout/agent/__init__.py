"""The playout agent (`loaxa agent`): runs on each playout PC and plays the day's playlist."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from app.playout.agent.config import AgentConfig, ConfigError, load_config
from app.playout.agent.journal import Journal, JournalLocked
from app.playout.agent.loop import Agent, utc_now
from app.playout.agent.player import DryRunPlayer, Player, PlayerError, SubprocessPlayer

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
    "load_config",
    "run_agent",
]

log = logging.getLogger("loaxa.agent")


def run_agent(config_path: Path, *, dry_run: bool = False) -> None:
    """Run the agent until SIGTERM or SIGINT; with `dry_run`, log instead of playing.

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

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        agent.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
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
