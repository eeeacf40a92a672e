"""console: refused forms kept on the server for the page they came from (POST/redirect/GET)

Revision ID: 22_console_kept_forms
Revises: 0009
Create Date: 2026-12-06 02:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "22_console_kept_forms"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_kept_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("page", sa.String(length=500), nullable=False),
        sa.Column("action", sa.String(length=500), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_console_kept_forms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_kept_forms")),
        sa.UniqueConstraint(
            "session_key", "page", name=op.f("uq_console_kept_forms_session_key_page")
        ),
    )
    with op.batch_alter_table("console_kept_forms", schema=None) as batch_op:
        batch_op.create_index("ix_console_kept_forms_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_console_kept_forms_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("console_kept_forms")
