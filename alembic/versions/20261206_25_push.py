"""Push through an MQTT broker (issue 25): the outbox, the broker logins, each device's push state.

Revision ID: 25_push
Revises: 24_live
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
import app.db
from alembic import op

revision: str = "25_push"
down_revision: Union[str, Sequence[str], None] = "24_live"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "push_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("retain", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_outbox")),
    )
    op.create_index("ix_push_outbox_pending", "push_outbox", ["sent_at", "id"])
    op.create_table(
        "push_logins",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("made_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_push_logins_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_push_logins")),
    )
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("push_state", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("push_state")
    op.drop_table("push_logins")
    op.drop_index("ix_push_outbox_pending", table_name="push_outbox")
    op.drop_table("push_outbox")
