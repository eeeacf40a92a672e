"""How loaxa writes a duration: in words for messages, as a clock for tables and feeds.

Messages about limits never contradict the limit they compare with: a length under a
minimum is rounded down and a length over a maximum rounded up (`round_up=True`), so
"0.9 s" is never shown as "1 s" beside "the minimum is 1 s".
"""

from __future__ import annotations


def describe_ms(ms: int, *, round_up: bool = False) -> str:
    """Human length: '0.4 s', '59.9 s', '21 min 3 s', '20 min' (floor unless round_up)."""
    if ms < 60_000:
        tenths = -(-ms // 100) if round_up else ms // 100
        if tenths < 600:
            return f"{tenths / 10:g} s"
    seconds = -(-ms // 1000) if round_up else ms // 1000
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


def clock_format(ms: int, *, hours: bool = False) -> str:
    """Milliseconds as a clock, to the nearest second: "9:05", "12:00"; "00:09:05" with hours
    (the form podcast feeds use)."""
    seconds = round(ms / 1000)
    if hours:
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"
