"""Generate the intro/outro/ident templates in audio_templates/ from code.

Each template is a synthetic chime (numpy: decaying bell partials) joined with Vietnamese
speech from espeak-ng (``espeak-ng -v vi``), then normalised by ``app.audio.pipeline.ingest``
into the playout format (MP3 V2, mono, 44.1 kHz, high-passed, -16 LUFS, true peak <= -1
dBTP through the pipeline's own limiter). Also writes manifest.json and README.md. Output is
deterministic for a given espeak-ng / ffmpeg / LAME version.

Usage: .venv/bin/python scripts/make_audio_templates.py [--out audio_templates]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.audio.pipeline import RATE, IngestResult, ingest  # noqa: E402
from app.config import get_settings  # noqa: E402

MAX_BYTES = 150_000
VOICE = "vi"
SPEED_WPM = 140

NOTES = {"G4": 392.00, "C5": 523.25, "E5": 659.25, "G5": 783.99, "C6": 1046.50}


@dataclass(frozen=True)
class Template:
    """One template: chime notes before and/or after a spoken line."""

    name: str
    text: str
    chime_before: tuple[str, ...] = ()
    chime_after: tuple[str, ...] = ()


TEMPLATES = (
    Template(
        "cchc_intro", "Chuyên mục cải cách hành chính.", chime_before=("C5", "E5", "G5", "C6")
    ),
    Template(
        "cchc_outro",
        "Chuyên mục cải cách hành chính đến đây là kết thúc. Cảm ơn quý vị đã theo dõi.",
        chime_after=("C6", "G5", "E5", "C5"),
    ),
    Template(
        "village_intro",
        "Bản tin hằng tuần của thôn. Kính chào bà con.",
        chime_before=("G4", "C5", "E5"),
    ),
    Template(
        "village_outro",
        "Bản tin hằng tuần của thôn xin tạm dừng. Chúc bà con mạnh khỏe.",
        chime_after=("E5", "C5", "G4"),
    ),
    Template("station_ident", "Đài truyền thanh xã.", chime_before=("G5", "C6")),
)

MANIFEST = {
    "cchc": {"intro": "cchc_intro.mp3", "outro": "cchc_outro.mp3", "ident": "station_ident.mp3"},
    "village-weekly": {
        "intro": "village_intro.mp3",
        "outro": "village_outro.mp3",
        "ident": "station_ident.mp3",
    },
}


def bell(freq: float, seconds: float) -> np.ndarray:
    """One bell-like note: three decaying partials with a 5 ms attack."""
    t = np.arange(int(seconds * RATE)) / RATE
    partials = [(1.0, 1.0, 3.0), (2.0, 0.35, 5.0), (3.01, 0.12, 8.0)]
    note = np.zeros_like(t)
    for multiple, amplitude, decay in partials:
        note += amplitude * np.exp(-decay * t) * np.sin(2 * np.pi * freq * multiple * t)
    note[: int(0.005 * RATE)] *= np.linspace(0, 1, int(0.005 * RATE))
    return note


def chime(names: tuple[str, ...], step: float = 0.22, ring: float = 0.9) -> np.ndarray:
    """Notes struck every `step` seconds, each ringing `ring` seconds, overlapping."""
    out = np.zeros(int((step * (len(names) - 1) + ring) * RATE))
    for i, name in enumerate(names):
        start = int(i * step * RATE)
        note = bell(NOTES[name], ring)
        out[start : start + note.size] += note
    out[-int(0.05 * RATE) :] *= np.linspace(1, 0, int(0.05 * RATE))
    return 0.25 * out / np.max(np.abs(out))


def speak(text: str, tmp: Path) -> np.ndarray:
    """Vietnamese speech from espeak-ng, as float samples at 44.1 kHz mono."""
    wav = tmp / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(SPEED_WPM), "-w", str(wav), text], check=True
    )
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-i",
        str(wav),
        "-ac",
        "1",
        "-ar",
        str(RATE),
        "-f",
        "f32le",
        "-",
    ]
    pcm = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(pcm, dtype="<f4").astype(np.float64) * 0.5


def silence(seconds: float) -> np.ndarray:
    """Digital silence."""
    return np.zeros(int(seconds * RATE))


def compose(template: Template, tmp: Path) -> np.ndarray:
    """Chime, pause, speech, pause, chime (whichever parts the template has)."""
    parts = [silence(0.15)]
    if template.chime_before:
        parts += [chime(template.chime_before), silence(0.2)]
    parts.append(speak(template.text, tmp))
    if template.chime_after:
        parts += [silence(0.25), chime(template.chime_after)]
    parts.append(silence(0.3))
    return np.concatenate(parts)


def write_wav(samples: np.ndarray, path: Path) -> None:
    """16-bit mono 44.1 kHz WAV."""
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def build(template: Template, out_dir: Path, tmp: Path) -> IngestResult:
    """Render one template and normalise it into out_dir/<name>.mp3."""
    raw = tmp / f"{template.name}.wav"
    write_wav(compose(template, tmp), raw)
    settings = get_settings()
    result = ingest(
        raw,
        work_dir=tmp,
        target_lufs=settings.target_lufs,
        max_true_peak_dbtp=settings.max_true_peak_dbtp,
        highpass_hz=settings.highpass_hz,
    )
    dest = out_dir / f"{template.name}.mp3"
    shutil.move(result.playout_path, dest)
    dest.chmod(0o644)
    size = dest.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{dest} is {size} bytes, over the {MAX_BYTES} byte budget")
    return result


def tool_version(cmd: list[str], words: int) -> str:
    """The first words of a tool's version output."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return " ".join(out.split()[:words])


