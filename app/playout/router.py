"""Playout endpoints (playlists, as-run, emergencies, device health)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["playout"])
