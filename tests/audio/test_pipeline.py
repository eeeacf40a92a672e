"""Audio pipeline tests against real ffmpeg: every claim is checked by ffmpeg's own meters."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from app.audio.pipeline import (
    ENCODE_ARGS,
    AudioRejected,
    IngestResult,
    analyse_pcm,
    assemble,
    describe_ms,
    frames_to_ms,
    highpass_args,
    ingest,
    ms_to_frames,
    planned_total_ms,
    probe_duration_ms,
)
from app.audio.pipeline.ffmpeg import (  # pydub's AudioSegment, its warning muted
    EXPORT_PARAMETERS,
    _encode,
    _segment,
    gapless_trim,
)
from app.audio.pipeline.gain import TP_MARGIN_DB
from app.audio.pipeline.measure import ASSUMED_PRIMING, analyse_file, encode_measured
from app.audio.pipeline.programme import Decoder
from app.audio.storage import AudioStore, sha256_file
from app.audio.templates import DEFAULT_TEMPLATES_DIR, load_manifest, template_paths

RATE = 44_100
Ingested = Callable[[str], IngestResult]


# --- ffmpeg's own measurements ---------------------------------------------------------


def ffmpeg_filter_log(path: Path, audio_filter: str) -> str:
    """Run an analysis filter over a file with ffmpeg and return its log."""
    cmd = ["ffmpeg", "-nostdin", "-nostats", "-hide_banner", "-i", str(path)]
    cmd += ["-af", audio_filter, "-f", "null", "-"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stderr


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) from the summary of ffmpeg's
    ``ebur128=peak=true`` ("I: ... LUFS" and "Peak: ... dBFS" under "True peak")."""
    log = ffmpeg_filter_log(path, "ebur128=peak=true")
    summary = log[log.rindex("Summary:") :]
    loudness = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert loudness and peak, summary
    return float(loudness.group(1)), float(peak.group(1))


def ebur128_lufs(path: Path) -> float:
    """Integrated loudness from ffmpeg's ebur128 summary ("I: ... LUFS")."""
    return ebur128(path)[0]


def ebur128_true_peak(path: Path) -> float:
    """True peak (dBTP) from ffmpeg's ebur128 summary."""
    return ebur128(path)[1]


def assert_on_standard(path: Path) -> tuple[float, float]:
    """-16 LUFS +-0.5 LU and true peak <= -1 dBTP, as ffmpeg's ebur128 measures the file."""
    loudness, peak = ebur128(path)
    assert loudness == pytest.approx(-16.0, abs=0.5)
    assert peak <= -1.0
    return loudness, peak


def ffprobe_audio(path: Path) -> dict:
    """ffprobe's view of the first stream and the format."""
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format"]
    info = json.loads(subprocess.run([*cmd, str(path)], capture_output=True, check=True).stdout)
    return {**info["streams"][0], "format_name": info["format"]["format_name"]}


def ffmpeg_decoded_ms(path: Path) -> float:
    """Length of a file as ffmpeg decodes it at its own sample rate (float ms)."""
    rate = int(ffprobe_audio(path)["sample_rate"])
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-f", "s16le", "-"]
    pcm = subprocess.run(cmd, capture_output=True, check=True).stdout
    return len(pcm) / 2 * 1000 / rate


