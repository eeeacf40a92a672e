"""Structured logs: one JSON object per line, each carrying the request id it belongs to.

Fields: time (UTC, ISO 8601), level, logger, message, and when set request_id, method, path,
status, duration_ms, client (the access log sets those). The request id lives in a context
variable: the middleware sets it for the request, and every record logged while it is
served (in the event loop or in the thread pool, which copies the context) carries it.

Secrets never reach a log line: nothing in loaxa logs a password or token, and as a second
guard every message is scrubbed of what looks like one (a bearer token, a JWT, a device
token, a password field) before it is written.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("loaxa_request_id", default=None)

# Attributes of a LogRecord copied into the JSON object when a log call passes them in extra=.
EXTRA_FIELDS = ("method", "path", "route", "status", "duration_ms", "client", "event")

_SECRETS = [
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[redacted-jwt]"),
    (re.compile(r"\bdev_[A-Za-z0-9_-]{8,}"), "dev_[redacted]"),
    (
        re.compile(r"(?i)([\"']?(?:password|passwd|secret|token)[\"']?\s*[=:]\s*)([\"']?)[^\s&\"',}]+"),
        r"\1\2[redacted]",
    ),
]


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    # Stamped when the record is made, not when it is written: a handler may format it
    # later, outside the request (a queue, a test's capture).
    record = _base_factory(*args, **kwargs)
    if not hasattr(record, "request_id"):
        record.request_id = request_id_var.get()
    return record


if getattr(_base_factory, "__name__", "") != _record_with_request_id.__name__:
    logging.setLogRecordFactory(_record_with_request_id)


def scrub(text: str) -> str:
    """The text with anything that looks like a credential replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """A LogRecord as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain text for a terminal, scrubbed and with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = scrub(super().format(record))
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def logging_config(*, fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for loaxa and uvicorn: one handler on stderr, in the chosen format.

    uvicorn's own access log is off (`loaxa serve` passes access_log=False): loaxa's access
    log replaces it, with the route template, the request id and no query string.
    """
    formatter = "app.logs.JsonFormatter" if fmt == "json" else "app.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"loaxa": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "loaxa",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "loaxa": {"level": level},
            "uvicorn": {"level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure_logging(*, fmt: str = "json", level: str = "INFO") -> None:
    """Apply logging_config in this process (the scheduler; uvicorn applies it in `serve`)."""
    logging.config.dictConfig(logging_config(fmt=fmt, level=level))
