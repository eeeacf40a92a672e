"""Real audio for the pipeline tests, made with ffmpeg, numpy and espeak-ng (no mocks)."""

from __future__ import annotations

import re
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.audio.pipeline import IngestResult, ingest

RATE = 44_100
SPEECH_VI = "Kính thưa bà con, Ủy ban nhân dân xã thông báo lịch tiếp công dân trong tháng này."
# A stereo 48 kHz chord with a little noise: exercises downmix and resampling.
CHORD = (
    "aevalsrc=0.10*sin(2*PI*440*t)+0.05*sin(2*PI*660*t)+0.01*(2*random(0)-1)"
    "|0.10*sin(2*PI*550*t)+0.05*sin(2*PI*825*t)+0.01*(2*random(1)-1):s=48000:d=4"
)
FORMAT_ARGS = {
    "wav": ("-c:a", "pcm_s16le"),
    "flac": ("-c:a", "flac"),
    "ogg": ("-c:a", "libopus", "-b:a", "96k"),
    "m4a": ("-c:a", "aac", "-b:a", "128k"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100"),
}
TONES = {"tone_440": (440, 2.0), "tone_880": (880, 3.0), "tone_1320": (1320, 2.5)}


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, failing the test run if it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def lavfi(spec: str, out: Path, *codec: str) -> Path:
    """Render a lavfi source graph into a file."""
    ffmpeg("-f", "lavfi", "-i", spec, *codec, str(out))
    return out


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Write float samples (full scale 1.0) as a 16-bit mono WAV."""
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def tone(freq: float, seconds: float, amplitude: float = 0.2) -> np.ndarray:
    """A sine tone."""
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * RATE)) / RATE)


def snare_train(seconds: float = 8.0, seed: int = 4) -> np.ndarray:
    """Snare-like hits four times a second: a noise burst and a 190 Hz body decaying with a
    30 ms time constant, peaking at -1 dBFS (peak-to-loudness ratio ~20 dB)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * RATE))
    hit_frames = round(0.12 * RATE)
    t = np.arange(hit_frames) / RATE
    for start in range(0, out.size - RATE // 4, RATE // 4):
        burst = 0.6 * rng.standard_normal(hit_frames) + 0.5 * np.sin(2 * np.pi * 190 * t)
        out[start : start + hit_frames] += burst * np.exp(-t / 0.03)
    return 0.89 * out / np.abs(out).max()


def music_like(seconds: float = 10.0) -> np.ndarray:
    """A sustained chord with a slow tremolo (peak-to-loudness ratio ~11 dB)."""
    t = np.arange(round(seconds * RATE)) / RATE
    partials = [(0.2, 220.0), (0.1, 277.2), (0.1, 329.6), (0.05, 440.0), (0.03, 880.0)]
    chord = sum(a * np.sin(2 * np.pi * f * t) for a, f in partials)
    return chord * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))


def at_loudness(src: Path, out: Path, lufs: float) -> Path:
    """src scaled by ffmpeg to an integrated loudness of lufs, as its ebur128 measures it."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(src)]
    log = subprocess.run([*cmd, "-af", "ebur128", "-f", "null", "-"], capture_output=True)
    summary = log.stderr.decode()[log.stderr.decode().rindex("Summary:") :]
    measured = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    ffmpeg("-i", str(src), "-af", f"volume={lufs - measured:.2f}dB", str(out))
    return out


def cut_in_half(src: Path, out: Path) -> Path:
    """The first half of a file's bytes, as a broken upload would arrive."""
    data = src.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def _format_variants(d: Path) -> dict[str, Path]:
    """The chord in every accepted format, plus each of them cut in half."""
    out = {ext: lavfi(CHORD, d / f"chord.{ext}", *args) for ext, args in FORMAT_ARGS.items()}
    fast = ("-movflags", "+faststart")
    out["m4a_faststart"] = lavfi(CHORD, d / "chord_fs.m4a", *FORMAT_ARGS["m4a"], *fast)
    for name, path in list(out.items()):
        out[f"cut_{name}"] = cut_in_half(path, d / f"cut_{path.name}")
    return out


def _signals(d: Path) -> dict[str, Path]:
    """Noise, speech, silence and other single-purpose clips."""
    out = {
        "pink": lavfi("anoisesrc=c=pink:a=0.05:r=44100:d=6:seed=7", d / "pink.wav"),
        "silence": lavfi("anullsrc=r=44100:cl=mono", d / "silence.wav", "-t", "3"),
        "hiss": lavfi("anoisesrc=c=white:a=0.0003:r=44100:d=3:seed=3", d / "hiss.wav"),
        "short": lavfi("sine=f=440:r=44100:d=0.5", d / "short.wav"),
        "six_seconds": lavfi("sine=f=440:r=44100:d=6", d / "six_seconds.wav"),
        # Raw ADTS AAC: ffprobe can only estimate its duration from the bitrate.
        "six_seconds_adts": lavfi("sine=f=440:d=6", d / "six.aac", "-c:a", "aac", "-f", "adts"),
        "odd_length": write_wav(d / "odd.wav", tone(500, (2 * RATE + 123) / RATE)),
        "square": write_wav(d / "square.wav", 0.5 * np.sign(tone(1000, 3.0) + 1e-9)),
    }
    out["speech"] = d / "speech.wav"  # espeak-ng at its default amplitude, 22.05 kHz
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(out["speech"]), SPEECH_VI], check=True)
    out["quiet_speech"] = at_loudness(out["speech"], d / "quiet_speech.wav", -35.0)
    out["snare_train"] = write_wav(d / "snare_train.wav", snare_train())
    out["music"] = write_wav(d / "music.wav", music_like())
    # Hiss just above the silence threshold: accepted, but too quiet to be lifted to target.
    out["faint"] = lavfi("anoisesrc=c=white:a=0.002:r=44100:d=4:seed=9", d / "faint.wav")
    for name, (freq, seconds) in TONES.items():
        out[name] = write_wav(d / f"{name}.wav", tone(freq, seconds))
    for i, amplitude in enumerate((0.02, 0.05, 0.1, 0.03)):
        spec = f"anoisesrc=c=pink:a={amplitude}:r=44100:d=30:seed={i + 1}"
        out[f"pink30_{i}"] = lavfi(spec, d / f"pink30_{i}.wav")
    return out


def _not_audio(d: Path) -> dict[str, Path]:
    """Files that are not audio: text and an image named .mp3, and an empty file."""
    text = d / "text.mp3"
    text.write_text("Đây không phải là âm thanh.\n" * 40, encoding="utf-8")
    empty = d / "empty.mp3"
    empty.write_bytes(b"")
    image = lavfi("color=c=red:s=16x16", d / "image.png", "-frames:v", "1")
    return {"text": text, "empty": empty, "image": image.rename(d / "image.mp3")}


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test source file by name (generated once per test run)."""
    d = tmp_path_factory.mktemp("audio-sources")
    return {**_format_variants(d), **_signals(d), **_not_audio(d)}


@pytest.fixture(scope="session")
def ingested(
    sources: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], IngestResult]:
    """Ingest a named source once per run and return the (cached) result."""
    work = tmp_path_factory.mktemp("ingested")
    cache: dict[str, IngestResult] = {}

    def get(name: str) -> IngestResult:
        if name not in cache:
            cache[name] = ingest(sources[name], work_dir=work)
        return cache[name]

    return get
