"""What a listener at a village loudspeaker should hear: administrative Vietnamese, read out.

``normalize()`` turns a Culture Board script into plain spoken Vietnamese for gTTS (``vi``) and
espeak-ng (``vi``). Decisions a caller must know:

- Output is NFC. Paragraphs (blank lines in the script, and numbered headings) are separated
  by exactly ``"\\n\\n"``; the lines of one paragraph by ``"\\n"``. Every line ends with
  ``. ! ? ; :`` (a full stop is added where the writer left none), so
  ``splitting.paragraphs()`` can pause longer between paragraphs than between sentences.
- Casing: the writer's casing is kept, except that words written in capitals that are ordinary
  Vietnamese syllables (headings such as "KẾ HOẠCH") and words with stray inner capitals
  ("HÀi") are lower-cased. Expansions of numbers and abbreviations are lower case (proper names
  such as "Việt Nam" keep their capitals). The first letter of every line and of every sentence
  after ``. ! ?`` is upper case. Unknown capitalised abbreviations are left as written
  (``unknown_abbreviations()`` lists them so a station can add them to its dictionary).
- List marks ("- ", "+ ", "- +", "•", "1)", "(1)") at the start of a line are dropped. Section
  numbers at the start of a line are read the way an announcer reads a plan, after the names
  Nghị định 30/2020/NĐ-CP gives the parts of an administrative text: roman "I.", "IV." are
  "phần một", "phần bốn"; decimal "1.", "2.1.", "2.1.3." (or "2.1 Heading") are "mục một",
  "mục hai chấm một", "mục hai chấm một chấm ba" ("mục" keeps a bare "một" from being heard as
  the article); letters "a)", "b)" (or "a. Heading") are "điểm a", "điểm bê", by the letters'
  Vietnamese names (``tables.LETTER_NAMES``). The number is a sentence of its own ("Phần hai.
  Nội dung tuyên truyền.") and a numbered line is a paragraph of its own, so the synthesiser
  pauses briefly after the number and long after the heading. Numbers are read as written,
  gaps included (the plan goes from II to IV). Roman numerals above XXXIX ("L.", "C.") are
  taken for letters and dropped, as before.
- A line that stops mid-sentence (no closing punctuation) and whose next line starts with a
  lower-case letter is joined to it, even across a blank line (text pasted from PDF).
- Abbreviations: whole tokens, case-sensitive (a key written all in lower case also matches
  with a capital first letter). The station's dictionary (``extra_abbreviations``) overrides
  the built-in one. A parenthesis holding only abbreviations right after a name, as in
  "Chỉ số năng lực cạnh tranh cấp tỉnh (PCI)", is the writer defining the abbreviation and is
  dropped; other parentheses are read as commas. The indices PAPI, SIPAS, PCI and PAR INDEX are
  read by their official Vietnamese names (a commune listener does not know the acronyms).
  "TT" before "Đảng ủy", "HĐND", "UBND"... is "thường trực"; "CT" before them is "chủ tịch".
- Document numbers ("số 78/KH-UBND", "30/2020/NĐ-CP", Party style "18-NQ/TW") are read as
  "<kind> số <number> [năm <year>] của <issuer>", the kind and the issuer named from the code
  by ``tables.DOCUMENT_TYPES`` and ``tables.ISSUERS``, never spelt: "Thông tư số 39/2020/
  TT-BTTTT" → "thông tư số ba mươi chín năm hai nghìn không trăm hai mươi của Bộ Thông tin và
  Truyền thông"; "theo 06/QĐ-TTg" → "theo quyết định số sáu của Thủ tướng Chính phủ". The kind
  is not repeated when the writer wrote it just before ("Kế hoạch số 78/KH-UBND" says "kế
  hoạch" once); "của <issuer>" is left out when the writer names the issuer right after,
  optionally after a date ("78/KH-UBND ngày 30/12/2023 của UBND huyện"). Joint documents name
  every issuer ("TTLT-BTC-BNV": "của Bộ Tài chính và Bộ Nội vụ"); "QH15" is "Quốc hội khóa
  mười lăm". A code without a kind is a công văn ("56/UBND-VP": "số năm mươi sáu của ủy ban
  nhân dân"; the drafting unit after the issuer is not read). A blank number, as on a form
  ("Số: /KH-UBND"), leaves "kế hoạch của ủy ban nhân dân". The station's dictionary overrides
  the tables; a code with a part that is in neither is read part by part as before ("số mười
  hai, XYZ"), so ``unknown_abbreviations()`` lists the part.
- Numbers: "mười", "mười một", "mười bốn", "mười lăm", "hai mươi mốt", "hai mươi tư" ("tư"
  always and only after "mươi"; "4" alone is "bốn"), "hai mươi lăm", "một trăm linh năm",
  "một nghìn không trăm linh năm", "nghìn", "triệu", "tỷ". A dot between groups of three
  digits separates thousands ("1.250.000"), a comma is the decimal mark ("2,5" → "hai phẩy
  năm"), any other dot is read "chấm" ("4.0" → "bốn chấm không"). Numbers of three or more
  digits that start with 0, and numbers longer than fifteen digits, are read digit by digit.
- Dates: "ngày 04/01/2024" → "ngày mồng bốn tháng một năm hai nghìn không trăm hai mươi tư";
  days 1 to 10 are "mồng ...", month 4 is "tư", month 1 is "một"; "ngày" is never doubled.
  "d/m" without a year is a date after a date word (ngày, từ, đến, sáng...) or when written
  with a leading zero; otherwise it is a fraction ("3/4" → "ba phần bốn", "24/7" → "hai mươi
  tư trên bảy"). "thứ 4" is "thứ tư", "thứ 1" is "thứ nhất". "tháng 4" is "tháng tư", but not
  when it counts ("mỗi tháng 4 lần" → "mỗi tháng bốn lần").
- Times: "17h30" → "mười bảy giờ ba mươi phút", "7h" and "7h00" → "bảy giờ".
- Ranges: "10-15 phút" → "mười đến mười lăm phút".
- Phone numbers (starting with 0 or +84, nine to eleven digits) and numbers after a word such
  as "đường dây nóng", "điện thoại", "hotline", "gọi", "tài khoản", "mã số thuế", "căn cước
  công dân" are read digit by digit, in the groups written (or 4-3-3 / 4-4-3), with a comma
  between groups.
- "-" between words is a space ("kinh tế - xã hội" → "kinh tế xã hội"), "/" between words is
  a comma, except after a unit or "đồng" where it is "một" ("đồng/người" → "đồng một người").
  Other symbols are removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

from app.tts.tables import (
    BUILTIN_ABBREVIATIONS,
    DOCUMENT_TYPES,
    ISSUERS,
    LETTER_NAMES,
    NUMBERED_ISSUERS,
)

__all__ = [
    "BUILTIN_ABBREVIATIONS",
    "ScriptProblem",
    "normalize",
    "read_day",
    "read_decimal",
    "read_digits",
    "read_month",
    "read_number",
    "read_phone",
    "unknown_abbreviations",
    "validate_script",
]

# Readings that depend on the next word; used only when the station did not redefine the key.
_CONTEXT_ABBREVIATIONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "TT",
        re.compile(
            r"(?<!\w)TT(?=\s+(?:Đảng|HĐND|UBND|MTTQ|UBMTTQ|Huyện [uủ]|Tỉnh [uủ]|Thành [uủ]))"
        ),
        "thường trực",
    ),
    (
        "CT",
        re.compile(r"(?<!\w)CT(?=\s+(?:UBND|HĐND|UBMTTQ|MTTQ|xã|huyện|tỉnh|Hội))"),
        "chủ tịch",
    ),
)

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_BILLION = 10**9
_MAX_READ_AS_NUMBER = 15  # digits; longer runs are codes and are read digit by digit


class ScriptProblem(ValueError):
    """A script that cannot be read aloud; ``code`` is one of empty, too_long, unpronounceable."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