def decode_f32(path: Path) -> np.ndarray:
    """A file decoded by ffmpeg to mono 44.1 kHz float."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "44100"]
    out = subprocess.run([*cmd, "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4")


def dominant_hz(samples: np.ndarray) -> float:
    """Frequency of the strongest FFT bin."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / RATE)[np.argmax(spectrum)])


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS."""
    return 10 * np.log10(max(float(np.mean(np.square(samples, dtype=np.float64))), 1e-20))


def assert_playout_format(path: Path) -> None:
    """MP3, mono, 44.1 kHz, as ffprobe sees it."""
    info = ffprobe_audio(path)
    assert (info["format_name"], info["codec_name"]) == ("mp3", "mp3")
    assert (info["channels"], info["sample_rate"]) == (1, "44100")


# --- time arithmetic -------------------------------------------------------------------


def test_ms_frame_conversions_round_half_up() -> None:
    assert [ms_to_frames(ms) for ms in (0, 1, 5, 10, 1000)] == [0, 44, 221, 441, 44_100]
    assert [frames_to_ms(f) for f in (0, 22, 23, 441, 44_100, 441_000)] == [
        0,
        0,
        1,
        10,
        1000,
        10_000,
    ]
    assert all(frames_to_ms(ms_to_frames(ms)) == ms for ms in range(0, 5000, 7))
    with pytest.raises(ValueError):
        ms_to_frames(-1)


def test_describe_ms_never_contradicts_the_limit() -> None:
    assert describe_ms(400) == "0.4 s"
    assert describe_ms(999) == "0.9 s"  # under a 1 s minimum: rounded down
    assert describe_ms(1000) == "1 s"
    assert describe_ms(20 * 60_000) == "20 min"
    assert describe_ms(21 * 60_000 + 3000, round_up=True) == "21 min 3 s"
    assert describe_ms(20 * 60_000 + 1, round_up=True) == "20 min 1 s"  # over: rounded up


def test_planned_total_ms() -> None:
    assert planned_total_ms([]) == 0
    assert planned_total_ms([1000, 2000, 3000]) == 6000
    assert planned_total_ms([1000, 2000, 3000], gap_ms=500) == 7000
    assert planned_total_ms([1000, 2000, 3000], crossfade_ms=300) == 5400
    assert planned_total_ms([700], crossfade_ms=900) == 700  # nothing to crossfade with
    # The CCHC window is inclusive at both ends: 600 000 and 900 000 ms.
    assert planned_total_ms([5000, 590_000, 5000]) == 600_000
    assert planned_total_ms([5000, 890_000, 5000]) == 900_000


@pytest.mark.parametrize(
    ("durations", "kwargs"),
    [
        ([1000, 2000], {"gap_ms": 100, "crossfade_ms": 100}),
        ([1000, 2000], {"gap_ms": -1}),
        ([1000, -5], {}),
        ([1000, 500, 1000], {"crossfade_ms": 300}),  # middle item needs 2 x 300 ms
        ([200, 1000], {"crossfade_ms": 300}),
    ],
)
def test_planned_total_ms_rejects(durations: list[int], kwargs: dict) -> None:
    with pytest.raises(ValueError):
        planned_total_ms(durations, **kwargs)


# --- loudness meter --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pink", "speech", "wav"])
def test_streaming_meter_matches_pyloudnorm(sources: dict[str, Path], name: str) -> None:
    samples = decode_f32(sources[name])
    ours = analyse_pcm(samples).loudness_lufs
    reference = pyloudnorm.Meter(RATE).integrated_loudness(samples.astype(np.float64))
    assert ours == pytest.approx(reference, abs=0.1)
    int16 = np.clip(np.rint(samples * 32768), -32768, 32767).astype("<i2")
    assert analyse_pcm(int16).loudness_lufs == pytest.approx(ours, abs=0.01)


# --- ingest ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source_format"),
    [
        ("wav", "wav/pcm_s16le"),
        ("flac", "flac/flac"),
        ("ogg", "ogg/opus"),
        ("m4a", "mp4/aac"),
        ("mp3", "mp3/mp3"),
        ("pink", "wav/pcm_s16le"),
    ],
)
def test_ingest_formats(
    sources: dict[str, Path], tmp_path: Path, name: str, source_format: str
) -> None:
    src = sources[name]
    result = ingest(src, work_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [result.playout_path]
    assert result.source_format == source_format
    assert abs(result.duration_ms - ffmpeg_decoded_ms(src)) <= 3
    assert result.duration_ms == frames_to_ms(result.frames)
    assert result.duration_ms == probe_duration_ms(result.playout_path)
    assert_playout_format(result.playout_path)
    loudness, peak = assert_on_standard(result.playout_path)
    assert result.loudness_lufs == pytest.approx(loudness, abs=0.2)
    assert result.true_peak_dbtp == pytest.approx(peak, abs=0.3)
    assert result.true_peak_dbtp <= -1.0
    assert result.limiter_db == 0.0  # the chord and pink noise reach -16 LUFS without it


def test_ingest_peaky_speech_reaches_the_target_through_the_limiter(ingested: Ingested) -> None:
    result = ingested("speech")  # espeak-ng: peak-to-loudness ratio ~19 dB
    assert result.limiter_db > 2.0  # its loudest syllables were pulled down
    assert result.gain_db > -1.0 - result.source_true_peak_dbtp + 2.0  # beyond a peak cap
    loudness, peak = assert_on_standard(result.playout_path)
    assert result.loudness_lufs == pytest.approx(loudness, abs=0.2)
    assert peak >= -1.0 - TP_MARGIN_DB - 0.3  # limited to the ceiling, not far under it


def test_ingest_guarantees_decoded_true_peak_despite_mp3_overshoot(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    # A square wave overshoots after MP3 encoding (Gibbs); the decoded peak must still fit.
    result = ingest(sources["square"], work_dir=tmp_path, target_lufs=-5.0)
    assert result.limiter_db > 3.0
    assert result.encodes > 1  # the first encode peaked over the ceiling: encoded again
    assert ebur128_true_peak(result.playout_path) <= -1.0
    assert result.true_peak_dbtp <= -1.0


def test_ingest_is_gapless_to_the_frame(sources: dict[str, Path], tmp_path: Path) -> None:
    result = ingest(sources["odd_length"], work_dir=tmp_path)
    assert result.frames == 2 * RATE + 123
    assert len(decode_f32(result.playout_path)) == 2 * RATE + 123


def test_ingest_output_is_deterministic(sources: dict[str, Path], tmp_path: Path) -> None:
    first = ingest(sources["pink"], work_dir=tmp_path)
    second = ingest(sources["pink"], work_dir=tmp_path)
    assert sha256_file(first.playout_path) == sha256_file(second.playout_path)


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("text", "not_audio", r"^not an audio file"),
        ("image", "not_audio", r"^not an audio file"),
        ("empty", "empty", r"^audio is empty"),
        ("cut_mp3", "corrupt", r"^audio is corrupt or truncated"),
        ("cut_wav", "corrupt", r"^audio is corrupt or truncated"),
        ("cut_flac", "corrupt", r"^audio is corrupt or truncated"),
        ("cut_ogg", "corrupt", r"^audio is corrupt or truncated"),
        ("cut_m4a", "corrupt", r"^audio is corrupt or truncated"),
        ("cut_m4a_faststart", "corrupt", r"^audio is corrupt or truncated"),
        ("silence", "silent", r"^audio is silent throughout \(below -60 dBFS\)$"),
        ("hiss", "silent", r"^audio is silent throughout \(below -60 dBFS\)$"),
        ("short", "too_short", r"^audio is 0\.5 s long; the minimum is 1 s$"),
    ],
)
def test_ingest_rejects(
    sources: dict[str, Path], tmp_path: Path, name: str, code: str, message: str
) -> None:
    work = tmp_path / "work"
    with pytest.raises(AudioRejected, match=message) as caught:
        ingest(sources[name], work_dir=work)
    assert caught.value.code == code
    assert not work.exists() or not list(work.iterdir())


def test_ingest_rejects_too_long(sources: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(AudioRejected, match=r"^audio is 6 s long; the maximum is 5 s$") as caught:
        ingest(sources["six_seconds"], work_dir=tmp_path, max_ms=5000)
    assert caught.value.code == "too_long"
    assert not list(tmp_path.iterdir())


def test_ingest_rejects_too_long_without_trusted_header(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(AudioRejected, match=r"^audio is 6(\.\d)? s long; the maximum is 3 s$"):
        ingest(sources["six_seconds_adts"], work_dir=tmp_path, max_ms=3000)
    assert not list(tmp_path.iterdir())


def test_ingest_min_and_max_are_inclusive(sources: dict[str, Path], tmp_path: Path) -> None:
    result = ingest(sources["six_seconds"], work_dir=tmp_path, min_ms=6000, max_ms=6000)
    assert result.duration_ms == 6000


# --- assembly --------------------------------------------------------------------------


def _tone_items(ingested: Ingested) -> list[tuple[str, Path]]:
    """The three ingested test tones as assembly items."""
    return [(name, ingested(name).playout_path) for name in ("tone_440", "tone_880", "tone_1320")]


def test_assemble_with_gap(ingested: Ingested, tmp_path: Path) -> None:
    items = _tone_items(ingested)
    durations = [ingested(label).duration_ms for label, _ in items]
    out = tmp_path / "master.mp3"
    result = assemble(items, out_path=out, gap_ms=700)
    planned = planned_total_ms(durations, gap_ms=700)
    assert list(tmp_path.iterdir()) == [out]
    assert abs(result.duration_ms - planned) <= 2
    assert abs(ffmpeg_decoded_ms(out) - planned) <= 50
    expected = [0, durations[0] + 700, durations[0] + durations[1] + 1400]
    assert [c.offset_ms for c in result.cues] == pytest.approx(expected, abs=1)
    assert [c.duration_ms for c in result.cues] == durations
    audio = decode_f32(out)
    for cue, freq in zip(result.cues, (440, 880, 1320), strict=True):
        start = ms_to_frames(cue.offset_ms + 100)
        middle = audio[start : start + ms_to_frames(cue.duration_ms - 200)]
        assert dominant_hz(middle) == pytest.approx(freq, abs=2)
    for before, after in zip(result.cues, result.cues[1:], strict=False):
        gap = audio[
            ms_to_frames(before.offset_ms + before.duration_ms + 20) : ms_to_frames(
                after.offset_ms - 20
            )
        ]
        assert gap.size > 0.6 * RATE and rms_dbfs(gap) < -60
    assert_playout_format(out)
    assert_on_standard(out)


def test_assemble_with_crossfade(ingested: Ingested, tmp_path: Path) -> None:
    items = _tone_items(ingested)
    durations = [ingested(label).duration_ms for label, _ in items]
    result = assemble(items, out_path=tmp_path / "master.mp3", crossfade_ms=400)
    planned = planned_total_ms(durations, crossfade_ms=400)
    assert planned == sum(durations) - 800
    assert abs(result.duration_ms - planned) <= 2
    assert abs(ffmpeg_decoded_ms(result.path) - planned) <= 50
    expected = [0, durations[0] - 400, durations[0] + durations[1] - 800]
    assert [c.offset_ms for c in result.cues] == pytest.approx(expected, abs=1)
    audio = decode_f32(result.path)
    overlap = audio[ms_to_frames(durations[0] - 400) : ms_to_frames(durations[0])]
    spectrum = np.abs(np.fft.rfft(overlap))
    freqs = np.fft.rfftfreq(overlap.size, 1 / RATE)
    for freq in (440, 880):  # both tones sound during the crossfade
        assert spectrum[np.abs(freqs - freq) < 5].max() > 0.1 * spectrum.max()
    assert rms_dbfs(overlap) > -30  # no dip to silence
    assert_on_standard(result.path)


def test_assemble_two_minute_programme_with_templates(ingested: Ingested, tmp_path: Path) -> None:
    intro, outro = template_paths("cchc", DEFAULT_TEMPLATES_DIR)
    assert intro and outro
    segments = [(f"segment {i}", ingested(f"pink30_{i}").playout_path) for i in range(4)]
    items = [("intro", intro), *segments, ("outro", outro)]
    durations = [probe_duration_ms(path) for _, path in items]
    result = assemble(items, out_path=tmp_path / "cchc.mp3", gap_ms=1000)
    planned = planned_total_ms(durations, gap_ms=1000)
    assert 120_000 < planned < 140_000
    assert result.planned_ms == planned
    assert abs(result.duration_ms - planned) <= 3
    assert abs(ffmpeg_decoded_ms(result.path) - planned) <= 50
    assert [c.label for c in result.cues] == ["intro", *[f"segment {i}" for i in range(4)], "outro"]
    assert result.cues[-1].offset_ms + result.cues[-1].duration_ms == pytest.approx(planned, abs=3)
    assert result.gain_db == 0.0  # items are normalised: no master gain needed
    loudness, peak = assert_on_standard(result.path)
    assert result.loudness_lufs == pytest.approx(loudness, abs=0.2)
    assert result.true_peak_dbtp == pytest.approx(peak, abs=0.3)


def test_assemble_normalises_a_quiet_master(sources: dict[str, Path], tmp_path: Path) -> None:
    items = [("a", sources["pink"]), ("b", sources["wav"])]  # raw uploads around -29 LUFS
    result = assemble(items, out_path=tmp_path / "m.mp3")
    assert result.gain_db > 5
    loudness, peak = assert_on_standard(result.path)
    # measured on the decoded MP3, as ffmpeg measures it
    assert result.loudness_lufs == pytest.approx(loudness, abs=0.2)
    assert result.true_peak_dbtp == pytest.approx(peak, abs=0.3)


@pytest.mark.parametrize(
    ("names", "kwargs", "message"),
    [
        (
            ["tone_440", "tone_880"],
            {"gap_ms": 100, "crossfade_ms": 100},
            "cannot crossfade and gap",
        ),
        ([], {}, "nothing to assemble"),
        (["tone_440", "tone_880"], {"crossfade_ms": 2500}, "shorter than its crossfades"),
        (["tone_440", "text"], {}, "cannot decode"),
    ],
)
def test_assemble_rejects(
    sources: dict[str, Path], tmp_path: Path, names: list[str], kwargs: dict, message: str
) -> None:
    items = [(name, sources[name]) for name in names]
    with pytest.raises(ValueError, match=message):
        assemble(items, out_path=tmp_path / "m.mp3", **kwargs)
    assert not list(tmp_path.iterdir())


def test_assemble_names_a_missing_item(sources: dict[str, Path], tmp_path: Path) -> None:
    items = [("ok", sources["pink"]), ("gone", tmp_path / "deleted.mp3")]
    with pytest.raises(ValueError, match=r"^item 1 \(gone\): cannot decode"):
        assemble(items, out_path=tmp_path / "out" / "m.mp3")
    assert not list((tmp_path / "out").iterdir())


# --- the pydub layer -------------------------------------------------------------------


def decode_s16(path: Path, *filters: str) -> bytes:
    """A file decoded by ffmpeg directly to mono 44.1 kHz 16-bit PCM (through filters)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), *filters, "-ac", "1"]
    cmd += ["-ar", "44100", "-f", "s16le", "-"]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def test_the_piped_encode_is_pydubs_export_and_the_direct_ffmpeg_encode(tmp_path: Path) -> None:
    # Every encoder flag applies to the PCM piped in chunks: the same bytes as ffmpeg fed
    # the same PCM at once, and as pydub's export with EXPORT_PARAMETERS (used before).
    rng = np.random.default_rng(3)
    pcm = (rng.standard_normal(3 * RATE + 77) * 3000).astype("<i2")
    direct = tmp_path / "direct.mp3"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "s16le", "-ar", "44100", "-ac", "1"]
    subprocess.run([*cmd, "-i", "-", *ENCODE_ARGS, str(direct)], input=pcm.tobytes(), check=True)
    piped = tmp_path / "piped.mp3"
    _encode([pcm[:RATE], pcm[RATE : 2 * RATE + 5], pcm[2 * RATE + 5 :]], piped)
    exported = tmp_path / "exported.mp3"
    _segment(pcm.tobytes()).export(
        str(exported), format="mp3", codec="libmp3lame", parameters=list(EXPORT_PARAMETERS)
    ).close()
    assert piped.read_bytes() == direct.read_bytes() == exported.read_bytes()
    assert not piped.read_bytes().startswith(b"ID3")
    assert len(decode_s16(piped)) == 2 * pcm.size  # gapless to the frame


