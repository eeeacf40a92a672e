"""Broadcasts, their rundowns, and the scheduler's warnings."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class BroadcastStatus(enum.StrEnum):
    planned = "planned"
    assembled = "assembled"
    aired = "aired"
    missed = "missed"
    cancelled = "cancelled"


class Broadcast(Base):
    """One dated airing (buổi phát) of a programme on a station or a village."""

    __tablename__ = "broadcasts"
    __table_args__ = (
        # A programme airs once per period: the local month for the CCHC column, the slot
        # for a weekly village programme. Enforced here so that racing requests cannot both win.
        Index(
            "uq_broadcasts_period",
            "station_id",
            "programme_id",
            "period_key",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        # The rolling plan makes each slot of a cadence once: a slot it made stays made,
        # whatever staff did with the broadcast since (moved it, cancelled it).
        Index(
            "uq_broadcasts_plan_key",
            "station_id",
            "programme_id",
            "plan_key",
            unique=True,
            sqlite_where=text("plan_key IS NOT NULL"),
            postgresql_where=text("plan_key IS NOT NULL"),
        ),
        Index("ix_broadcasts_station_starts", "station_id", "starts_at"),
        # The programme and the village are the station's own: each key pairs them with
        # station_id. The station itself is reached through the programme (whose station
        # must exist), so a separate station key would only repeat that check, which
        # costs a sixth of the time of planning a country's year (measured).
        # Deleting a station deletes its programmes and villages, and so its broadcasts.
        ForeignKeyConstraint(
            ["programme_id", "station_id"],
            ["programmes.id", "programmes.station_id"],
            name="fk_broadcasts_programme_station",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["village_id", "station_id"],
            ["villages.id", "villages.station_id"],
            name="fk_broadcasts_village_station",
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(Integer)
    programme_id: Mapped[int] = mapped_column(Integer, index=True)
    village_id: Mapped[int | None] = mapped_column(Integer, index=True)
    starts_at: Mapped[datetime]
    # "2024-03" for a monthly programme; "v<village>:<local slot>" for a village one.
    period_key: Mapped[str] = mapped_column(String(64))
    local_month: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.planned.value)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    # The station's network kind on the broadcast's local day (stations.network.network_on),
    # which says who carries it (app.playout.scope): a past month keeps the rule it aired by.
    # Rows from before networks existed, and rows written without it, are "fm".
    network: Mapped[str] = mapped_column(String(8), server_default="fm")
    rundown_set_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    master_sha256: Mapped[str | None] = mapped_column(String(64))
    master_duration_ms: Mapped[int | None] = mapped_column(Integer)
    # Hash of what the master was rendered from; an unchanged rundown reuses the master.
    master_key: Mapped[str | None] = mapped_column(String(64))
    cue_sheet: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    assembled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The cadence slot the plan made this broadcast for (its period key then); None for a
    # broadcast made by hand, or a slot the plan itself retired when the cadence changed.
    plan_key: Mapped[str | None] = mapped_column(String(64))
    # The version the plan last left it at: equal to `version` while nobody else changed
    # it (moved, filled, cancelled, assembled...), so the plan may still re-plan it.
    plan_version: Mapped[int | None] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}


class RundownItem(Base):
    """A segment's place in a broadcast's rundown."""

    __tablename__ = "rundown_items"
    __table_args__ = (UniqueConstraint("broadcast_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), index=True
    )


class ScheduleWarning(Base):
    """Something the scheduler found wrong or missing: one row per kind, station and month.

    A group's items are what it is about (broadcasts, or the month itself); the count follows
    them as they arrive and go, and the group resolves itself when none is left. Rows from
    before grouping (month None) are single findings.
    """

    __tablename__ = "warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int | None] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    # Only for a single finding about one broadcast; a group lists its broadcasts in items.
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    # The group (kind, station, month), or a single finding: stored once either way.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    month: Mapped[str | None] = mapped_column(String(7))  # the station's local month
    stage: Mapped[str | None] = mapped_column(String(8))  # "T-7", "T-1": how close it is
    item_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    acked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The count when acknowledged: a group that grew since needs a look again.
    acked_count: Mapped[int | None] = mapped_column(Integer)


class PlanState(Base):
    """How far the rolling plan has planned a station, and from which rules.

    The fingerprint covers everything the plan reads (time zone, programmes, villages,
    cadences): while it and the horizon stay the same, the daily run has nothing to do.
    """

    __tablename__ = "plan_states"

    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64))
    planned_through: Mapped[str] = mapped_column(String(7))  # last local month planned
    updated_at: Mapped[datetime]


class SchedulerProcess(Base):
    """A `loaxa scheduler` process and its heartbeat; the API tells a dead one from it."""

    __tablename__ = "scheduler_processes"

    id: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), unique=True)  # host:pid
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    stopped_at: Mapped[datetime | None]


class SchedulerJob(Base):
    """A scheduler job's last run, its outcome and its next run, for `GET /api/v1/scheduler`."""

    __tablename__ = "scheduler_jobs"

    job: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(16))  # ok, failed
    last_detail: Mapped[str | None] = mapped_column(Text)
    last_holder: Mapped[str | None] = mapped_column(String(120))
    runs: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None]


class JobRun(Base):
    """One run of a scheduled job for one key (a day, a broadcast), claimed by one process.

    The unique (job, run_key) makes two scheduler processes run each job once: the second
    insert fails and that process skips. A claim whose lease ran out (its process died) may
    be taken over.
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "run_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    run_key: Mapped[str] = mapped_column(String(120))
    holder: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed
    claimed_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    detail: Mapped[str | None] = mapped_column(Text)
