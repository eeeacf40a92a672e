"""Cut normalised text into paragraphs, sentences and synthesiser-sized chunks.

Meant for the output of ``normalize()``, where numbers and abbreviations are already words,
but safe on raw text too: a full stop inside "1.250.000" or after "TP." is no boundary.

How a synthesiser uses it: ``for paragraph in paragraphs(text)`` (a long pause between
paragraphs), ``for sentence in paragraph`` (a short pause between sentences),
``for piece in chunk(sentence)`` (no pause needed). ``chunk()`` never joins two sentences into
one chunk and never cuts a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from app.tts.normalize import BUILTIN_ABBREVIATIONS

__all__ = ["chunk", "paragraphs", "split_sentences"]

# Sentence marks count only when followed by white space or the end of the text.
_CANDIDATE = re.compile(r"[.!?;:]+(?=\s|$)|\n")
# Titles written with a full stop that never end a sentence ("TP. Thanh Hóa", "ThS. Lê").
_TITLES = frozenset({"TP.", "Tp.", "tp.", "TX.", "TS.", "ThS.", "PGS.", "GS.", "BS.", "KS."})
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _words(text: str) -> frozenset[str]:
    """A set of words written as one string."""
    return frozenset(text.split())


_NUMBER_WORDS = _words(
    "không một mốt hai ba bốn tư năm lăm sáu bảy tám chín mười mươi trăm nghìn triệu tỷ linh"
    " mồng phẩy phần"
)
# After one of these a number is complete, so a following "năm" is the word "year", not five.
_NUMBER_ENDS = _words("một mốt hai ba bốn tư lăm sáu bảy tám chín mười mươi")
# A chunk that must end inside a clause sounds best ending before one of these words.
_BREAK_BEFORE = _words(
    "và của để trong tại với cho về theo nhằm là thì nhưng hoặc từ đến lúc ngày khi nếu"
    " bằng qua trên dưới sau trước do vì mà nên"
)


def _has_speech(text: str) -> bool:
    """Whether a piece holds a letter or a digit (a lone ")" or "." is dropped)."""
    return any(ch.isalnum() for ch in text)


def _is_boundary(text: str, m: re.Match[str]) -> bool:
    """Whether a candidate mark really ends a sentence."""
    if m.group(0) != ".":
        return True
    word = text[max(text.rfind(ch, 0, m.start()) for ch in " \t\n") + 1 : m.end()]
    if word in _TITLES:
        return False
    if word.endswith("v.v."):
        # "v.v." ends the sentence only when a capital letter follows.
        rest = text[m.end() :].lstrip()
        return not rest or rest[0].isupper()
    return True


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at . ! ? ; : and line breaks, keeping the closing mark."""
    sentences: list[str] = []
    start = 0
    for m in _CANDIDATE.finditer(text):
        if not _is_boundary(text, m):
            continue
        piece = " ".join(text[start : m.end()].split())
        if _has_speech(piece):
            sentences.append(piece)
        start = m.end()
    tail = " ".join(text[start:].split())
    if _has_speech(tail):
        sentences.append(tail)
    return sentences


def paragraphs(text: str) -> list[list[str]]:
    """Paragraphs (separated by blank lines) as lists of sentences; empty ones are dropped."""
    result = [split_sentences(block) for block in _PARAGRAPH_BREAK.split(text)]
    return [sentences for sentences in result if sentences]


@lru_cache(maxsize=32)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive alternation of multi-word phrases, longest first."""
    multi = sorted({p for p in phrases if " " in p.strip()}, key=len, reverse=True)
    if not multi:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, p.split())) for p in multi)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _number_spans(sentence: str) -> list[tuple[int, int]]:
    """Spans of two or more number words in a row ("hai mươi tư", "năm hai nghìn")."""
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []

    def close_run() -> None:
        if len(run) > 1:
            spans.append((run[0].start(), run[-1].end()))
        run.clear()

    for token in re.finditer(r"\S+", sentence):
        word = token.group(0).rstrip(",.;:!?").lower()
        previous = run[-1].group(0) if run else ""
        punctuated = previous.endswith((",", ".", ";", ":", "!", "?"))
        is_year = word == "năm" and previous.lower() in _NUMBER_ENDS
        if word not in _NUMBER_WORDS or punctuated or is_year:
            close_run()
        if word in _NUMBER_WORDS:
            run.append(token)
    close_run()
    return spans


def _protected_spaces(sentence: str, phrases: tuple[str, ...]) -> set[int]:
    """Positions of spaces inside a number or an abbreviation's expansion."""
    spans = _number_spans(sentence)
    pattern = _phrase_pattern(phrases)
    if pattern is not None:
        spans += [m.span() for m in pattern.finditer(sentence)]
    return {i for start, end in spans for i in range(start, end) if sentence[i] == " "}


def _rank(sentence: str, start: int, space: int, max_chars: int, protected: set[int]) -> int:
    """How good a cut at this space is: 0 after a comma, 1 before a linking word, 3 worst."""
    if space in protected:
        return 3
    if sentence[space - 1] == ",":
        return 0
    next_word = sentence[space + 1 :].split(" ", 1)[0].lower()
    previous_word = sentence[:space].rsplit(" ", 1)[-1].lower()
    linking = next_word in _BREAK_BEFORE and (previous_word, next_word) != ("đối", "với")
    return 1 if linking and space - start >= max_chars // 3 else 2


def _cut(sentence: str, max_chars: int, protected: set[int]) -> list[str]:
    """Cut one sentence (single spaces) into pieces of at most max_chars, at spaces only."""
    pieces: list[str] = []
    start = 0
    spaces = [i for i, ch in enumerate(sentence) if ch == " "]
    while len(sentence) - start > max_chars:
        window = [i for i in spaces if start < i <= start + max_chars]
        later = [i for i in spaces if i > start]
        if window:
            # The best rank wins; among equals, the latest space (the longest chunk).
            cut = min(window, key=lambda i: (_rank(sentence, start, i, max_chars, protected), -i))
        elif later:
            cut = later[0]  # one word longer than max_chars: it is a chunk of its own
        else:
            break
        pieces.append(sentence[start:cut])
        start = cut + 1
    pieces.append(sentence[start:])
    return pieces


def chunk(text: str, max_chars: int = 100, *, keep_together: Iterable[str] = ()) -> list[str]:
    """Cut text into chunks of at most max_chars: at sentences, then commas, then spaces."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    phrases = tuple(BUILTIN_ABBREVIATIONS.values()) + tuple(keep_together)
    chunks: list[str] = []
    for sentence in split_sentences(text):
        chunks += _cut(sentence, max_chars, _protected_spaces(sentence, phrases))
    return chunks
