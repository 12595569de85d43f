"""ticket import: the source system's id on tickets, and import checkpoints

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ticket_core.models


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (nullable, no default): no table rebuild on SQLite.
    op.add_column('ticket', sa.Column('source_system', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.add_column('ticket', sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    # NULLs are distinct in a unique index on both databases: tickets opened by the hub
    # itself (no source) never collide.
    op.create_index('uq_ticket_source', 'ticket', ['source_system', 'source_id'], unique=True)
    op.create_table('ticket_import_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('file_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('file_name', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('tickets', sa.Integer(), nullable=False),
    sa.Column('loaded', sa.Integer(), nullable=False),
    sa.Column('duplicate', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('rejects_bytes', sa.BigInteger(), nullable=False),
    sa.Column('started_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'file_key', name='uq_ticket_import_run')
    )


def downgrade() -> None:
    op.drop_table('ticket_import_run')
    op.drop_index('uq_ticket_source', table_name='ticket')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('source_id')
        batch_op.drop_column('source_system')
