"""Jinja2 texts for the opening and closing of the CCHC column and village announcements."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.audio.templates import DEFAULT_TEMPLATES_DIR
from app.text import nfc

TEXTS = ("cchc_opening", "cchc_closing", "village_opening", "village_closing")


def render_text(
    name: str,
    *,
    station: str,
    month: int,
    year: int,
    hotline: str | None = None,
    village: str | None = None,
    templates_dir: Path = DEFAULT_TEMPLATES_DIR,
) -> str:
    """The template's text with the station's name, the month and the hotline filled in."""
    if name not in TEXTS:
        raise ValueError(f"unknown text template {name!r}; known: {', '.join(TEXTS)}")
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        undefined=StrictUndefined,
        autoescape=False,  # plain text read aloud, never HTML
        keep_trailing_newline=False,
    )
    text = env.get_template(f"{name}.txt.j2").render(
        station=station, month=month, year=year, hotline=hotline, village=village
    )
    return nfc(text)
