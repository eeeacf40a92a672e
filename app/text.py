"""Vietnamese text in and out: NFC everywhere, trimmed, no control characters."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints


def nfc(value: str) -> str:
    """NFC-normalise and trim; Vietnamese typed on different keyboards compares equal."""
    return unicodedata.normalize("NFC", value).strip()


def fold(value: str) -> str:
    """Lower case without diacritics, "đ" as "d", spaces collapsed: what search compares, so
    that "hanh chinh" finds "Hành chính" on SQLite and PostgreSQL alike."""
    text = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(bare.lower().split())


def _no_control_chars(value: str) -> str:
    bad = [c for c in value if unicodedata.category(c) == "Cc" and c not in "\n\t\r"]
    if bad:
        raise ValueError(f"contains {len(bad)} control character(s)")
    return value


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


Name = Annotated[
    str,
    StringConstraints(max_length=200),
    AfterValidator(nfc),
    AfterValidator(_non_empty),
    AfterValidator(_no_control_chars),
]
LongText = Annotated[
    str,
    StringConstraints(max_length=20_000),
    AfterValidator(nfc),
    AfterValidator(_no_control_chars),
]
