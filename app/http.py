"""HTTP details every router shares: ETags, If-Match, format negotiation, query dates.

Two kinds of ETag: a resource with a version (a segment) sends its version ('"3"') and
takes it back in If-Match for optimistic writes; a computed body (a playlist, the
emergency poll) sends a hash of the body and answers 304 to If-None-Match.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime

from app.errors import Invalid, PreconditionFailed

M3U_TYPES = ("audio/x-mpegurl", "audio/mpegurl", "application/vnd.apple.mpegurl")


def version_etag(version: int) -> str:
    """The ETag of a versioned resource: its version, quoted."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version named by an If-Match header ('"3"', 'W/"3"'); None when absent or '*'."""
    if value is None or value.strip() == "*":
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise PreconditionFailed(f"If-Match {value!r} is not an ETag of this resource")
    return int(raw)


def expected_version(if_match: str | None, body_version: int | None = None) -> int | None:
    """The version a write expects, from If-Match or the body's `version`; 412 if they differ."""
    header = parse_if_match(if_match)
    if header is not None and body_version is not None and header != body_version:
        raise PreconditionFailed("If-Match and the version field disagree")
    return header if header is not None else body_version


def strong_etag(body: bytes) -> str:
    """A strong ETag: the body's hash."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match semantics (weak comparison, lists, "*")."""
    if not if_none_match:
        return False
    tag = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def wants_m3u(format_: str | None, accept: str | None) -> bool:
    """?format=m3u (or m3u8), else an Accept header naming an M3U type; ?format=json wins."""
    if format_ is not None:
        value = format_.strip().lower()
        if value in ("m3u", "m3u8"):
            return True
        if value == "json":
            return False
        raise Invalid(f"format: must be json or m3u, not {format_!r}")
    if not accept:
        return False
    return any(t in accept.lower() for t in M3U_TYPES)


# Every date and time the API takes lies in these years (a plan, a report, an as-run):
# outside them a value is a typo or a probe, and the far ones (0001, 9999) overflow when
# moved to another time zone.
MIN_YEAR, MAX_YEAR = 2000, 2100


def _within_years(value: datetime) -> datetime:
    try:
        utc_year = value.astimezone(UTC).year
    except OverflowError:
        utc_year = value.year
    if not (MIN_YEAR <= value.year <= MAX_YEAR and MIN_YEAR <= utc_year <= MAX_YEAR):
        raise ValueError(f"the year {value.year} is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return value


# An instant with its UTC offset, in the years MIN_YEAR to MAX_YEAR (422 otherwise).
Instant = Annotated[AwareDatetime, AfterValidator(_within_years)]


def parse_day(value: str | None) -> date | None:
    """A YYYY-MM-DD query value (the `date` parameter); 422 naming the parameter otherwise."""
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"date: must be a calendar date YYYY-MM-DD, not {value!r}") from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise Invalid(f"date: {value} is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return day


def render_json(document: Any) -> bytes:
    """Compact UTF-8 JSON (Vietnamese text as is, not \\u escapes)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
