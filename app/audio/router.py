"""Audio download (by sha256). A segment's recording is uploaded through app.segments."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.accounts.deps import CurrentPrincipal
from app.audio import access, service
from app.db import unit_of_work
from app.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["audio"])

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@router.get("/audio/{sha256}")
def download_audio(principal: CurrentPrincipal, sha256: str) -> FileResponse:
    """The playout file; supports Range requests (resumable downloads) and ETag."""
    if not SHA256.match(sha256):
        raise NotFound("no audio with that sha256")
    with unit_of_work(write=False) as session:
        access.check_can_fetch(session, principal, sha256)
    path: Path = service.store().path_for(sha256)
    if not path.is_file():
        raise NotFound("no audio with that sha256")
    return FileResponse(
        path,
        media_type="audio/mpeg",
        filename=f"{sha256}.mp3",
        headers={
            "ETag": f'"{sha256}"',
            "X-Content-SHA256": sha256,
            # Content-addressed: the bytes behind this URL never change.
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


__all__ = ["router"]
