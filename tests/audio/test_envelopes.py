"""Envelopes measured once and kept: assembly plans from them, and does not trust them when
they are missing, of another standard, or wrong. Real ffmpeg, real files, real store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import scipy.signal

from app.audio.pipeline import (
    EnvelopeCache,
    IngestResult,
    Item,
    assemble,
    envelope_key,
    measure_item,
)
from app.audio.pipeline import envelopes as env
from app.audio.pipeline.gain import standard_key
from app.audio.pipeline.kfilter import K_WEIGHTING_SOS, sosfilt
from app.audio.storage import AudioStore, sha256_file
from app.audio.templates import DEFAULT_TEMPLATES_DIR, template_paths
from tests.audio.test_pipeline import Ingested, assert_on_standard, ebur128

SOUND = {"target_lufs": -16.0, "max_true_peak_dbtp": -1.0, "highpass_hz": 100.0}
STANDARD = standard_key(**SOUND)


def kept(store: AudioStore, label: str, result: IngestResult) -> Item:
    """An ingested file put in the store with its envelopes, as the ingest service does."""
    sha = store.put(result.playout_path)
    path = store.path_for(sha)
    EnvelopeCache(store.envelope_path).put(
        sha, envelope_key(STANDARD), measure_item(path, filtered=True, **SOUND)
    )
    return Item(label, path, sha, filtered=True)


def template_items() -> tuple[Item, Item]:
    intro, outro = template_paths("cchc", DEFAULT_TEMPLATES_DIR)
    assert intro and outro
    return Item("intro", intro, sha256_file(intro)), Item("outro", outro, sha256_file(outro))


def envelope_files(store: AudioStore) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for _, _, path in store.iter_envelopes()}


def assert_same_master(a: Path, b: Path) -> None:
    """Within 0.1 LU and 0.1 dB of true peak, as ffmpeg's ebur128 measures both files."""
    (la, pa), (lb, pb) = ebur128(a), ebur128(b)
    assert la == pytest.approx(lb, abs=0.1)
    assert pa == pytest.approx(pb, abs=0.1)


@pytest.mark.parametrize(
    ("names", "join"),
    [
        (["tone_440", "tone_880", "tone_1320"], {"gap_ms": 700}),
        (["tone_440", "tone_880", "tone_1320"], {"crossfade_ms": 400}),
        ([f"pink30_{i}" for i in range(4)], {"gap_ms": 1000}),
        (["speech", "snare_train", "music", "quiet_speech"], {"gap_ms": 500}),
    ],
)
def test_assembly_from_kept_envelopes_matches_assembly_from_a_full_measurement(
    ingested: Ingested, tmp_path: Path, names: list[str], join: dict
) -> None:
    # The items' envelopes, kept at ingest, joined as the programme lays them out, plan the
    # same master (within 0.1 LU and 0.1 dB) as measuring the joined programme itself; the
    # kept envelopes are read, not measured again.
    store = AudioStore(tmp_path / "store")
    intro, outro = template_items()
    items = [intro, *(kept(store, n, ingested(n)) for n in names), outro]
    cache = EnvelopeCache(store.envelope_path)
    assemble(items, out_path=tmp_path / "first.mp3", envelopes=cache, **join)  # templates' too
    before = envelope_files(store)
    assert len(before) == len(items)
    joined = assemble(items, out_path=tmp_path / "joined.mp3", envelopes=cache, **join)
    assert envelope_files(store) == before  # read, not measured and written again
    full = assemble(items, out_path=tmp_path / "full.mp3", measure_programme=True, **join)
    assert_on_standard(joined.path)
    assert_same_master(joined.path, full.path)
    assert joined.cues == full.cues
    assert joined.duration_ms == full.duration_ms


