"""emergency deliveries: each device's pickup and start of an emergency

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('emergency_deliveries',
    sa.Column('emergency_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('picked_up_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_emergency_deliveries_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['emergency_id'], ['emergencies.id'], name=op.f('fk_emergency_deliveries_emergency_id_emergencies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('emergency_id', 'device_id', name=op.f('pk_emergency_deliveries'))
    )
    with op.batch_alter_table('emergency_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emergency_deliveries_device_id'), ['device_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('emergency_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emergency_deliveries_device_id'))

    op.drop_table('emergency_deliveries')
