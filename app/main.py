"""The web application. No scheduler runs here: `loaxa scheduler` is its own process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app import __version__
from app.accounts.router import router as accounts_router
from app.audit.router import router as audit_router
from app.compression import CompressMiddleware
from app.console.router import install as install_console
from app.db import INT64_MAX
from app.devices.router import router as devices_router
from app.errors import COMMON_RESPONSES, install_handlers
from app.health import router as health_router
from app.middleware import LoaxaMiddleware
from app.playout.live_router import router as live_router
from app.playout.router import audio_router
from app.playout.router import router as playout_router
from app.push.router import router as push_router
from app.reports.router import router as reports_router
from app.schedule.router import planning_router
from app.schedule.router import router as schedule_router
from app.segments.router import router as segments_router
from app.stations.router import router as stations_router
from app.streams.router import router as streams_router
from app.tts.router import router as tts_router


def _exact_integer_bounds(node: Any) -> None:
    """Integer bounds as integers: FastAPI's OpenAPI models hold them as floats, which turns
    the 64-bit limit into 2**63 (one past what the database holds) and 1 into 1.0."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = INT64_MAX if value == float(INT64_MAX) else int(value)
        for child in node.values():
            _exact_integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_integer_bounds(child)


def _openapi_with_exact_bounds(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _exact_integer_bounds(generate())
        return app.openapi_schema  # type: ignore[return-value]

    return openapi


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Push (app.push): changes go to the outbox, and this process's publisher sends them."""
    from app.config import get_settings
    from app.push import broker, outbox, publisher

    if not get_settings().mqtt_enabled:
        yield
        return
    outbox.install()
    publisher.start(broker.target())
    try:
        yield
    finally:
        publisher.stop()


def create_app() -> FastAPI:
    """Build the FastAPI app with every domain's router."""
    app = FastAPI(
        title="loaxa",
        version=__version__,
        description="Broadcast scheduling for commune radio stations and village loudspeakers",
        lifespan=_lifespan,
    )
    install_handlers(app)
    # Playout first: devices poll it thousands of times a second, and route matching is
    # in order.
    for router in (
        playout_router,
        push_router,
        audio_router,
        health_router,
        accounts_router,
        stations_router,
        devices_router,
        segments_router,
        schedule_router,
        planning_router,
        tts_router,
        reports_router,
        audit_router,
        streams_router,
        live_router,
    ):
        # Health and metrics answer what they document themselves.
        app.include_router(router, responses=None if router is health_router else COMMON_RESPONSES)
    # Last: the staff console's pages (/, /segments, …) and its static files.
    install_console(app)
    app.openapi = _openapi_with_exact_bounds(app)  # type: ignore[method-assign]
    app.add_middleware(CompressMiddleware)
    _outermost(app)
    return app


def _outermost(app: FastAPI) -> None:
    """Wrap the whole stack, Starlette's error handler included, so that a 500 gets the
    security headers and the request id, and its latency is counted, like every answer."""
    build = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        return LoaxaMiddleware(build(), routes=lambda: app.routes)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
