"""The backup archive: a tar.gz whose members are listed, with their size and sha256, in a
manifest written last (so the archive is written in one pass).

Reading is all or nothing: every member is extracted into a staging directory and checked
against the manifest before anything is restored. A truncated or altered archive, an
unexpected or missing member, or an audio file whose content does not hash to its name is
refused with a message saying which.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

FORMAT = "loaxa-backup/1"
MANIFEST = "manifest.json"
DATABASE_MEMBERS = {"sqlite": "database/loaxa.sqlite3", "postgresql": "database/loaxa.sql"}
SECRET_MEMBER = "secret_key"
_AUDIO = re.compile(r"audio/([0-9a-f]{2})/(\1[0-9a-f]{62})\.[a-z0-9]{1,8}")
BLOCK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Member:
    """A file to put in the archive under `name`."""

    name: str
    path: Path


def audio_member(path: Path) -> str:
    """The archive name of a stored audio file: its place in the store."""
    return f"audio/{path.parent.name}/{path.name}"


class _Hashing(io.RawIOBase):
    """Reads a file through, hashing what is read."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


def write_archive(out: Path, members: list[Member], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the archive to `out` (mode 0600: it holds the secret key and everyone's data),
    whole or not at all; the manifest as written."""
    entries: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            # Level 1: the audio (most of it) is MP3 already; more effort buys nothing.
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
                for member in members:
                    stat = member.path.stat()
                    info = tarfile.TarInfo(member.name)
                    info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
                    with member.path.open("rb") as fh:
                        reader = _Hashing(fh)
                        tar.addfile(info, reader)
                    sha = reader.digest.hexdigest()
                    entries.append({"path": member.name, "size": stat.st_size, "sha256": sha})
                manifest = {**manifest, "format": FORMAT, "members": entries}
                data = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return manifest


def _allowed(name: str) -> bool:
    if name in (MANIFEST, SECRET_MEMBER) or name in DATABASE_MEMBERS.values():
        return True
    return _AUDIO.fullmatch(name) is not None


def extract_verified(archive: Path, dest: Path) -> dict[str, Any]:
    """Extract `archive` into `dest` and check every member against the manifest; the
    manifest. Raises BackupError, naming the problem, for anything amiss."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    got: dict[str, tuple[int, str]] = {}
    manifest_bytes: bytes | None = None
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for info in tar:
                name = info.name
                if not info.isfile() or not _allowed(name) or ".." in name.split("/"):
                    raise BackupError(f"{archive}: unexpected member {name!r}; not a loaxa backup")
                if name in got or (name == MANIFEST and manifest_bytes is not None):
                    raise BackupError(f"{archive}: member {name!r} appears twice")
                source = tar.extractfile(info)
                assert source is not None
                if name == MANIFEST:
                    manifest_bytes = source.read()
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                size = 0
                with target.open("wb") as out:
                    while block := source.read(BLOCK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
                got[name] = (size, digest.hexdigest())
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the disk, not the archive
        raise BackupError(
            f"{archive} is truncated or damaged ({exc}); nothing was restored"
        ) from exc
    if manifest_bytes is None:
        raise BackupError(f"{archive} has no {MANIFEST}: truncated, or not a loaxa backup")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise BackupError(f"{archive}: its {MANIFEST} is damaged ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: not a {FORMAT} archive")
    _check_members(archive, manifest, got)
    return manifest


def _check_members(
    archive: Path, manifest: dict[str, Any], got: dict[str, tuple[int, str]]
) -> None:
    listed = {m["path"]: (m["size"], m["sha256"]) for m in manifest.get("members", [])}
    if missing := sorted(set(listed) - set(got)):
        raise BackupError(
            f"{archive} lacks {len(missing)} member(s) its manifest lists, e.g. {missing[0]}"
        )
    if extra := sorted(set(got) - set(listed)):
        raise BackupError(f"{archive} holds {extra[0]}, which its manifest does not list")
    for name, (size, sha) in sorted(got.items()):
        if (size, sha) != listed[name]:
            raise BackupError(
                f"{archive}: {name} does not match its manifest (altered or damaged); "
                "nothing was restored"
            )
        match = _AUDIO.fullmatch(name)
        if match and match.group(2) != sha:
            raise BackupError(f"{archive}: {name} does not hash to its name; nothing was restored")
    database = manifest.get("database", {}).get("member")
    if database not in got:
        raise BackupError(f"{archive} holds no database")