# --- Reading numbers -------------------------------------------------------------------------


def _read_below_thousand(n: int, *, full: bool) -> str:
    """Read 0 < n < 1000; ``full`` reads an empty hundreds place ("không trăm linh năm")."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            words += ["linh", _DIGITS[units]] if words else [_DIGITS[units]]
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else _DIGITS[units])
    else:
        words += [_DIGITS[tens], "mươi"]
        if units:
            words.append({1: "mốt", 4: "tư", 5: "lăm"}.get(units, _DIGITS[units]))
    return " ".join(words)


def _read_below_billion(n: int, *, full: bool) -> str:
    """Read 0 < n < 10**9 in groups of triệu and nghìn, skipping empty groups."""
    words: list[str] = []
    for scale, name in ((10**6, "triệu"), (10**3, "nghìn"), (1, "")):
        group, n = divmod(n, scale)
        if group:
            words.append(_read_below_thousand(group, full=full))
            if name:
                words.append(name)
        if words:
            full = True
    return " ".join(words)


def read_number(n: int) -> str:
    """Read an integer the Vietnamese way: 21 "hai mươi mốt", 105 "một trăm linh năm"."""
    if n < 0:
        return "âm " + read_number(-n)
    if n == 0:
        return _DIGITS[0]
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        head = read_number(high) + " tỷ"
        return head if low == 0 else head + " " + _read_below_billion(low, full=True)
    return _read_below_billion(n, full=False)


def read_digits(digits: str) -> str:
    """Read every digit of a string on its own: "0912" → "không chín một hai"."""
    return " ".join(_DIGITS[int(ch)] for ch in digits if ch.isdigit())


def read_decimal(integer: str, fraction: str) -> str:
    """Read a decimal written with a comma: ("2", "5") → "hai phẩy năm"."""
    head = _read_numeral(integer)
    if len(fraction) > 2:
        return f"{head} phẩy {read_digits(fraction)}"
    zeros = len(fraction) - len(fraction.lstrip("0"))
    rest = fraction.lstrip("0")
    words = [_DIGITS[0]] * zeros + ([read_number(int(rest))] if rest else [])
    return f"{head} phẩy {' '.join(words)}"


def read_day(day: int) -> str:
    """Read a day of the month: 1 to 10 are "mồng một" to "mồng mười"."""
    return f"mồng {read_number(day)}" if 1 <= day <= 10 else read_number(day)


def read_month(month: int) -> str:
    """Read a month number as in "tháng tư": 4 is "tư", 1 is "một"."""
    return "tư" if month == 4 else read_number(month)


def read_phone(groups: list[str]) -> str:
    """Read a phone number digit by digit, one comma-separated phrase per group."""
    return ", ".join(("cộng " if g.startswith("+") else "") + read_digits(g) for g in groups)


def _read_numeral(digits: str) -> str:
    """Read a run of digits as a number, or digit by digit when it is a code."""
    if len(digits) > _MAX_READ_AS_NUMBER or (len(digits) > 2 and digits.startswith("0")):
        return read_digits(digits)
    return read_number(int(digits))


def _read_ordinal(n: int) -> str:
    """Read the number after "thứ": 1 is "nhất", 4 is "tư"."""
    return {1: "nhất", 4: "tư"}.get(n) or read_number(n)


def _roman_to_int(numeral: str) -> int | None:
    """Value of a well-formed Roman numeral up to 399, else None."""
    if not re.fullmatch(r"C{0,3}(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})", numeral) or not numeral:
        return None
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for ch, nxt in zip(numeral, [*numeral[1:], ""], strict=True):
        value = values[ch]
        total += -value if nxt and values[nxt] > value else value
    return total


# --- Characters ------------------------------------------------------------------------------

_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF),
    (0x2600, 0x27BF),
    (0x2B00, 0x2BFF),
    (0x2300, 0x23FF),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
)
_EMOJI_COMPONENTS = (
    (0x200D, 0x200D),  # zero-width joiner
    (0xFE00, 0xFE0F),  # variation selectors
    (0x1F3FB, 0x1F3FF),  # skin tones
    (0x20E3, 0x20E3),  # keycap
    (0xE0020, 0xE007F),  # tags
)
_REGIONAL_INDICATORS = (0x1F1E6, 0x1F1FF)


def _in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    """Whether a character's code point lies in one of the ranges."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in ranges)


