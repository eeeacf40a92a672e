"""audio assets: true peak, loudness range and the playout standard instead of sample peak

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema.

    The sample peak gives way to the true peak. A sample peak says nothing about the true
    peak, so files stored before have none (NULL) until `loaxa audio renormalise` brings
    them to the new standard from their originals; the standard they were made to is NULL
    too, which is how the command finds them.
    """
    with op.batch_alter_table('audio_assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('true_peak_dbtp', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('loudness_range_lu', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('standard_key', sa.String(length=64), nullable=True))
        batch_op.drop_column('peak_dbfs')


def downgrade() -> None:
    """Downgrade schema.

    The old column was NOT NULL: it gets the true peak where there is one (an upper bound
    of the sample peak), else 0 dBFS (unknown).
    """
    with op.batch_alter_table('audio_assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('peak_dbfs', sa.Float(), nullable=True))
    op.execute('UPDATE audio_assets SET peak_dbfs = COALESCE(true_peak_dbtp, 0.0)')
    with op.batch_alter_table('audio_assets', schema=None) as batch_op:
        batch_op.alter_column('peak_dbfs', existing_type=sa.Float(), nullable=False)
        batch_op.drop_column('standard_key')
        batch_op.drop_column('loudness_range_lu')
        batch_op.drop_column('true_peak_dbtp')
