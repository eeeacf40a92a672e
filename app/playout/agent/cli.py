"""`loaxa-agent`: the playout agent's own command, for PCs that have only the agent installed.

The same options as `loaxa agent`, plus `--check`; standard library only (argparse), so that
the light install needs neither typer nor the server's packages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app import __version__
from app.playout.agent.config import default_config_path


def parser() -> argparse.ArgumentParser:
    """The command line of `loaxa-agent`."""
    p = argparse.ArgumentParser(
        prog="loaxa-agent",
        description="loaxa playout agent: plays the day's playlist on this playout PC. "
        "`loaxa-agent live --source URL` feeds a live session from this PC's input.",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"agent config file (default: {default_config_path()})",
    )
    p.add_argument("--dry-run", action="store_true", help="log instead of playing")
    p.add_argument(
        "--check",
        action="store_true",
        help="pull the playlist once, download one file, play one second of it, and exit",
    )
    p.add_argument("--version", action="version", version=f"loaxa-agent {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the agent (or the check, or `live`); the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["live"]:
        from app.playout.agent.live import main as live_main

        return live_main(argv[1:])
    args = parser().parse_args(argv)
    config = args.config or default_config_path()
    if args.check:
        from app.playout.agent.check import check

        return check(config, say=lambda line: print(line, flush=True))
    from app.playout.agent import run_agent

    run_agent(config, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
