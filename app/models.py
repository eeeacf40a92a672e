"""Imports every domain's models so that Base.metadata knows all tables (Alembic, tests)."""

from app.accounts.models import ConsoleSessionRow, User
from app.audio.models import AudioAsset
from app.audit.models import AuditEvent
from app.console.models import KeptForm
from app.devices.models import Device
from app.playout.models import AsRunEvent, Emergency, EmergencyDelivery
from app.push.models import PushLogin, PushOutbox
from app.reports.models import IssuedReport
from app.schedule.models import (
    Broadcast,
    JobRun,
    PlanState,
    RundownItem,
    SchedulerJob,
    SchedulerProcess,
    ScheduleWarning,
)
from app.segments.models import Segment, SegmentVillage
from app.stations.models import Programme, Station, StationNetwork, Village
from app.streams.models import RelaySlot, StreamState
from app.tts.models import StationAbbreviation

__all__ = [
    "AsRunEvent",
    "AudioAsset",
    "AuditEvent",
    "Broadcast",
    "ConsoleSessionRow",
    "Device",
    "Emergency",
    "EmergencyDelivery",
    "IssuedReport",
    "JobRun",
    "KeptForm",
    "PlanState",
    "Programme",
    "PushLogin",
    "PushOutbox",
    "RelaySlot",
    "RundownItem",
    "ScheduleWarning",
    "SchedulerJob",
    "SchedulerProcess",
    "Segment",
    "SegmentVillage",
    "Station",
    "StationAbbreviation",
    "StationNetwork",
    "StreamState",
    "User",
    "Village",
]