def _strip_unpronounceable(text: str) -> tuple[str, int, int]:
    """Remove control characters and emoji; return the text and how many of each were removed."""
    kept: list[str] = []
    controls = emoji = 0
    previous = ""  # "zwj", "ri" (an unpaired regional indicator) or ""
    for ch in text:
        if ord(ch) < 0x2000 and (ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")):
            kept.append(ch)  # fast path: letters, digits and punctuation of every script
            previous = ""
            continue
        if _in_ranges(ch, _EMOJI_COMPONENTS):
            previous = "zwj" if ch == "\u200d" else previous
            continue
        if _in_ranges(ch, _EMOJI_RANGES):
            if _in_ranges(ch, (_REGIONAL_INDICATORS,)):
                emoji += previous != "ri"
                previous = "" if previous == "ri" else "ri"
            else:
                emoji += previous != "zwj"
                previous = ""
            continue
        previous = ""
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf"):
            controls += 1
            continue
        kept.append(ch)
    return "".join(kept), controls, emoji


def _clean_characters(text: str) -> str:
    """NFC, Unix newlines, no control characters or emoji, one kind of dash and space."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_unpronounceable(text)[0]
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = re.sub(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+", " ", text)
    return text.replace("\u2026", "...")


def _is_letter(ch: str) -> bool:
    """Whether a character is a letter of any script."""
    return unicodedata.category(ch).startswith("L")


def _has_speech(text: str) -> bool:
    """Whether the text holds at least one letter or digit."""
    return any(_is_letter(ch) or unicodedata.category(ch) == "Nd" for ch in text)


_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnprstvx])?[aeiouy]{1,3}(?:ng|nh|ch|[cmnpt])?"
)


def _is_syllable(word: str) -> bool:
    """Whether a word has the shape of one Vietnamese syllable (so it is a word, not an acronym)."""
    base = "".join(
        ch for ch in unicodedata.normalize("NFD", word.lower()) if not unicodedata.combining(ch)
    )
    return bool(_SYLLABLE.fullmatch(base))


# --- Passes over one line --------------------------------------------------------------------

_WORD = r"[^\W\d_]+"
_MARKER = re.compile(
    r"""^(?:
        [-+*\u2022\u00b7\u25aa\u25cf\u25cb\u25e6\u25ba]+(?=\s|[^\W\d_])         # bullets
      | \(\d{1,2}(?:\.\d{1,2})*[.)](?=\s) | \d{1,2}(?:\.\d{1,2})*\)(?=\s)         # (1)  1)
      | (?P<decimal>\d{1,2}(?:\.\d{1,2})*)\.(?=\s)                            # 1.  2.1.
      | (?P<bare>\d{1,2}(?:\.\d{1,2})+)(?=\s+[^\W\d_])                       # 2.1 Heading
      | (?P<letter>[a-zđ])\)(?=\s)                                             # a)
      | (?P<dotted_letter>[a-zđ])\.(?=\s+[A-ZĐÀ-Ỹ])                            # a. Heading
      | (?P<roman>[IVXLC]+)[.)](?=\s)                                           # I.  IV.
    )\s*""",
    re.VERBOSE,
)
_MAX_SPOKEN_PART = 39  # "XL." or "C." at the start of a line is more likely a letter


def _section_number(m: re.Match[str]) -> str | None:
    """How a heading's number is read ("phần hai", "mục hai chấm một", "điểm bê"), or None."""
    if m.group("roman"):
        value = _roman_to_int(m.group("roman"))
        return f"phần {read_number(value)}" if value and value <= _MAX_SPOKEN_PART else None
    digits = m.group("decimal") or m.group("bare")
    if digits:
        return "mục " + " chấm ".join(read_number(int(part)) for part in digits.split("."))
    letter = m.group("letter") or m.group("dotted_letter")
    if letter and letter in LETTER_NAMES:
        return f"điểm {LETTER_NAMES[letter]}"
    return None


def _strip_marker(line: str) -> tuple[str, list[str]]:
    """Take list marks and section numbers off the start of a line; return the numbers read."""
    numbers: list[str] = []
    while True:
        m = _MARKER.match(line)
        if not m or (m.group("roman") and _roman_to_int(m.group("roman")) is None):
            return line, numbers
        spoken = _section_number(m)
        if spoken:
            numbers.append(spoken)
        line = line[m.end() :]


def _previous_word(text: str, end: int) -> str:
    """The word that ends just before position ``end`` (lower-cased), or ""."""
    m = re.search(r"(\w+)\W*$", text[:end])
    return m.group(1).lower() if m else ""


def _next_word(text: str, start: int) -> str:
    """The word that starts at or after position ``start`` (lower-cased), or ""."""
    m = re.match(r"\W*(\w+)", text[start:])
    return m.group(1).lower() if m else ""


_DEFINITION = re.compile(r"(?<=\w)\s*\(\s*([A-ZĐ][A-Za-zĐđ0-9&\- ]*)\s*\)")


