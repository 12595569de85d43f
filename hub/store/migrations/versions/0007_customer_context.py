"""customer context: provider lookups, context records, merges

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ticket_core.models


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('context_provider_state',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('failing_since', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('open_until', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('updated_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('customer_context',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('found', sa.Boolean(), nullable=False),
    sa.Column('customer_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('name_masked', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('products', sa.JSON(), nullable=False),
    sa.Column('relationship_manager', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('risk_score', sa.Float(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('fetched_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name='fk_customer_context_customer'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'provider', name='uq_customer_context_provider')
    )
    op.create_table('customer_merge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('moved_identities', sa.JSON(), nullable=False),
    sa.Column('moved_tickets', sa.JSON(), nullable=False),
    sa.Column('filled', sa.JSON(), nullable=False),
    sa.Column('tags_added', sa.JSON(), nullable=False),
    sa.Column('undone_at', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('undo_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['customer.id'], name='fk_customer_merge_source'),
    sa.ForeignKeyConstraint(['target_id'], ['customer.id'], name='fk_customer_merge_target'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer_merge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merge_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merge_target_id'), ['target_id'], unique=False)

    op.create_table('ticket_context',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('next_attempt_at', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('from_cache', sa.Boolean(), nullable=False),
    sa.Column('found', sa.Boolean(), nullable=True),
    sa.Column('risk_score', sa.Float(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('requested_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ticket_core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', ticket_core.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name='fk_ticket_context_ticket'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'provider', name='uq_ticket_context_provider')
    )
    with op.batch_alter_table('ticket_context', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_context_provider_state', ['provider', 'state'], unique=False)

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_customer_merged_into', 'customer', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_constraint('fk_customer_merged_into', type_='foreignkey')
        batch_op.drop_column('merged_into_id')

    with op.batch_alter_table('ticket_context', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_context_provider_state')

    op.drop_table('ticket_context')
    with op.batch_alter_table('customer_merge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merge_target_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merge_source_id'))

    op.drop_table('customer_merge')
    op.drop_table('customer_context')
    op.drop_table('context_provider_state')
