"""Compliance reports, the schedule calendar and the podcast feed."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["reports"])