def _drop_definitions(line: str, abbreviations: Mapping[str, str]) -> str:
    """Drop "(PCI)" after "chỉ số năng lực cạnh tranh cấp tỉnh": the writer defining a term."""

    def replace(m: re.Match[str]) -> str:
        content = m.group(1).strip()
        if content in abbreviations:
            return ""
        tokens = re.split(r"[\s\-&]+", content)
        acronyms = all(
            t in abbreviations or (t.isupper() and len(t) > 1 and not _is_syllable(t))
            for t in tokens
            if t
        )
        return "" if acronyms else m.group(0)

    return _DEFINITION.sub(replace, line)


_ROMAN_AFTER_CUE = re.compile(
    r"(?i:\b(quý|phần|chương|khóa|khoá|thứ|kỳ|kì|thế kỷ|thế kỉ|đại hội|hội nghị)\s+)"
    r"([IVXLC]+)(?![\w])"
)


def _expand_roman_numerals(line: str) -> str:
    """Turn "Quý IV", "lần thứ XIII" into Arabic digits, read later like any number."""

    def replace(m: re.Match[str]) -> str:
        value = _roman_to_int(m.group(2))
        return m.group(0) if value is None else f"{m.group(1)} {value}"

    return _ROMAN_AFTER_CUE.sub(replace, line)


_CODE_PART = r"[A-ZĐ][A-Za-zĐđ0-9]*"
_CODE = rf"{_CODE_PART}(?:[-&]{_CODE_PART})*"
_DOCUMENT_NUMBER = re.compile(
    rf"(?P<so>(?<!\w)[Ss][ốỐ]\s*:?\s*)?"
    rf"(?:(?P<num>\d+)?\s*/\s*(?:(?P<year>\d{{4}})\s*/\s*)?(?P<code>{_CODE})"
    rf"|(?P<party_num>\d+)-(?P<party_type>{_CODE_PART})/(?P<party_issuer>{_CODE}))(?![\w])"
)
# The writer names the issuer right after the number ("78/KH-UBND ngày 30/12/2023 của UBND
# huyện"): then the code's issuer is not read, or it would be said twice.
_ISSUER_FOLLOWS = re.compile(
    r"\s*,?\s*(?:ngày\s+(?:\d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*\d{4}"
    r"|\d{1,2}\s+tháng\s+\d{1,2}\s+năm\s+\d{4})\s*,?\s*)?(?:của|do)\s",
    re.IGNORECASE,
)
_NUMBERED_ISSUER = re.compile(r"([A-ZĐ][A-Za-zĐđ]*?)(\d+)")


def _read_code(code: str, abbreviations: Mapping[str, str]) -> str:
    """Read a code that is no document code we know ("KH-XYZ"), part by part."""
    if code in abbreviations:
        return abbreviations[code]
    words: list[str] = []
    for part in re.split(r"([-&])", code):
        if part == "&":
            words.append("và")
        elif part and part != "-":
            if part in abbreviations:
                words.append(abbreviations[part])
                continue
            for piece in re.findall(r"\d+|\D+", part):
                if piece.isdigit():
                    words.append(read_number(int(piece)))
                else:
                    words.append(abbreviations.get(piece, piece))
    return " ".join(words)


def _folded(table: Mapping[str, str]) -> dict[str, str]:
    """The table keyed by case-folded codes, for codes pasted in capitals ("QĐ-TTG")."""
    return {key.casefold(): value for key, value in table.items()}


_FOLDED_TYPES = _folded(DOCUMENT_TYPES)
_FOLDED_ISSUERS = _folded(ISSUERS)
# Words that name a document: written just before its number, the kind is not said again.
_DOCUMENT_NOUNS = sorted({*DOCUMENT_TYPES.values(), "văn bản", "luật", "pháp lệnh"}, key=len)
_NAMED_BEFORE = re.compile(
    rf"(?:^|\W)(?:{'|'.join(map(re.escape, reversed(_DOCUMENT_NOUNS)))})$", re.IGNORECASE
)
_OPENS_SENTENCE = re.compile(r"(?:^|[.:;!?])$")


def _lookup(key: str, table: Mapping[str, str], station: Mapping[str, str]) -> str | None:
    """A code's reading: the station's dictionary first, then the table (any case)."""
    folded = _FOLDED_TYPES if table is DOCUMENT_TYPES else _FOLDED_ISSUERS
    return station.get(key) or table.get(key) or folded.get(key.casefold())


def _read_issuer(code: str, station: Mapping[str, str]) -> str | None:
    """The name of an issuing body ("TTg" → "Thủ tướng Chính phủ", "QH15" → "... khóa ...")."""
    name = _lookup(code, ISSUERS, station)
    if name:
        return name
    m = _NUMBERED_ISSUER.fullmatch(code)
    if m and m.group(1) in NUMBERED_ISSUERS:
        base, digits = ISSUERS[m.group(1)], m.group(2)
        if NUMBERED_ISSUERS[m.group(1)]:
            return f"{base} {NUMBERED_ISSUERS[m.group(1)]} {read_number(int(digits))}"
        return f"{base} {read_digits(digits)}"
    return None