def test_a_failed_encode_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "out.mp3"  # ffmpeg cannot create it
    with pytest.raises(RuntimeError, match="ffmpeg MP3 encode failed"):
        _encode([np.zeros(RATE, dtype="<i2")], out)
    assert not out.exists()


@pytest.mark.parametrize("frames", [1000, 3 * RATE + 77, 10 * RATE + 4096, 21 * RATE + 5])
def test_measuring_while_encoding_equals_measuring_the_stored_file(
    tmp_path: Path, frames: int
) -> None:
    # The tee'd encode stores the same bytes as the plain one, and the figures taken from
    # the decode of its piped copy (priming and padding trimmed) are, to the last bit, those
    # of decoding the stored file, also when its name holds the tee muxer's own syntax.
    rng = np.random.default_rng(frames)
    pcm = (rng.standard_normal(frames) * 4000).astype("<i2")
    chunks = [pcm[i : i + 4 * RATE] for i in range(0, pcm.size, 4 * RATE)]
    plain, teed = tmp_path / "plain.mp3", tmp_path / "it's [a|b]:c.mp3"
    _encode(chunks, plain)
    measured = encode_measured(chunks, teed)
    assert teed.read_bytes() == plain.read_bytes()
    assert measured == analyse_file(plain)
    assert measured.frames == len(decode_s16(plain)) // 2 == frames
    trim = gapless_trim(plain)
    assert trim is not None and trim[0] == ASSUMED_PRIMING


