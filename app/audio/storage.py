"""Content-addressed audio storage: every file is named by the sha256 of its bytes.

Layout: ``root/ab/abcdef….mp3`` where ``ab`` are the first two hex digits of the digest.
Beside a file, what was measured on it (``root/ab/abcdef….<key>.env``: its envelopes,
``pipeline.envelopes``), one per measuring key; not content itself, so ``iter_all`` leaves
it out and ``iter_envelopes`` lists it.
Writes go to a temp file in the destination directory and are published with
``os.replace``, so readers never see a partial file; identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BLOCK_SIZE = 1 << 20  # 1 MiB
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_STORED_NAME = re.compile(r"([0-9a-f]{64})\.([a-z0-9]{1,8})")
_KEY = re.compile(r"[0-9a-f]{16}")
_ENVELOPE_NAME = re.compile(r"([0-9a-f]{64})\.([0-9a-f]{16})\.env")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def _check(sha256: str, ext: str) -> None:
    """Reject anything but 64 lowercase hex digits and a short alphanumeric extension."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    if not isinstance(ext, str) or not _EXT.fullmatch(ext):
        raise ValueError(f"bad file extension: {ext!r}")


class AudioStore:
    """Files stored once under root, addressed by the sha256 of their content."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, ext: str = "mp3") -> Path:
        """Where the file with this digest lives (whether or not it exists)."""
        _check(sha256, ext)
        return self.root / sha256[:2] / f"{sha256}.{ext}"

    def exists(self, sha256: str, ext: str = "mp3") -> bool:
        """True if content with this digest is stored."""
        return self.path_for(sha256, ext).is_file()

    def find(self, sha256: str) -> Path | None:
        """The stored file with this digest, whatever its extension (originals keep theirs);
        None if there is none."""
        _check(sha256, "mp3")
        shard = self.root / sha256[:2]
        found = sorted(p for p in shard.glob(f"{sha256}.*") if _STORED_NAME.fullmatch(p.name))
        return found[0] if found else None

    def open(self, sha256: str, ext: str = "mp3") -> BinaryIO:
        """Open stored content for reading (FileNotFoundError if absent)."""
        return self.path_for(sha256, ext).open("rb")

    def put(self, src: Path, ext: str = "mp3") -> str:
        """Store a copy of src (atomically, once per content) and return its sha256."""
        _check("0" * 64, ext)
        digest = sha256_file(src)
        dest = self.path_for(digest, ext)
        if dest.is_file():
            return digest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{digest[:12]}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                copied = _copy_hashing(Path(src), out)
            if copied != digest:
                raise RuntimeError(f"{src} changed while it was being stored")
            tmp.chmod(0o644)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest

    def delete(self, sha256: str, ext: str = "mp3") -> bool:
        """Remove stored content; False if it was not there."""
        try:
            self.path_for(sha256, ext).unlink()
        except FileNotFoundError:
            return False
        return True

    def envelope_path(self, sha256: str, key: str) -> Path:
        """Where the envelopes of the file with this digest, measured under key, are kept."""
        _check(sha256, "mp3")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"bad envelope key: {key!r}")
        return self.root / sha256[:2] / f"{sha256}.{key}.env"

    def iter_envelopes(self) -> Iterator[tuple[str, str, Path]]:
        """Every kept envelope file as (sha256, key, path)."""
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if not (shard.is_dir() and re.fullmatch(r"[0-9a-f]{2}", shard.name)):
                continue
            for path in sorted(shard.glob("*.env")):
                match = _ENVELOPE_NAME.fullmatch(path.name)
                if match and match.group(1).startswith(shard.name) and path.is_file():
                    yield match.group(1), match.group(2), path

    def iter_all(self) -> Iterator[tuple[str, Path]]:
        """Every stored file as (sha256, path), skipping temp files and strays."""
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if not (shard.is_dir() and re.fullmatch(r"[0-9a-f]{2}", shard.name)):
                continue
            for path in sorted(shard.iterdir()):
                match = _STORED_NAME.fullmatch(path.name)
                if match and match.group(1).startswith(shard.name) and path.is_file():
                    yield match.group(1), path


def _copy_hashing(src: Path, out: BinaryIO) -> str:
    """Copy src into out in 1 MiB blocks, fsync it, and return the sha256 of what was copied."""
    digest = hashlib.sha256()
    with src.open("rb") as f:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
            out.write(block)
    out.flush()
    os.fsync(out.fileno())
    return digest.hexdigest()