def _join_names(names: list[str]) -> str:
    """ "A", "A và B", "A, B và C"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " và " + names[-1]


def _parse_code(
    code: str, station: Mapping[str, str], *, party_type: str | None = None
) -> tuple[str | None, list[str]] | None:
    """A document code's kind and issuers, or None when it is no code we can read.

    "TT-BTTTT" is a circular of one ministry, "TTLT-BTC-BNV" a joint circular of two, and a
    code without a kind is a công văn: "UBND-VP" is the people's committee's, drafted by its
    office (the drafting unit is not read).
    """
    parts = code.split("-")
    if any("&" in part for part in parts):
        return None
    if party_type is not None:
        kind, issuer_codes = _lookup(party_type, DOCUMENT_TYPES, station), parts
    else:
        kind = _lookup(parts[0], DOCUMENT_TYPES, station)
        issuer_codes = parts[1:] if kind else parts[:1]
    if kind is None and party_type is not None:
        return None
    issuers = [_read_issuer(part, station) for part in issuer_codes]
    if not issuer_codes or None in issuers:
        return None
    return kind, [name for name in issuers if name]


def _expand_document_numbers(
    line: str, abbreviations: Mapping[str, str], station: Mapping[str, str]
) -> str:
    """Read "Kế hoạch số 78/KH-UBND" as "Kế hoạch số bảy mươi tám của ủy ban nhân dân"."""

    def replace(m: re.Match[str]) -> str:
        number = m.group("num") or m.group("party_num")
        so, year = m.group("so"), m.group("year")
        code = m.group("code") or f"{m.group('party_type')}-{m.group('party_issuer')}"
        if number is None and so is None:
            return m.group(0)
        said_so = not so and _previous_word(m.string, m.start()) == "số"
        parsed = (
            None
            if code in station
            else _parse_code(
                m.group("code") or m.group("party_issuer"),
                station,
                party_type=m.group("party_type"),
            )
        )
        if parsed is None:  # old reading, part by part: "số năm mươi sáu, x y z"
            words = [] if said_so else ["số"]
            words += [_read_numeral(number)] if number is not None else []
            words += ["năm", read_number(int(year))] if year else []
            separator = ", " if number is not None else " "
            return f" {' '.join(words)}{separator}{_read_code(code, abbreviations)}"
        kind, issuers = parsed
        lead = m.string[: m.start()].rstrip()
        # The writer already named the document: "Kế hoạch số 78/...", "Nghị định 30/...",
        # "Thông báo kết luận số 12/..."; only a "Số:" that opens a sentence gets the kind.
        named = (
            said_so
            or _NAMED_BEFORE.search(lead) is not None
            or (so is not None and _OPENS_SENTENCE.search(lead) is None)
        )
        words = [kind] if kind and not named else []
        if number is not None:
            words += ([] if said_so else ["số"]) + [_read_numeral(number)]
            words += ["năm", read_number(int(year))] if year else []
        if not _ISSUER_FOLLOWS.match(m.string, m.end()):
            words += ["của", _join_names(issuers)]
        return f" {' '.join(words)} "

    return _DOCUMENT_NUMBER.sub(replace, line)


_DOMAIN = re.compile(r"(?i)\b(?:https?://)?(?:www\.)?((?:[a-z0-9-]+\.)+(?:vn|com|net|org|gov))\b")


def _expand_domains(line: str) -> str:
    """Read "dichvucong.gov.vn" as "dichvucong chấm gov chấm vn"."""
    return _DOMAIN.sub(lambda m: " " + " chấm ".join(m.group(1).split(".")) + " ", line)


@lru_cache(maxsize=32)
def _abbreviation_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation of all keys, longest first, matching whole tokens only."""
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![\w&/])(?:{alternatives})(?![\w&])")


def _with_capitalised_variants(abbreviations: Mapping[str, str]) -> dict[str, str]:
    """Keys written all in lower case also match with a capital first letter."""
    merged = dict(abbreviations)
    for key, value in abbreviations.items():
        if key.islower():
            merged.setdefault(key[0].upper() + key[1:], value)
    return merged


def _expand_abbreviations(
    line: str, abbreviations: Mapping[str, str], station_keys: frozenset[str]
) -> str:
    """Replace whole-token abbreviations by their expansion."""
    for key, pattern, reading in _CONTEXT_ABBREVIATIONS:
        if key not in station_keys:
            line = pattern.sub(reading, line)
    if not abbreviations:
        return line

    def replace(m: re.Match[str]) -> str:
        spoken = _without_echo(m.string[: m.start()], abbreviations[m.group(0)])
        # "v.v." also ends its sentence when a capital follows: keep that full stop.
        following = re.match(r"\s+(\w)", m.string[m.end() :])
        if m.group(0) == "v.v." and following and following.group(1).isupper():
            return spoken + "."
        return spoken

    return _abbreviation_pattern(tuple(abbreviations)).sub(replace, line)


def _without_echo(before: str, expansion: str) -> str:
    """Drop the start of an expansion that the writer already wrote: "chỉ số PCI"."""
    words = expansion.split()
    tail = before.lower().split()
    for size in range(min(3, len(words) - 1, len(tail)), 0, -1):
        if [w.lower() for w in words[:size]] == tail[-size:]:
            return " ".join(words[size:])
    return expansion


def _lower_shouting(line: str, *, shouting: bool) -> str:
    """Lower-case capitalised words that are plain syllables and words with stray capitals."""

    def replace(m: re.Match[str]) -> str:
        word = m.group(0)
        if word.isupper():
            if (len(word) > 1 or shouting) and _is_syllable(word):
                return word.lower()
            return word
        if any(ch.isupper() for ch in word[1:]):
            return word.lower()
        return word

    return re.sub(_WORD, replace, line)


_DATE_WORDS = frozenset(
    {"ngày", "từ", "đến", "tới", "hôm", "sáng", "trưa", "chiều", "tối", "đêm", "nay", "mai"}
)
_DMY = re.compile(r"(?<![\d/.\-])(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})(?!\d|[/.\-]\d)")
_MY = re.compile(r"(?<![\d/.\-])(\d{1,2})\s*[/\-]\s*(\d{4})(?![\d/])")
_DM = re.compile(r"(?<![\d/.,\-])(\d{1,2})/(\d{1,2})(?![\d/])")
_FRACTION = re.compile(r"(?<![\d/.,])(\d+)/(\d+)(?![\d/])")


