"""Domain errors; one handler turns them into HTTP responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse(
            {"detail": describe_validation_errors(errors), "errors": errors}, status_code=422
        )