def test_the_joined_envelopes_bound_the_programmes_own(ingested: Ingested, tmp_path: Path) -> None:
    # Items starting off the 21-frame block grid, with gaps: every programme block's true
    # peak from the joined envelopes is at least the programme's own (the limiter never
    # misses a peak) and at most the neighbouring blocks' (it does not invent one); the
    # loudness they give is the programme's within 0.01 LU.
    from app.audio.pipeline.measure import measure_pcm
    from app.audio.pipeline.programme import Decoder, joined, layout

    store = AudioStore(tmp_path / "store")
    items = [kept(store, n, ingested(n)) for n in ("speech", "tone_880", "snare_train")]
    cache = EnvelopeCache(store.envelope_path)
    item_envs = [cache.get(i.sha256 or "", envelope_key(STANDARD)) for i in items]
    assert all(e is not None for e in item_envs)
    frames = [e.frames for e in item_envs if e]
    gap = 12_345
    spans = layout(frames, gap, 0)
    assert any(start % 21 for start, _ in spans)
    programme = env.join([e for e in item_envs if e], spans, 0)
    pcm = np.concatenate(
        list(joined(Decoder([i.path for i in items], 0.0).chunks(), frames, gap=gap, crossfade=0))
    )
    _, exact = measure_pcm(pcm)
    assert programme.frames == exact.frames == pcm.size
    ours, theirs = programme.tp_db(), exact.tp_db()
    audible = theirs > -60
    assert np.all(ours[audible] >= theirs[audible] - 0.01)
    # Away from the item edges (whose 5 ms de-click ramps the envelopes leave out, keeping
    # the unfaded peak there: an upper bound) it is the programme's own, a block either way.
    edges = np.zeros(ours.size, dtype=bool)
    for start, size in spans:
        for frame in (start, start + size):
            edges[max(0, frame // 21 - 12) : frame // 21 + 13] = True
    widened = np.maximum.reduce([np.roll(theirs, k) for k in (-2, -1, 0, 1, 2)])
    inner = audible & ~edges
    assert np.all(ours[inner] <= widened[inner] + 0.01)
    assert programme.loudness_with(1.0) == pytest.approx(exact.loudness_with(1.0), abs=0.01)


def test_missing_envelopes_are_measured_and_kept(ingested: Ingested, tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "store")
    sha = store.put(ingested("speech").playout_path)
    items = [Item("a", store.path_for(sha), sha, filtered=True), Item("b", store.path_for(sha))]
    result = assemble(
        items, out_path=tmp_path / "m.mp3", envelopes=EnvelopeCache(store.envelope_path)
    )
    assert_on_standard(result.path)
    # Kept under the file's sha256 and the standard's key; an item with no sha256 is measured
    # each time and kept nowhere.
    assert [(s, k) for s, k, _ in store.iter_envelopes()] == [(sha, envelope_key(STANDARD))]


def test_envelopes_of_another_standard_or_wrong_are_measured_again(
    ingested: Ingested, tmp_path: Path
) -> None:
    store = AudioStore(tmp_path / "store")
    cache = EnvelopeCache(store.envelope_path)
    item = kept(store, "speech", ingested("speech"))
    sha = item.sha256 or ""
    key = envelope_key(STANDARD)
    good = cache.get(sha, key)
    assert good is not None
    reference = assemble([item], out_path=tmp_path / "reference.mp3", envelopes=cache)

    # Of another standard: a 150 Hz high-pass is another key, whatever the file says.
    other = envelope_key(standard_key(**{**SOUND, "highpass_hz": 150.0}))
    assert other != key
    assert cache.get(sha, other) is None
    # Not trusted: loud garbage under the right name but another key inside, a truncated
    # file, and envelopes of the right key whose length is not the file's (they would cut
    # the programme in the wrong places).
    louder = env.ItemEnvelopes(good.frames, good.peak_db + 20, good.energy, good.overshoot_db)
    shorter = env.ItemEnvelopes(
        good.frames - 4410, good.peak_db[:-210], good.energy[:-210], good.overshoot_db
    )
    wrong = [
        env.dump(louder, sha256=sha, key=other),
        env.dump(good, sha256=sha, key=key)[:-100],
        env.dump(louder, sha256="0" * 64, key=key),
        env.dump(shorter, sha256=sha, key=key),
    ]
    for n, data in enumerate(wrong):
        store.envelope_path(sha, key).write_bytes(data)
        result = assemble([item], out_path=tmp_path / f"m{n}.mp3", envelopes=cache)
        assert result.duration_ms == reference.duration_ms
        assert result.cues == reference.cues
        assert_same_master(result.path, reference.path)
        again = cache.get(sha, key)
        assert again is not None and again.frames == good.frames  # measured and kept again
        assert np.array_equal(again.peak_db, good.peak_db)


def test_an_envelope_file_round_trips(ingested: Ingested, tmp_path: Path) -> None:
    measured = measure_item(ingested("snare_train").playout_path, **SOUND)
    data = env.dump(measured, sha256="a" * 64, key="0123456789abcdef")
    back = env.load(data, sha256="a" * 64, key="0123456789abcdef")
    assert back is not None
    assert back.frames == measured.frames and back.overshoot_db == measured.overshoot_db
    assert np.array_equal(back.peak_db, measured.peak_db)
    assert np.array_equal(back.energy, measured.energy)
    assert len(data) <= 8 * measured.peak_db.size + 512  # 8 bytes per 21 frames
    assert env.load(data, sha256="b" * 64, key="0123456789abcdef") is None
    assert env.load(b"not an envelope file", sha256="a" * 64, key="0123456789abcdef") is None


def test_the_k_weighting_is_pyloudnorms_without_importing_scipy_signal() -> None:
    # The coefficients are pyloudnorm's at 44.1 kHz; the filter is scipy's sosfilt, to the
    # bit; and measuring does not import scipy.signal (0.6 s, ~80 MB at start-up).
    stages = pyloudnorm.Meter(44_100)._filters.values()
    rows = [np.concatenate([np.asarray(f.b) * f.passband_gain, f.a]) for f in stages]
    assert np.array_equal(K_WEIGHTING_SOS, np.array([row / row[3] for row in rows]))
    x = np.random.default_rng(2).standard_normal(10_000)
    zi = np.random.default_rng(3).standard_normal((2, 2))
    ours, our_zi = sosfilt(K_WEIGHTING_SOS, x.copy(), zi)
    theirs, their_zi = scipy.signal.sosfilt(K_WEIGHTING_SOS, x, zi=zi)
    assert np.array_equal(ours, theirs) and np.array_equal(our_zi, their_zi)
    code = "import sys, app.audio.pipeline; print('scipy.signal' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