def _date_words(line: str, start: int, day: int, month: int, year: int | None) -> str:
    """Read a date, without repeating a "ngày" the writer already put before it."""
    words = [] if re.search(r"(?i)\bngày\s*$", line[:start]) else ["ngày"]
    words += [read_day(day), "tháng", read_month(month)]
    if year is not None:
        words += ["năm", read_number(year)]
    return " " + " ".join(words) + " "


def _expand_dates(line: str) -> str:
    """Read dd/mm/yyyy, mm/yyyy and dd/mm dates, and the fractions left over."""

    def dmy(m: re.Match[str]) -> str:
        day, month, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return m.group(0)
        return _date_words(m.string, m.start(), day, month, year)

    def my(m: re.Match[str]) -> str:
        first, year = int(m.group(1)), int(m.group(2))
        before = _previous_word(m.string, m.start())
        if before == "quý" and 1 <= first <= 4:
            return f" {read_number(first)} năm {read_number(year)} "
        if not (1 <= first <= 12 and 1900 <= year <= 2100):
            return m.group(0)
        lead = "" if before == "tháng" else "tháng "
        return f" {lead}{read_month(first)} năm {read_number(year)} "

    def dm(m: re.Match[str]) -> str:
        day, month = int(m.group(1)), int(m.group(2))
        cued = _previous_word(m.string, m.start()) in _DATE_WORDS
        padded = m.group(1).startswith("0") or m.group(2).startswith("0")
        if 1 <= day <= 31 and 1 <= month <= 12 and (cued or padded):
            return _date_words(m.string, m.start(), day, month, None)
        return m.group(0)

    def fraction(m: re.Match[str]) -> str:
        top, bottom = int(m.group(1)), int(m.group(2))
        joiner = "phần" if 0 < top < bottom else "trên"
        return f" {_read_numeral(m.group(1))} {joiner} {_read_numeral(m.group(2))} "

    for pattern, replace in ((_DMY, dmy), (_MY, my), (_DM, dm), (_FRACTION, fraction)):
        line = pattern.sub(replace, line)
    return line


# Words after a number that show it counts something (so it is no date, month or phone).
_COUNTED = frozenset(
    {"lần", "buổi", "đợt", "lượt", "cuộc", "người", "hộ", "đêm", "tuần", "giờ", "phút", "bản"}
    | {"bài", "tin", "chiếc", "cái", "con", "ca", "suất", "phần", "kỳ", "kì"}
)
_PHONE_SEPARATOR = r"(?:\s?[.\-]\s?|\s|\)\s?)"
_PHONE = re.compile(
    rf"(?<![\w.,+])(\+84\s?|0)(\d{{1,10}})((?:{_PHONE_SEPARATOR}\d{{2,4}}){{0,4}})(?!\d)"
)
# After these words a number is read digit by digit: phones, accounts, identity numbers.
_DIGIT_CUES = (
    r"hotline|đường dây nóng|điện thoại|tổng đài|số máy|fax|zalo|gọi|tài khoản|mã số thuế"
    r"|mã số|mã hồ sơ|căn cước công dân|chứng minh nhân dân|số định danh"
)
_CUED_DIGITS = re.compile(
    rf"(?i:\b(?:{_DIGIT_CUES}))(?:\s*(?::|số|là|ngay)\s*)*\s*"
    r"(\+?\d[\d.\- ]*\d(?:\s*(?:,|và|hoặc)\s*\+?\d[\d.\- ]*\d)*)(?![\d,])"
)
_AUTO_GROUPS = {11: (4, 4, 3), 10: (4, 3, 3), 9: (3, 3, 3), 8: (4, 4), 7: (3, 4), 6: (3, 3)}


def _group_digits(digits: str) -> list[str]:
    """Split an unbroken run of phone digits into the groups people say (4-3-3, 4-4-3...)."""
    sizes = _AUTO_GROUPS.get(len(digits))
    if sizes is None:
        return (
            [digits[i : i + 3] for i in range(0, len(digits), 3)] if len(digits) > 5 else [digits]
        )
    groups, start = [], 0
    for size in sizes:
        groups.append(digits[start : start + size])
        start += size
    return groups


def _phone_groups(written: str) -> list[str]:
    """Digit groups of a phone number as written, or grouped when written in one run."""
    groups = re.findall(r"\d+", written)
    return _group_digits(groups[0]) if len(groups) == 1 else groups


def _expand_phones(line: str) -> str:
    """Read phone numbers, and numbers after a word such as "hotline", digit by digit."""

    def phone(m: re.Match[str]) -> str:
        prefix, first = m.group(1).strip(), m.group(2)
        tails = re.findall(rf"{_PHONE_SEPARATOR}\d{{2,4}}", m.group(3))

        def length() -> int:
            return 1 + len(first) + sum(len(re.sub(r"\D", "", t)) for t in tails)

        # Nine to eleven digits counting the leading 0 (or the 0 that +84 stands for); a
        # trailing group that makes it longer is another number written after it.
        while length() > 11:
            tails.pop()
        if length() < 9:
            return m.group(0)
        written = first + "".join(tails)
        if prefix == "0":
            written = "0" + written
        groups = (["+84"] if prefix == "+84" else []) + _phone_groups(written)
        leftover = m.group(0)[len(m.group(1)) + len(first + "".join(tails)) :]
        return f" {read_phone(groups)}{leftover}"

    def cued(m: re.Match[str]) -> str:
        if len(re.sub(r"\D", "", m.group(1))) < 3 or _next_word(m.string, m.end()) in _COUNTED:
            return m.group(0)
        spoken = []
        for piece in re.split(r"\s*(,|và|hoặc)\s*", m.group(1)):
            if piece in (",", "và", "hoặc"):
                spoken.append(piece if piece == "," else f" {piece}")
            else:
                plus = "+" if piece.startswith("+") else ""
                groups = _phone_groups(piece)
                spoken.append(" " + read_phone([plus + groups[0], *groups[1:]]))
        return m.group(0)[: m.start(1) - m.start()] + "".join(spoken).strip()

    return _CUED_DIGITS.sub(cued, _PHONE.sub(phone, line))


