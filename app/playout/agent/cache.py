"""The agent's audio cache: files named by their sha256, verified, downloads resumed."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path

from app.playout.agent.client import PlayoutClient, ServerUnavailable

log = logging.getLogger("loaxa.agent")

_NAME = re.compile(r"^([0-9a-f]{64})\.(mp3|part)$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class CorruptDownload(Exception):
    """A complete download did not have the expected sha256; it has been deleted."""


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's content."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class AudioCache:
    """Audio files under one folder: `<sha>.mp3` when complete and verified, `<sha>.part` before."""

    def __init__(self, root: Path, client: PlayoutClient) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._client = client
        self._verified: set[str] = set()

    def path(self, sha256: str) -> Path:
        """Where the complete file of `sha256` lives."""
        return self.root / f"{sha256}.mp3"

    def part_path(self, sha256: str) -> Path:
        """Where a partial download of `sha256` is kept until it completes."""
        return self.root / f"{sha256}.part"

    def has(self, sha256: str) -> bool:
        """Whether the complete, verified file is here (checked once per process)."""
        path = self.path(sha256)
        if not path.exists():
            self._verified.discard(sha256)
            return False
        if sha256 in self._verified:
            return True
        if file_sha256(path) != sha256:
            log.warning("cached %s does not match its sha256; deleting it", path.name)
            path.unlink(missing_ok=True)
            return False
        self._verified.add(sha256)
        return True

    def fetch(self, sha256: str, url: str, *, budget_s: float | None = None) -> bool:
        """Download `sha256` (resuming a `.part`); True once complete and verified.

        With a budget, stops reading after `budget_s` seconds and keeps the partial file, so
        that a big download never holds up the agent's loop; the next call resumes it.
        Raises CorruptDownload (the file is deleted) or ServerUnavailable/ServerRefused.
        """
        if self.has(sha256):
            return True
        deadline = None if budget_s is None else time.monotonic() + budget_s
        part = self.part_path(sha256)
        have = part.stat().st_size if part.exists() else 0
        with self._client.audio(url, start=have) as response:
            if response.status_code == 416:
                # The partial file is already as long as the file (or longer): check it.
                return self._complete(sha256)
            declared = response.headers.get("X-Content-SHA256")
            if declared and declared.lower() != sha256:
                raise ServerUnavailable(f"the server sent {declared} when asked for {sha256}")
            mode = "ab"
            if response.status_code == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != have:
                    part.unlink(missing_ok=True)
                    raise ServerUnavailable("the server answered a different range; restarting")
                log.info("resuming %s at byte %d", sha256[:12], have)
            else:
                if have:
                    log.info("the server ignored the range; downloading %s again", sha256[:12])
                mode = "wb"
            with part.open(mode) as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
                    if deadline is not None and time.monotonic() > deadline:
                        return False
        return self._complete(sha256)

    def _complete(self, sha256: str) -> bool:
        part = self.part_path(sha256)
        if file_sha256(part) != sha256:
            part.unlink(missing_ok=True)
            raise CorruptDownload(f"the download of {sha256[:12]} did not match its sha256")
        part.replace(self.path(sha256))
        self._verified.add(sha256)
        log.info("cached %s", sha256[:12])
        return True

    def prune(self, keep: set[str]) -> list[str]:
        """Delete cached and partial files whose sha256 is not in `keep`; their names."""
        removed = []
        for path in self.root.iterdir():
            match = _NAME.match(path.name)
            if match and match.group(1) not in keep:
                try:
                    path.unlink(missing_ok=True)
                except PermissionError:
                    # Windows: a file still open (a player being stopped) cannot be deleted
                    # yet; the next housekeeping deletes it.
                    log.debug("cannot delete %s yet", path.name)
                    continue
                self._verified.discard(match.group(1))
                removed.append(path.name)
        if removed:
            log.info("housekeeping removed %d cached files", len(removed))
        return removed