def readme(results: dict[str, IngestResult], out_dir: Path) -> str:
    """README.md text describing how each file was made and how to regenerate it."""
    rows = []
    for t in TEMPLATES:
        r = results[t.name]
        chimes = " → ".join(
            filter(None, [" ".join(t.chime_before), "speech", " ".join(t.chime_after)])
        )
        size = (out_dir / f"{t.name}.mp3").stat().st_size
        rows.append(
            f"| `{t.name}.mp3` | {chimes} | {t.text} | {r.duration_ms} | "
            f"{r.loudness_lufs:.1f} | {r.true_peak_dbtp:.1f} | {r.limiter_db:.1f} | "
            f"{size // 1000} |"
        )
    return README.format(
        rows="\n".join(rows),
        espeak=tool_version(["espeak-ng", "--version"], 4),
        ffmpeg=tool_version(["ffmpeg", "-version"], 3),
        voice=VOICE,
        speed=SPEED_WPM,
    )


README = """# Audio templates

Intros, outros and the station ident used when assembling broadcasts. Every file here is
generated by code; do not edit them by hand.

`manifest.json` maps a programme code to `{{"intro": file, "outro": file, "ident": file}}`
(read it with `app.audio.templates.load_manifest` / `template_paths`).

| File | Structure | Spoken text | ms | LUFS | true peak dBTP | limiter dB | KB |
|------|-----------|-------------|---:|-----:|---------------:|-----------:|---:|
{rows}

How each file is made (`scripts/make_audio_templates.py`):

1. **Chime**: numpy bell notes (partials at 1×, 2× and 3.01× the note frequency with
   exponential decays, 5 ms attack), struck every 0.22 s and ringing 0.9 s. Rising notes
   open a programme, falling notes close it.
2. **Speech**: `espeak-ng -v {voice} -s {speed} -w speech.wav "<text>"` (Vietnamese,
   northern voice), resampled to 44.1 kHz mono by ffmpeg.
3. **Join**: the parts are joined with short pauses and written as a 16-bit WAV.
4. **Normalise**: `app.audio.pipeline.ingest`, as for every upload, turns the WAV into the
   playout format: high-passed (`LOAXA_HIGHPASS_HZ`), MP3 (LAME V2, gapless header), mono,
   44.1 kHz, -16 LUFS integrated with a true peak <= -1 dBTP. espeak-ng speech is very
   peaky (peak-to-loudness ratio ~19 dB): the pipeline's true-peak limiter pulls its
   loudest syllables down by the "limiter dB" column. The table shows the values measured
   on the files.

Regenerate (from the repository root):

    .venv/bin/python scripts/make_audio_templates.py

Generated with: {espeak}; {ffmpeg}. Output is deterministic for a given tool version.
"""


def main() -> None:
    """Build all templates, the manifest and the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "audio_templates")
    out_dir: Path = parser.parse_args().out
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        results = {t.name: build(t, out_dir, Path(tmp_name)) for t in TEMPLATES}
    manifest = json.dumps(MANIFEST, indent=2, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(manifest, encoding="utf-8")
    (out_dir / "README.md").write_text(readme(results, out_dir), encoding="utf-8")
    for name, r in results.items():
        print(
            f"{name}: {r.duration_ms} ms, {r.loudness_lufs:.1f} LUFS, "
            f"true peak {r.true_peak_dbtp:.2f} dBTP, limiter {r.limiter_db:.1f} dB"
        )


if __name__ == "__main__":
    main()
