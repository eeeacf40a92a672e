"""The one place that knows what time it is; tests replace it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return _now().astimezone(UTC)


def local_now(tz: ZoneInfo) -> datetime:
    """The current time in the given zone (a station's local time)."""
    return now().astimezone(tz)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Fix the clock at `at` (aware) for the duration of the block."""
    set_now(lambda: at)
    try:
        yield
    finally:
        reset()


def set_now(fn: Callable[[], datetime]) -> None:
    """Install a clock function returning aware datetimes."""
    global _now
    probe = fn()
    if probe.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    _now = fn


def reset() -> None:
    """Back to the real clock."""
    global _now
    _now = lambda: datetime.now(UTC)  # noqa: E731
