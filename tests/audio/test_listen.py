"""The light listening copy: made after the playout file, a quarter of its size or less, as
long as its source, served to staff and podcast listeners, never to the playout agents.
Real ffmpeg, real store, the API through TestClient (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app import clock
from app.audio import listen
from app.audio import service as audio
from app.audio.jobs import housekeeping
from app.audio.pipeline.listen import LISTEN_SHARE, make_listen_copy
from app.db import unit_of_work
from app.schedule.models import Broadcast
from tests.audio.test_pipeline import Ingested
from tests.helpers import make_station, staff
from tests.playout.helpers import approved_segment, broadcast, device, pink, short_windows


def decoded(path: Path) -> tuple[float, dict]:
    """(length in ms as ffmpeg decodes the file, honouring its edit list; its audio stream)."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries"]
    out = subprocess.run(
        [*cmd, "frame=nb_samples:stream=codec_name,profile,channels,sample_rate",
         "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    info = json.loads(out)
    stream = info["streams"][0]
    samples = sum(int(f["nb_samples"]) for f in info["frames"])
    return samples * 1000 / int(stream["sample_rate"]), {**stream, **info["format"]}


@pytest.mark.parametrize("name", ["speech", "pink30_2", "music", "snare_train"])
def test_the_listening_copy_is_light_and_as_long_as_its_source(
    ingested: Ingested, tmp_path: Path, name: str
) -> None:
    # AAC-LC, mono, in MP4 with its index first; at most a quarter of the playout file's
    # size; and as long as the playout file within 50 ms, as ffmpeg decodes it.
    source = ingested(name)
    copy = make_listen_copy(
        source.playout_path, tmp_path / "listen.m4a", duration_ms=source.duration_ms
    )
    assert copy.size_bytes <= LISTEN_SHARE * source.playout_path.stat().st_size
    length_ms, stream = decoded(copy.path)
    assert abs(length_ms - source.duration_ms) <= 50
    assert (stream["codec_name"], stream["profile"], stream["channels"]) == ("aac", "LC", 1)
    assert "mp4" in stream["format_name"]
    head = copy.path.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # index first


@pytest.fixture
def data_dir(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from app.config import get_settings

    monkeypatch.setenv("LOAXA_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield get_settings().data_dir
    get_settings.cache_clear()


def test_segments_and_masters_get_a_listen_url_after_their_playout_file(
    client: TestClient, data_dir: Path, sources: dict[str, Path], tmp_path: Path
) -> None:
    ids = make_station()
    h = staff(client, ids["station_id"])
    short_windows()
    speech = approved_segment(client, h, sources["speech"], title="Tin 1")
    noise = approved_segment(client, h, pink(tmp_path / "pink.mp3", 20), title="Tin 2")
    for segment in (speech, noise):
        # Made after the answer that stored the playout file (that answer said null).
        got = client.get(f"/api/v1/segments/{segment['id']}", headers=h["viewer"]).json()
        assert got["listen_url"] == f"/api/v1/audio/{_copy_of(got['audio_sha256'])}"
        full = client.get(f"/api/v1/audio/{got['audio_sha256']}", headers=h["viewer"])
        light = client.get(got["listen_url"], headers=h["viewer"])
        assert full.status_code == light.status_code == 200
        assert full.headers["content-type"] == "audio/mpeg"
        assert light.headers["content-type"] == "audio/mp4"
        assert len(light.content) <= len(full.content) / 4
    other = staff_of_another_station(client)
    assert client.get(got["listen_url"], headers=other).status_code == 404

    b = broadcast(
        client, h, station_id=ids["station_id"], starts_at="2030-03-15T10:00:00+07:00",
        segment_ids=[speech["id"], noise["id"]],
    )  # fmt: skip
    master = b["master"]
    assert master["listen_url"] == f"/api/v1/audio/{_copy_of(master['sha256'])}"
    rundown = client.get(f"/api/v1/broadcasts/{b['id']}/rundown", headers=h["viewer"]).json()
    assert rundown["master"]["listen_url"] == master["listen_url"]
    light = client.get(master["listen_url"], headers=h["viewer"])
    assert light.status_code == 200
    path = data_dir / "light.m4a"
    path.write_bytes(light.content)
    length_ms, _ = decoded(path)
    assert abs(length_ms - master["duration_ms"]) <= 50
    # The playout agents keep the full file: a device never gets the light copy.
    pc = device(client, h["admin"], ids["station_id"])
    assert client.get(f"/api/v1/audio/{master['sha256']}", headers=pc["h"]).status_code == 200
    assert client.get(master["listen_url"], headers=pc["h"]).status_code == 404
    playlist = client.get(
        "/api/v1/playout/playlist", params={"date": "2030-03-15"}, headers=pc["h"]
    ).json()
    assert [i["sha256"] for i in playlist["items"]] == [master["sha256"]]

    # Once aired, the podcast's episode is the light copy.
    with unit_of_work() as session:
        session.execute(update(Broadcast).where(Broadcast.id == b["id"]).values(status="aired"))
    feed = feedparser.parse(client.get(f"/api/v1/stations/{ids['station_id']}/podcast.xml").content)
    (enclosure,) = feed.entries[0].enclosures
    assert enclosure.href.endswith(f"/podcast/{b['id']}.m4a")
    assert (enclosure.type, int(enclosure.length)) == ("audio/mp4", len(light.content))
    episode = client.get(enclosure.href)  # public: no token
    assert episode.status_code == 200 and episode.content == light.content
    assert episode.headers["content-type"] == "audio/mp4"


def staff_of_another_station(client: TestClient) -> dict[str, str]:
    from app.accounts.models import Role
    from tests.helpers import login, make_user

    other = make_station(name="Xã Khác")
    make_user("stranger1", Role.viewer, other["station_id"])
    return login(client, "stranger1")


def _copy_of(sha256: str) -> str:
    from sqlalchemy import select

    from app.audio.models import AudioAsset

    with unit_of_work(write=False) as session:
        copy = session.scalar(select(AudioAsset.listen_sha256).where(AudioAsset.sha256 == sha256))
    assert copy, f"no listening copy of {sha256}"
    return str(copy)


def test_the_job_makes_missing_copies_and_housekeeping_keeps_them(
    client: TestClient, data_dir: Path, ingested: Ingested
) -> None:
    # A file stored before listening copies existed gets one from the scheduler's job;
    # housekeeping keeps it (and the envelopes of files still named, at the current key)
    # and deletes envelopes nothing names or kept under another key.
    result = ingested("speech")
    store = audio.store()
    sha = store.put(result.playout_path)
    with unit_of_work() as session:
        audio.register_asset(
            session, sha256=sha, **audio.asset_fields(result, sha), origin="upload"
        )
    audio.keep_envelopes(sha)
    assert listen.make_missing() == 1
    assert listen.make_missing() == 0  # idempotent
    copy = _copy_of(sha)
    stray = store.envelope_path("f" * 64, audio.envelope_key())
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(store.envelope_path(sha, audio.envelope_key()).read_bytes())
    stale = store.envelope_path(sha, "0" * 16)
    stale.write_bytes(b"measured for another standard")
    old = (clock.now() - timedelta(days=3)).timestamp()
    for path in store.root.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    housekeeping(clock.now())
    assert store.path_for(sha).is_file()
    assert store.path_for(copy, "m4a").is_file()
    assert store.envelope_path(sha, audio.envelope_key()).is_file()
    assert not stray.exists() and not stale.exists()
