"""A station's report as a document it signs: number pattern, signer, recipients (Nơi nhận).

The rules follow Decree 30/2020/NĐ-CP (the layout of administrative documents):

* The number is the document's place in the issuer's register of the year, written with a
  leading zero below 10 ("05/BC-UBND"), then the kind and issuer codes; the station keeps
  the pattern, e.g. ``{n}/BC-UBND``. ``{n}`` is required, once; ``{year}`` may appear too.
* The People's Committee signs collectively: "TM. ỦY BAN NHÂN DÂN", then the signer's
  title. A deputy signs for the head ("ký thay"): "KT. CHỦ TỊCH" above "PHÓ CHỦ TỊCH";
  a title "Phó X" is a deputy of "X".
* Titles are set on one line in the signature column, in capitals: at most
  ``MAX_TITLE`` characters (24 capitals of the 13 pt bold face are about 230 pt, the
  column's 83 mm; the PDF shrinks the rare wider line of W and M to fit).
"""

from __future__ import annotations

import re

DEFAULT_NUMBER_PATTERN = "{n}/BC-UBND"
DEFAULT_SIGNER_TITLE = "Chủ tịch"
DEFAULT_RECIPIENTS = (
    "UBND huyện (Phòng Nội vụ);",
    "TT Đảng ủy, HĐND xã;",
    "Chủ tịch, các Phó Chủ tịch UBND xã;",
    "Ban văn hóa xã, Văn phòng UBND xã;",
    "Lưu: VT, VP.",
)

MAX_PATTERN = 40
MAX_TITLE = 24
MAX_SIGNER_NAME = 60
MAX_RECIPIENTS = 15
MAX_RECIPIENT = 200
# Numbers are small: a commune issues a few hundred documents a year at most.
MAX_NUMBER = 99_999

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_DEPUTY = re.compile(r"^phó\s+(.+)$", re.IGNORECASE)


def check_number_pattern(pattern: str) -> str:
    """The pattern, or ValueError saying what is wrong: ``{n}`` once, only ``{n}``/``{year}``."""
    names = _PLACEHOLDER.findall(pattern)
    unknown = sorted({n for n in names if n not in ("n", "year")})
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; use {{n}} for the number and {{year}}"
        )
    if names.count("n") != 1:
        raise ValueError(
            f"must contain {{n}} (the number) exactly once, e.g. {DEFAULT_NUMBER_PATTERN}"
        )
    rest = _PLACEHOLDER.sub("", pattern)
    if "{" in rest or "}" in rest:
        raise ValueError("has an unmatched { or }")
    return pattern


def format_number(n: int) -> str:
    """Decree 30: a number below 10 is written with a leading zero."""
    return f"{n:02d}"


def document_number(pattern: str, *, number: int, year: int) -> str:
    """ "05/BC-UBND" from ``{n}/BC-UBND``."""
    return pattern.replace("{n}", format_number(number)).replace("{year}", str(year))


def unnumbered(pattern: str, *, year: int) -> str:
    """ "…/BC-UBND": the pattern before a number is given (a draft is never numbered)."""
    return pattern.replace("{n}", "…").replace("{year}", str(year))


def signs_for(title: str) -> str | None:
    """The head a deputy signs for ("Phó Chủ tịch" -> "Chủ tịch"); None for the head."""
    match = _DEPUTY.match(title.strip())
    return match.group(1).strip() if match else None
