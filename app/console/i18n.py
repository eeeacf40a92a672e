"""The console's languages: Vietnamese by default, English on request.

Rules:
- Message ids are the Vietnamese text itself, so Vietnamese needs no catalog and a
  missing English translation shows Vietnamese, never an empty label.
- The English catalog is `locale/en/LC_MESSAGES/messages.po`, committed as text and
  compiled in memory the first time it is needed (no binary .mo in the repository).
  `scripts/console_messages.py` refreshes it from the templates and the Python code.
- The person's choice lives in the `loaxa_lang` cookie; Accept-Language is ignored on
  purpose: a commune's shared office PC may have an English browser.
- Dates and times are written as Vietnamese write them (16/03/2024, 17:00) in both
  languages, durations as mm:ss, decimals with the language's separator.
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from app.durations import clock_format

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "loaxa_lang"

_current: ContextVar[str] = ContextVar("console_language", default=DEFAULT_LANGUAGE)


@lru_cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The compiled catalog for `lang` (Vietnamese: the message ids themselves)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT_LANGUAGE or not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf)


def language_of(cookie: str | None) -> str:
    """The language named by the cookie, else Vietnamese."""
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


def set_language(lang: str) -> None:
    """Use `lang` for the rest of this request (a context variable: thread and task safe)."""
    _current.set(language_of(lang))


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    """`message` in the request's language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a module-level string for extraction (Babel knows N_); translate where shown."""
    return message


# --- formats ------------------------------------------------------------------------------


def format_date(value: datetime | None, tz: ZoneInfo) -> str:
    """16/03/2024 in the station's time zone."""
    return value.astimezone(tz).strftime("%d/%m/%Y") if value else ""


def format_datetime(value: datetime | None, tz: ZoneInfo) -> str:
    """16/03/2024 17:00 in the station's time zone."""
    return value.astimezone(tz).strftime("%d/%m/%Y %H:%M") if value else ""


def format_month(month: str | None) -> str:
    """'2024-03' as Vietnamese write it: 03/2024."""
    if not month or len(month) != 7:
        return month or ""
    return f"{month[5:]}/{month[:4]}"


def format_duration(ms: int | None) -> str:
    """Milliseconds as mm:ss ("09:47"; minutes may pass 59), rounded as app.durations does."""
    if ms is None:
        return ""
    return clock_format(ms).zfill(5)


def format_number(value: float | None, digits: int = 1) -> str:
    """A decimal with the language's separator (−16,0 in Vietnamese)."""
    if value is None:
        return ""
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=_current.get())