def test_measuring_while_encoding_falls_back_when_the_priming_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Should another LAME prime differently, the header says so and the stored file is
    # measured the slow way: never figures from a misaligned stream.
    import app.audio.pipeline.measure as measure

    pcm = (np.random.default_rng(9).standard_normal(2 * RATE) * 4000).astype("<i2")
    monkeypatch.setattr(measure, "ASSUMED_PRIMING", ASSUMED_PRIMING + 1)
    out = tmp_path / "out.mp3"
    assert measure.encode_measured([pcm], out) == analyse_file(out)
    headerless = tmp_path / "raw.mp3"
    headerless.write_bytes(out.read_bytes()[2000:])  # from inside the stream: no Xing frame
    assert gapless_trim(headerless) is None


def test_a_failed_measurement_while_encoding_leaves_no_file(tmp_path: Path) -> None:
    # The measuring thread fails half-way: the encode stops, its error reaches the caller,
    # and no file is left behind.
    def broken(_: bytes) -> None:
        raise ValueError("measuring failed")

    out = tmp_path / "out.mp3"
    pcm = np.zeros(30 * RATE, dtype="<i2")
    with pytest.raises(ValueError, match="measuring failed"):
        _encode([pcm[i : i + RATE] for i in range(0, pcm.size, RATE)], out, decoded=broken)
    assert not out.exists()


