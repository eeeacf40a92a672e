"""The web application. No scheduler runs here: `loaxa scheduler` is its own process."""

from __future__ import annotations

from fastapi import FastAPI

from app import __version__
from app.accounts.router import router as accounts_router
from app.audit.router import router as audit_router
from app.devices.router import router as devices_router
from app.errors import install_handlers
from app.health import router as health_router
from app.playout.router import audio_router
from app.playout.router import router as playout_router
from app.reports.router import router as reports_router
from app.schedule.router import planning_router
from app.schedule.router import router as schedule_router
from app.segments.router import router as segments_router
from app.stations.router import router as stations_router
from app.tts.router import router as tts_router


def create_app() -> FastAPI:
    """Build the FastAPI app with every domain's router."""
    app = FastAPI(
        title="loaxa",
        version=__version__,
        description="Broadcast scheduling for commune radio stations and village loudspeakers",
    )
    install_handlers(app)
    # Playout first: devices poll it thousands of times a second, and route matching is
    # in order.
    for router in (
        playout_router,
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
    ):
        app.include_router(router)
    return app
