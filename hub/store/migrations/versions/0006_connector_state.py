"""connector state: values a connector shares with its other processes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ticket_core.models


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('connector_state',
    sa.Column('connector', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('expires_at', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connector', 'key')
    )
    with op.batch_alter_table('connector_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connector_state_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('connector_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_connector_state_expires_at'))
    op.drop_table('connector_state')
