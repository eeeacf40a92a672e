"""Domain errors; one handler turns them into HTTP responses."""

from __future__ import annotations

import errno
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

log = logging.getLogger("loaxa.errors")

# How long a client should wait before trying again when the database is away.
DATABASE_RETRY_AFTER_SECONDS = 5


class LoaxaError(Exception):
    """A failure the caller can understand: message and HTTP status."""

    status_code = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class NotFound(LoaxaError):
    status_code = 404


class Conflict(LoaxaError):
    """The request clashes with the current state (wrong status, duplicate, stale version)."""

    status_code = 409


class PreconditionFailed(LoaxaError):
    status_code = 412


class PreconditionRequired(LoaxaError):
    status_code = 428


class Invalid(LoaxaError):
    """Well-formed but unacceptable content."""

    status_code = 422


class Unauthorized(LoaxaError):
    status_code = 401

    def __init__(self, message: str = "not authenticated") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(LoaxaError):
    status_code = 403


class PayloadTooLarge(LoaxaError):
    status_code = 413


class ServiceUnavailable(LoaxaError):
    status_code = 503


class InsufficientStorage(LoaxaError):
    """The server's disk is full: nothing was stored, the caller may try again later."""

    status_code = 507


def disk_full(exc: BaseException) -> bool:
    """Whether an OSError is the disk (or the user's quota) being full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


# Errors that mean the database cannot be reached or used right now (the server is down, a
# connection was cut, the pool is exhausted, SQLite is locked or unreadable), as opposed
# to a bug in a query: the request may well succeed later, so 503 with Retry-After.
_DATABASE_AWAY = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


def database_away(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable or unusable for now."""
    return isinstance(exc, _DATABASE_AWAY)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "request"


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """A one-line, human-readable summary of pydantic errors, naming each field."""
    messages = []
    for err in errors:
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        messages.append(f"{_location(err.get('loc', ()))}: {msg}")
    return "; ".join(messages)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the shape {"detail": message}."""

    @app.exception_handler(LoaxaError)
    async def _loaxa_error(_request: Request, exc: LoaxaError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.message}, status_code=exc.status_code, headers=exc.headers
        )

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        # The message names no host or driver detail; the log has the error.
        log.error(
            "database unavailable during %s %s: %s",
            request.method,
            request.url.path,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return JSONResponse(
            {
                "detail": "the database is unavailable for the moment; try again in "
                f"{DATABASE_RETRY_AFTER_SECONDS} seconds"
            },
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    for away in _DATABASE_AWAY:
        app.add_exception_handler(away, _database_error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse(
            {"detail": describe_validation_errors(errors), "errors": errors}, status_code=422
        )
