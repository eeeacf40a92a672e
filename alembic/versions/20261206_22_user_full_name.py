"""users: "Họ và tên" (full_name), shown on pages instead of the login name

Revision ID: 22_user_full_name
Revises: 22_console_kept_forms
Create Date: 2026-12-06 02:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "22_user_full_name"
down_revision: str | Sequence[str] | None = "22_console_kept_forms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("full_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("full_name")
