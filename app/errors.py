"""Domain errors; one handler turns them into HTTP responses."""

from __future__ import annotations

import errno
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
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


class RequestTimeout(LoaxaError):
    status_code = 408


class TooManyRequests(LoaxaError):
    """Slow down: `retry_after` seconds until the limit lets the caller in again."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class ServiceUnavailable(LoaxaError):
    status_code = 503


class ErrorOut(BaseModel):
    """Every error answer: a human-readable message."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Unacceptable content; when it does not fit the schema, `errors` has one entry a field."""

    detail: str
    errors: list[FieldError] | None = None


ERROR_DESCRIPTIONS = {
    400: "the request could not be read",
    401: "not signed in, or the token is invalid or has expired",
    403: "signed in, but this role or kind of token may not do this",
    404: "no such resource (or not one the caller may see)",
    408: "the request body stopped arriving, or took too long",
    409: "the request clashes with the resource's current state",
    412: "the resource changed since the version the caller sent",
    413: "the request body is too large",
    414: "the query string or path is too long",
    415: "the body is not of a media type this operation takes",
    422: "the request is well-formed but its content is not acceptable",
    428: "the operation needs the resource's version (If-Match or 'version')",
    429: "too many requests; Retry-After says when to come back",
    503: "a service this operation needs is not available; try again",
    507: "the server has no room to store the result",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error statuses an operation may answer."""
    documented: dict[int | str, dict[str, Any]] = {
        code: {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": ERROR_DESCRIPTIONS[code],
        }
        for code in codes
    }
    if 400 in documented:
        # uvicorn answers a request it cannot parse (a bad request line) itself, in text.
        documented[400]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return documented


# What any operation under /api/v1 may answer: the caller's identity and rights, a missing
# resource, a state clash, invalid content, and the limits every request is held to.
COMMON_RESPONSES = responses(400, 401, 403, 404, 408, 409, 413, 414, 422)

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
