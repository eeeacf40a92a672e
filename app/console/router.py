"""The console's routers, and `install` that adds them and the static files to the app.

A new page: a module in app/console/pages/ with `router = APIRouter(route_class=ConsoleRoute,
include_in_schema=False)`, its templates in app/console/templates/, a line in
`render.NAV` if it has a menu entry, and its router in `ROUTERS` below.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI

from app.console.pages import (
    admin,
    auth,
    devices,
    emergency,
    files,
    home,
    relays,
    reports,
    schedule,
    segments,
)
from app.console.render import SCRIPTS_URL, STATIC_DIR, STATIC_URL, TEMPLATES_DIR, warm
from app.console.routing import ConsoleStatic, TemplateScripts

ROUTERS = [auth.router, home.router, segments.router, files.router]
ROUTERS += [schedule.router, reports.router]  # Lịch phát, Báo cáo
ROUTERS += [devices.router, emergency.router, admin.router, relays.router]


def install(app: FastAPI) -> None:
    """Serve the console from `app`: pages at /, CSS and JavaScript under /static."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount(STATIC_URL, ConsoleStatic(directory=STATIC_DIR), name="console-static")
    app.mount(SCRIPTS_URL, TemplateScripts(directory=TEMPLATES_DIR), name="console-scripts")
    # Off the request path: the first page of a fresh process is then as quick as the next.
    threading.Thread(target=warm, name="console-warm", daemon=True).start()
