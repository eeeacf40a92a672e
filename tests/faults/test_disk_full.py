"""A full disk while audio is written: a real `loaxa serve` whose data directory is a tiny
tmpfs, mounted in a mount namespace of the test's own (`unshare -m`, as root), so nothing
outside the test sees it.

An upload that cannot be received, or whose files cannot be stored, is answered 507 with a
message naming the full disk; the segment keeps its audio and version, the store holds only
complete files (each hashes to its name), no scratch file is left, and once there is room
again uploads work without a restart.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.accounts.models import Role
from tests.faults.procs import env_with, loaxa_argv, serving
from tests.helpers import PASSWORD, make_station, make_user
from tests.playout.helpers import pink

TMPFS_BYTES = 4 * 1024 * 1024


def _can_mount_tmpfs() -> bool:
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as where:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"],
            capture_output=True,
            check=False,
        )
    return probe.returncode == 0


pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root and mount namespaces"),
]


def _wav(path: Path, seconds: float) -> Path:
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(int(44_100 * seconds)) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(44_100)
        out.writeframes(samples.tobytes())
    return path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_full_disk_while_writing_audio_is_507_and_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    ids = make_station()
    make_user("bientap", Role.editor, ids["station_id"])
    data = tmp_path / "data"
    data.mkdir()
    serve = " ".join(loaxa_argv("serve", "--host", "127.0.0.1", "--port", "{port}"))
    argv = [
        "unshare", "-m", "sh", "-c",
        f"mount -t tmpfs -o size={TMPFS_BYTES} tmpfs {data} && exec {serve}",
    ]  # fmt: skip
    with serving(tmp_path / "serve.log", env=env_with(LOAXA_DATA_DIR=str(data)), argv=argv) as srv:
        # The tmpfs as the server sees it, from outside its namespace.
        inside = Path(f"/proc/{srv.proc.pid}/root") / data.relative_to("/")
        assert not _files(data), "the tmpfs must not be visible outside the namespace"
        base = srv.url
        r = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bientap", "password": PASSWORD}
        )
        editor = {"Authorization": f"Bearer {r.json()['access_token']}"}
        seg = httpx.post(
            f"{base}/api/v1/segments",
            json={"title": "Tin CCHC", "programme": "cchc", "topic": "progress"},
            headers=editor,
        ).json()
        audio_url = f"{base}/api/v1/segments/{seg['id']}/audio"

        def upload(path: Path) -> httpx.Response:
            with path.open("rb") as fh:
                return httpx.put(
                    audio_url, files={"file": (path.name, fh)}, headers=editor, timeout=120
                )

        first = upload(pink(tmp_path / "first.mp3", 3))
        assert first.status_code == 200, first.text
        deadline = time.monotonic() + 60  # its listening copy is made after the answer
        while True:
            before = httpx.get(f"{base}/api/v1/segments/{seg['id']}", headers=editor).json()
            if before["listen_url"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert before["listen_url"]
        stored_before = _files(inside / "audio")

        # 2.6 MB: received, decoded and encoded, but there is no room to keep the upload.
        # 5.3 MB: not even received.
        for seconds, step in ((30, "could not be stored"), (60, "could not be received")):
            wav = _wav(tmp_path / f"{seconds}s.wav", seconds)
            r = upload(wav)
            assert r.status_code == 507, (seconds, r.status_code, r.text)
            assert "disk is full" in r.json()["detail"] and step in r.json()["detail"]
            now = httpx.get(f"{base}/api/v1/segments/{seg['id']}", headers=editor).json()
            assert now == before
            # Nothing half-written: every stored file is whole, no temp or scratch file
            # (envelope files are named after the audio they describe, not their content).
            for path in _files(inside / "audio"):
                if path.suffix == ".env":
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                assert path.name.split(".")[0] == digest, path
            assert not [p for p in _files(inside) if p.suffix in (".tmp", ".part")]
            assert not list((inside / "tmp").iterdir())
        assert _files(inside / "audio") == stored_before
        audio = httpx.get(f"{base}/api/v1/audio/{before['audio_sha256']}", headers=editor)
        assert audio.status_code == 200
        assert hashlib.sha256(audio.content).hexdigest() == before["audio_sha256"]

        # Room again (nothing was left behind): the next upload works, no restart.
        again = upload(pink(tmp_path / "again.mp3", 4, seed=2))
        assert again.status_code == 200, again.text
        assert again.json()["audio_sha256"] != before["audio_sha256"]
        assert srv.proc.poll() is None
        assert "Traceback" not in srv.output()
