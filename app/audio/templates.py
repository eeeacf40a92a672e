"""Intro/outro/ident templates per programme, described by ``audio_templates/manifest.json``.

The manifest maps a programme code to ``{"intro": file, "outro": file, "ident": file}``;
file names are relative to the manifest's directory and any of them may be null.
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "audio_templates"
ROLES = ("intro", "outro", "ident")


def load_manifest(templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> dict:
    """Read and validate manifest.json: {programme_code: {role: file name or None}}."""
    manifest = json.loads((Path(templates_dir) / "manifest.json").read_text(encoding="utf-8"))
    if not isinstance(manifest, dict):
        raise ValueError("manifest.json must be a JSON object")
    for code, entry in manifest.items():
        if not isinstance(entry, dict) or set(entry) - set(ROLES):
            raise ValueError(f"manifest entry {code!r} must only have keys {ROLES}")
        for role, name in entry.items():
            if name is not None and (not isinstance(name, str) or Path(name).name != name):
                raise ValueError(f"manifest {code}.{role} must be a bare file name or null")
    return manifest


def template_path(
    programme_code: str, role: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR
) -> Path | None:
    """Path of one template (role: intro, outro or ident); None if the programme has none."""
    if role not in ROLES:
        raise ValueError(f"unknown template role {role!r}")
    name = load_manifest(templates_dir).get(programme_code, {}).get(role)
    if name is None:
        return None
    path = Path(templates_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"template {programme_code}.{role} is missing: {path}")
    return path


def template_paths(
    programme_code: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR
) -> tuple[Path | None, Path | None]:
    """(intro, outro) paths for a programme; None where it has no such template."""
    return (
        template_path(programme_code, "intro", templates_dir),
        template_path(programme_code, "outro", templates_dir),
    )
