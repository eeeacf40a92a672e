"""The generated secret key: written once into the data directory, mode 0600, then reused
(by this process, the next one, and processes that start at the same moment)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import MIN_SECRET_LENGTH, SECRET_FILE_NAME, Settings

REPO = Path(__file__).resolve().parents[1]


def test_the_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "var"  # not there yet: created on first use
    settings = Settings(data_dir=data, secret_key=None)
    key = settings.signing_key()
    path = data / SECRET_FILE_NAME
    assert len(key) >= MIN_SECRET_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == key
    written = path.stat().st_mtime_ns

    assert settings.signing_key() == key
    assert Settings(data_dir=data, secret_key=None).signing_key() == key
    assert path.stat().st_mtime_ns == written  # read, never rewritten
    # Another data directory, another key.
    assert Settings(data_dir=tmp_path / "other", secret_key=None).signing_key() != key


def test_a_key_in_the_settings_wins_and_no_file_is_written(tmp_path: Path) -> None:
    key = "k" * MIN_SECRET_LENGTH
    assert Settings(data_dir=tmp_path, secret_key=key).signing_key() == key
    assert not (tmp_path / SECRET_FILE_NAME).exists()
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(data_dir=tmp_path, secret_key="short")


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from app.config import Settings; "
        "print(Settings(data_dir=Path(sys.argv[1]), secret_key=None).signing_key())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(6)
    ]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert keys == {(tmp_path / SECRET_FILE_NAME).read_text(encoding="utf-8")}
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE_NAME]  # no temp file left


def test_a_damaged_key_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE_NAME).write_text("", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"holds no usable key.*remove it"):
        Settings(data_dir=tmp_path, secret_key=None).signing_key()
