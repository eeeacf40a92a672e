"""What a console page plays or downloads, authorised by the session cookie.

The JSON API's files (`/api/v1/audio/…`) need a bearer token, which a page's `<audio>`
element cannot send. These routes serve the same files through the same access rules
(the same service functions), for the signed-in person. Downloads the other pages add
(CSV, Excel, PDF, ICS) follow the same pattern: a `ViewerPage` (or larger) dependency, the
service call, a `Response` with the file and `Content-Disposition`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.console.auth import ViewerPage
from app.console.routing import ConsoleRoute
from app.db import unit_of_work
from app.playout import access

router = APIRouter(prefix="/files", route_class=ConsoleRoute, include_in_schema=False)

@router.get("/audio/{sha256}.mp3")
@router.get("/audio/{sha256}.m4a")
def audio_file(user: ViewerPage, sha256: str) -> FileResponse:
    """A playout file of the user's station, or its listening copy (what the players play
    once it is made). Range requests work: the player can seek."""
    with unit_of_work(write=False) as db:
        path = access.fetchable_file(db, principal=user, sha256=sha256)
    return FileResponse(
        path,
        media_type=access.media_type(path),
        headers={"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=86400"},
    )
