"""station networks: a station's kind (ip or fm) through time, and the kind each broadcast
and emergency was published under

Revision ID: 0005_networks
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000

"""
from datetime import UTC, date, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision: str = '0005_networks'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema.

    Existing stations become ``fm`` from the beginning of time, and existing broadcasts and
    emergencies were published under ``fm``: that is what every station did until now (the
    station's PC feeds a transmitter; village devices play only village slots).
    """
    op.create_table('station_networks',
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('network', sa.String(length=8), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_station_networks_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_station_networks_station_id_stations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('station_id', 'effective_from', name=op.f('pk_station_networks'))
    )
    stations = sa.table('stations', sa.column('id', sa.Integer()))
    networks = sa.table(
        'station_networks',
        sa.column('station_id', sa.Integer()),
        sa.column('effective_from', sa.Date()),
        sa.column('network', sa.String()),
        sa.column('created_at', app.db.UTCDateTime(timezone=True)),
    )
    op.execute(
        networks.insert().from_select(
            ['station_id', 'effective_from', 'network', 'created_at'],
            sa.select(
                stations.c.id,
                sa.literal(date.min, sa.Date()),
                sa.literal('fm', sa.String()),
                sa.literal(datetime.now(UTC), app.db.UTCDateTime(timezone=True)),
            ),
        )
    )

    # A NOT NULL column with a default: PostgreSQL adds it without rewriting the table, and
    # SQLite with a plain ALTER TABLE (no copy of the broadcasts).
    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network', sa.String(length=8), server_default='fm', nullable=False))

    with op.batch_alter_table('emergencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network', sa.String(length=8), server_default='fm', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('emergencies', schema=None) as batch_op:
        batch_op.drop_column('network')

    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.drop_column('network')

    op.drop_table('station_networks')
