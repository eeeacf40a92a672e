"""A light copy of each playout file for people to listen to (issue 26).

Revision ID: 26_listen_copy
Revises: 21_sessions
Create Date: 2026-12-06

``audio_assets.listen_sha256`` names the listening copy (AAC in MP4, in the audio store)
of the asset's playout file; null until it is made.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = "26_listen_copy"
down_revision: Union[str, Sequence[str], None] = "21_sessions"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("audio_assets") as batch:
        batch.add_column(sa.Column("listen_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audio_assets") as batch:
        batch.drop_column("listen_sha256")