# A unit may stand on the left: "7h30-11h", "10%-15%", "20ha-30ha".
_RANGE = re.compile(r"(?<=\d)([^\W\d_]{1,3}|[%'])?\s*-\s*(?=\d)")
_NEGATIVE = re.compile(r"(?:(?<=\s)|^)-(?=\d)")


def _expand_ranges(line: str) -> str:
    """Read "10-15" as "10 đến 15" and a lone "-5" as "âm 5"."""
    line = _RANGE.sub(lambda m: f"{m.group(1) or ''} đến ", line)
    return _NEGATIVE.sub("âm ", line)


_UNITS = {
    "km/h": "ki lô mét một giờ",
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "km": "ki lô mét",
    "kg": "ki lô gam",
    "ha": "héc ta",
    "cm": "xăng ti mét",
    "mm": "mi li mét",
    "m": "mét",
    "đ": "đồng",
    "%": "phần trăm",
    "°C": "độ C",
}
_UNIT_ALTERNATION = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_UNIT = re.compile(rf"(?<=\d)\s?({_UNIT_ALTERNATION})(?![\w²³])")
# "tạ/ha", "đồng/kg": a unit after a slash is read "một ..." (per).
_PER_UNIT = re.compile(rf"(?<=[^\W\d_])\s*/\s*({_UNIT_ALTERNATION})(?![\w²³])")
_PER = re.compile(
    r"\b(đồng|mét|vuông|khối|ki lô mét|ki lô gam|héc ta|tạ|tấn|lít|người|hộ)\s*/\s*"
    r"(?=[^\W\d_])"
)


def _expand_units(line: str) -> str:
    """Read units and money after numbers, and "đồng/người" as "đồng một người"."""
    line = _UNIT.sub(lambda m: " " + _UNITS[m.group(1)], line)
    line = _PER_UNIT.sub(lambda m: " một " + _UNITS[m.group(1)], line)
    return _PER.sub(r"\1 một ", line)


_TIME_HM = re.compile(r"(?<![\d.,:/])(\d{1,2})(?:h|g|:)(\d{2})(?:'|\s?phút)?(?![\w])")
_TIME_H = re.compile(r"(?<![\d.,:/])(\d{1,2})h(?![\w])")


def _expand_times(line: str) -> str:
    """Read "17h30" as "mười bảy giờ ba mươi phút" and "7h" as "bảy giờ"."""

    def hm(m: re.Match[str]) -> str:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 24 or minute > 59:
            return m.group(0)
        spoken = f"{read_number(hour)} giờ"
        return f"{spoken} {read_number(minute)} phút" if minute else spoken

    def h(m: re.Match[str]) -> str:
        hour = int(m.group(1))
        return f"{read_number(hour)} giờ" if hour <= 24 else m.group(0)

    return _TIME_H.sub(h, _TIME_HM.sub(hm, line))


_CONTEXT_NUMBER = re.compile(r"\b([Tt]hứ|[Tt]háng|[Nn]gày)\s+(\d{1,3})(?!\d|[.,/]\d)")


def _expand_context_numbers(line: str) -> str:
    """Read "thứ 4" as "thứ tư", "tháng 4" as "tháng tư", "ngày 5" as "ngày mồng năm"."""

    def replace(m: re.Match[str]) -> str:
        word, n = m.group(1), int(m.group(2))
        kind = word.lower()
        if kind == "thứ":
            return f"{word} {_read_ordinal(n)}"
        if _next_word(m.string, m.end()) in _COUNTED:
            return m.group(0)
        if kind == "tháng" and 1 <= n <= 12:
            if _previous_word(m.string, m.start()) in ("mỗi", "hằng", "hàng", "một"):
                return m.group(0)
            return f"{word} {read_month(n)}"
        if kind == "ngày" and 1 <= n <= 31:
            return f"{word} {read_day(n)}"
        return m.group(0)

    return _CONTEXT_NUMBER.sub(replace, line)


_NUMBER = re.compile(
    r"(?P<thousands>\d{1,3}(?:\.\d{3})+)(?:,(?P<tfrac>\d+))?(?![\d]|\.\d)"
    r"|(?P<commas>\d{1,3}(?:,\d{3}){2,})(?![\d]|,\d)"
    r"|(?P<int>\d+),(?P<frac>\d+)"
    r"|(?P<dotted>\d+(?:\.\d+)+)"
    r"|(?P<plain>\d+)"
)


def _expand_numbers(line: str) -> str:
    """Read every number left: thousands with dots, decimals with a comma, plain integers."""

    def replace(m: re.Match[str]) -> str:
        if m.group("thousands"):
            value = m.group("thousands").replace(".", "")
            spoken = (
                read_decimal(value, m.group("tfrac")) if m.group("tfrac") else _read_numeral(value)
            )
        elif m.group("commas"):
            spoken = _read_numeral(m.group("commas").replace(",", ""))
        elif m.group("int"):
            spoken = read_decimal(m.group("int"), m.group("frac"))
        elif m.group("dotted"):
            spoken = " chấm ".join(_read_numeral(p) for p in m.group("dotted").split("."))
        else:
            spoken = _read_numeral(m.group("plain"))
        return f" {spoken} "

    return _NUMBER.sub(replace, line)


_PUNCTUATION_RUN = re.compile(r"[,;:.!?](?:\s*[,;:.!?])+")


def _strongest(m: re.Match[str]) -> str:
    """The mark that wins in a run of punctuation such as ", ." or ";,"."""
    run = m.group(0)
    return next((mark for mark in "?!.;:" if mark in run), ",")


