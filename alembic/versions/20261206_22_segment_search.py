"""segments: a search column, title and script without diacritics ("Tìm" in Tin bài)

Revision ID: 22_segment_search
Revises: 22_user_full_name
Create Date: 2026-12-06 02:45:00

"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "22_segment_search"
down_revision: str | Sequence[str] | None = "22_user_full_name"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fold(value: str) -> str:
    # app.text.fold as it was when this revision was written.
    text = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(bare.lower().split())


def upgrade() -> None:
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    segments = sa.table(
        "segments",
        sa.column("id", sa.Integer),
        sa.column("title", sa.String),
        sa.column("script", sa.Text),
        sa.column("search_text", sa.Text),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(segments.c.id, segments.c.title, segments.c.script)).all()
    for row in rows:
        conn.execute(
            segments.update()
            .where(segments.c.id == row.id)
            .values(search_text=_fold(f"{row.title or ''}\n{row.script or ''}"))
        )
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.alter_column("search_text", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.drop_column("search_text")