def test_assembly_items_are_decoded_in_one_stream_as_each_alone(
    ingested: Ingested, sources: dict[str, Path]
) -> None:
    # Three items (an MP3 twice, a stereo 48 kHz WAV) decoded by one ffmpeg into one stream:
    # the samples of each item's own ffmpeg decode through the same high-pass filter (none
    # at 0 Hz), mono 44.1 kHz 16-bit, one after the other, the filter starting afresh on
    # every item.
    playout = ingested("tone_440").playout_path
    paths = [playout, sources["wav"], playout]
    for highpass_hz in (0.0, 100.0):
        stream = b"".join(c.tobytes() for c in Decoder(paths, highpass_hz).chunks())
        alone = [decode_s16(path, *highpass_args(highpass_hz)) for path in paths]
        assert stream == b"".join(alone)
    assert decode_s16(playout, *highpass_args(100)) != decode_s16(playout)


def test_parallel_loudness_equals_sequential(sources: dict[str, Path]) -> None:
    # Measuring a long programme in two threads, each part's filter warmed up on the second
    # before it, gives the sequential result (to float rounding) for every figure.
    speech = np.frombuffer(decode_s16(sources["speech"]), dtype="<i2")
    rng = np.random.default_rng(5)
    noise = (rng.standard_normal(70 * RATE + 123) * 2000).astype("<i2")
    programme = np.concatenate([noise, speech, np.zeros(RATE // 3, "<i2"), noise[::-1]])
    one = analyse_pcm(programme)
    two = analyse_pcm(programme, threads=2)
    assert two.frames == one.frames == programme.size
    assert two.peak_dbfs == one.peak_dbfs
    assert two.true_peak_dbtp == one.true_peak_dbtp
    assert two.loudness_range_lu == pytest.approx(one.loudness_range_lu, abs=1e-9)
    assert two.loudness_lufs == pytest.approx(one.loudness_lufs, abs=1e-9)
    assert two.max_rms_dbfs == pytest.approx(one.max_rms_dbfs, abs=1e-9)


def test_assembly_rejects_a_corrupt_mp3_item(ingested: Ingested, tmp_path: Path) -> None:
    data = bytearray(ingested("tone_880").playout_path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(range(256)) * 11 + bytes(184)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(data)
    items = [("ok", ingested("tone_440").playout_path), ("broken", broken)]
    with pytest.raises(ValueError, match=r"^item 1 \(broken\): cannot decode"):
        assemble(items, out_path=tmp_path / "out" / "m.mp3")
    assert not list((tmp_path / "out").iterdir())


# --- storage ---------------------------------------------------------------------------


def test_store_dedupes_and_lays_out_by_hash(ingested: Ingested, tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "store")
    src = ingested("tone_440").playout_path
    copy = tmp_path / "copy.mp3"
    copy.write_bytes(src.read_bytes())
    digest = store.put(src)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest() == sha256_file(src)
    assert store.put(copy) == digest
    path = store.path_for(digest)
    assert path == tmp_path / "store" / digest[:2] / f"{digest}.mp3"
    assert store.exists(digest) and path.read_bytes() == src.read_bytes()
    other = store.put(ingested("tone_880").playout_path)
    assert other != digest
    assert sorted(store.iter_all()) == sorted([(digest, path), (other, store.path_for(other))])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
    with store.open(digest) as f:
        assert f.read() == src.read_bytes()
    assert store.delete(other) and not store.exists(other) and not store.delete(other)


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "/" + "a" * 63, "", "ab/../cd"],
)
def test_store_rejects_bad_sha(tmp_path: Path, bad: str) -> None:
    store = AudioStore(tmp_path)
    with pytest.raises(ValueError):
        store.path_for(bad)
    with pytest.raises(ValueError):
        store.exists(bad)


def test_store_rejects_bad_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AudioStore(tmp_path).path_for("a" * 64, ext="../mp3")


# --- templates -------------------------------------------------------------------------


def test_templates_manifest_and_files() -> None:
    manifest = load_manifest(DEFAULT_TEMPLATES_DIR)
    assert {"cchc", "village-weekly"} <= set(manifest)
    for code in ("cchc", "village-weekly"):
        intro, outro = template_paths(code, DEFAULT_TEMPLATES_DIR)
        assert intro is not None and outro is not None
        for path in (intro, outro, DEFAULT_TEMPLATES_DIR / manifest[code]["ident"]):
            assert path.stat().st_size < 150_000
            assert 2000 <= probe_duration_ms(path) <= 10_000
            assert_playout_format(path)
    assert template_paths("no-such-programme", DEFAULT_TEMPLATES_DIR) == (None, None)


def test_templates_reject_bad_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"cchc": {"intro": "../../etc/passwd"}}')
    with pytest.raises(ValueError):
        load_manifest(tmp_path)


# --- a full-length programme -----------------------------------------------------------

NEWS_VI = (
    "Ủy ban nhân dân xã Xuân Phúc thông báo kết quả cải cách hành chính quý một. "
    "Bộ phận tiếp nhận và trả kết quả đã giải quyết đúng hạn các hồ sơ của người dân. "
    "Đề nghị bà con thực hiện thủ tục trực tuyến trên cổng dịch vụ công quốc gia. "
    "Mọi ý kiến phản ánh xin gửi về văn phòng ủy ban hoặc gọi đường dây nóng của xã. "
)


@pytest.mark.slow
def test_a_twelve_minute_master_of_speech_is_on_standard(tmp_path: Path) -> None:
    # Eight spoken items (espeak-ng at different amplitudes and speeds, ~80 s each), each
    # ingested and kept in a store with its envelopes, as the upload service keeps them,
    # joined between the CCHC intro and outro: the master, as ffmpeg's ebur128 measures
    # it, is at -16 LUFS +-0.5 LU with a true peak <= -1 dBTP, as long as planned to the
    # MP3 frame, and within 0.1 LU and 0.1 dB of the master planned from a measurement of
    # the whole joined programme.
    from app.audio.pipeline import EnvelopeCache, Item, envelope_key, measure_item
    from app.audio.pipeline.gain import standard_key

    sound = {"target_lufs": -16.0, "max_true_peak_dbtp": -1.0, "highpass_hz": 100.0}
    key = envelope_key(standard_key(**sound))
    store = AudioStore(tmp_path / "store")
    cache = EnvelopeCache(store.envelope_path)
    items: list[Item] = []
    voices = [(100, 150), (40, 160), (180, 140), (100, 175), (70, 150), (100, 165), (25, 150)]
    for n, (amplitude, speed) in enumerate([*voices, (130, 155)]):
        wav = tmp_path / f"news{n}.wav"
        cmd = ["espeak-ng", "-v", "vi", "-a", str(amplitude), "-s", str(speed), "-w", str(wav)]
        subprocess.run([*cmd, NEWS_VI * 5], check=True)
        sha = store.put(ingest(wav, work_dir=tmp_path).playout_path)
        path = store.path_for(sha)
        cache.put(sha, key, measure_item(path, filtered=True, **sound))
        items.append(Item(f"news {n}", path, sha, filtered=True))
    intro, outro = template_paths("cchc", DEFAULT_TEMPLATES_DIR)
    assert intro and outro
    items = [Item("intro", intro), *items, Item("outro", outro)]
    result = assemble(items, out_path=tmp_path / "master.mp3", gap_ms=500, envelopes=cache)
    assert 600_000 <= result.duration_ms <= 900_000
    loudness, peak = assert_on_standard(result.path)
    assert result.loudness_lufs == pytest.approx(loudness, abs=0.2)
    assert result.true_peak_dbtp == pytest.approx(peak, abs=0.3)
    cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries"]
    frames = subprocess.run(
        [*cmd, "frame=nb_samples", "-of", "csv=p=0", str(result.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    samples = sum(int(f) for f in frames if f.strip())
    assert abs(samples - ms_to_frames(result.planned_ms)) <= 1152
    full = assemble(items, out_path=tmp_path / "full.mp3", gap_ms=500, measure_programme=True)
    full_loudness, full_peak = ebur128(full.path)
    assert loudness == pytest.approx(full_loudness, abs=0.1)
    assert peak == pytest.approx(full_peak, abs=0.1)
    assert result.cues == full.cues


def test_the_limiters_moving_minimum_and_mean_are_scipys() -> None:
    # The limiter's curve is smoothed by a moving minimum and mean of its own (scipy's
    # filters were half of its planning time): the same minima to the bit, the same means
    # to float32 rounding, edges repeated as scipy's "nearest" mode repeats them.
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    from app.audio.pipeline.limiter import _moving_mean, _moving_min

    x = np.random.default_rng(4).standard_normal(10_007).astype(np.float32)
    for reach in (1, 2, 3):
        width = 2 * reach + 1
        assert np.array_equal(_moving_min(x, reach), minimum_filter1d(x, width, mode="nearest"))
        mean = uniform_filter1d(x, width, mode="nearest")
        assert np.allclose(_moving_mean(x, reach), mean, rtol=0, atol=1e-6)