def _tidy(line: str) -> str:
    """Remove symbols, turn brackets into commas, fix spacing around punctuation."""
    line = re.sub(r"[(\[{<]", ", ", line)
    line = re.sub(r"[)\]}>]", ", ", line)
    line = line.replace("/", ", ").replace("°", " độ ").replace("@", " a còng ")
    line = "".join(
        ch if ch in ",;:.!?" or not unicodedata.category(ch).startswith(("P", "S")) else " "
        for ch in line
    )
    line = re.sub(r"\s+", " ", line).strip()
    line = re.sub(r"\s+([,;:.!?])", r"\1", line)
    line = _PUNCTUATION_RUN.sub(_strongest, line)
    line = re.sub(r"([,;:!?])(?=[^\s\d])", r"\1 ", line)
    return re.sub(r"^[\s,;:.!?]+", "", line).strip()


def _finish(line: str) -> str:
    """End the line with punctuation and capitalise its sentences."""
    if not line:
        return line
    if line.endswith(","):
        line = line[:-1].rstrip()
    if line[-1] not in ".!?;:":
        line += "."
    line = line[0].upper() + line[1:]
    return re.sub(r"([.!?]\s+)([^\W\d_])", lambda m: m.group(1) + m.group(2).upper(), line)


def _normalize_line(
    line: str, abbreviations: Mapping[str, str], station: Mapping[str, str]
) -> tuple[str, bool]:
    """Everything a single line goes through, in order; and whether it is a numbered heading."""
    line, numbers = _strip_marker(line.strip())
    shouting = _has_speech(line) and not any(ch.islower() for ch in line)
    line = line.replace("./.", ".")
    line = _drop_definitions(line, abbreviations)
    line = _expand_roman_numerals(line)
    line = _expand_document_numbers(line, abbreviations, station)
    line = _expand_domains(line)
    line = _expand_abbreviations(line, abbreviations, frozenset(station))
    line = line.replace("&", " và ")
    line = re.sub(r"\.{2,}", ",", line)
    line = _lower_shouting(line, shouting=shouting)
    passes: tuple[Callable[[str], str], ...] = (
        _expand_dates,
        _expand_phones,
        _expand_ranges,
        _expand_units,
        _expand_times,
        _expand_context_numbers,
        _expand_numbers,
    )
    for step in passes:
        line = step(line)
    line = _tidy(line)
    if numbers:  # "Phần hai. Nội dung tuyên truyền.": the number is a sentence of its own
        line = ". ".join([*numbers, line] if line else numbers)
    return _finish(line), bool(numbers)


_OPEN_ENDING = re.compile(r"(?:[^\W_]|,)$")


def _logical_lines(text: str) -> list[list[str]]:
    """Paragraphs of lines, re-joining a sentence that a stray line break cut in two."""
    paragraphs: list[list[str]] = []
    blank_before = True
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            blank_before = True
            continue
        previous = paragraphs[-1][-1] if paragraphs else ""
        if previous and _OPEN_ENDING.search(previous) and line[0].islower():
            paragraphs[-1][-1] = f"{previous} {line}"
        elif blank_before or not paragraphs:
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
        blank_before = False
    return paragraphs


def normalize(text: str, extra_abbreviations: Mapping[str, str] | None = None) -> str:
    """Return what a listener should hear: numbers, dates, abbreviations and symbols read out."""
    abbreviations = _with_capitalised_variants(
        {**BUILTIN_ABBREVIATIONS, **(extra_abbreviations or {})}
    )
    station = dict(extra_abbreviations or {})
    out_paragraphs: list[list[str]] = []
    for paragraph in _logical_lines(_clean_characters(text)):
        lines: list[str] = []
        for raw in paragraph:
            line, heading = _normalize_line(raw, abbreviations, station)
            if not _has_speech(line):
                continue
            if heading:  # a paragraph of its own: the long pause comes after it
                out_paragraphs += [lines, [line]]
                lines = []
            else:
                lines.append(line)
        out_paragraphs.append(lines)
    return "\n\n".join("\n".join(lines) for lines in out_paragraphs if lines)


def unknown_abbreviations(
    text: str, extra_abbreviations: Mapping[str, str] | None = None
) -> list[str]:
    """Capitalised abbreviations that normalize() leaves as written, in order of appearance."""
    found: dict[str, None] = {}
    for word in re.findall(_WORD, normalize(text, extra_abbreviations)):
        if len(word) > 1 and sum(ch.isupper() for ch in word) > 1:
            found.setdefault(word, None)
    return list(found)


def validate_script(text: str, *, max_chars: int = 20000) -> tuple[str, list[str]]:
    """Check a script before synthesis; return the cleaned script and warnings for the editor."""
    if not text or not text.strip():
        raise ScriptProblem("script is empty (kịch bản trống)", code="empty")
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > max_chars:
        raise ScriptProblem(
            f"script is too long: {len(text)} characters, the limit is {max_chars} "
            f"(kịch bản dài {len(text)} ký tự, tối đa {max_chars})",
            code="too_long",
        )
    cleaned, controls, emoji = _strip_unpronounceable(text)
    warnings = []
    if controls:
        warnings.append(
            f"removed {controls} control character(s) (đã bỏ {controls} ký tự điều khiển)"
        )
    if emoji:
        warnings.append(f"removed {emoji} emoji (đã bỏ {emoji} biểu tượng cảm xúc)")
    cleaned = "\n".join(line.rstrip() for line in cleaned.split("\n")).strip()
    if not _has_speech(cleaned):
        raise ScriptProblem(
            "script has nothing to read aloud: no letters or digits (kịch bản không có chữ để đọc)",
            code="unpronounceable",
        )
    return cleaned, warnings
