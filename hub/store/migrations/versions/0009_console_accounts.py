"""console: staff accounts and their sessions; the queue's due-time order

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ticket_core.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_String = sqlmodel.sql.sqltypes.AutoString
_Time = ticket_core.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "staff_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", _String(length=120), nullable=False),
        sa.Column("display_name", _String(length=200), nullable=False),
        sa.Column("role", _String(length=20), nullable=False),
        sa.Column("password_hash", _String(length=200), nullable=False),
        sa.Column("language", _String(length=10), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _Time(timezone=True), nullable=True),
        sa.Column("created_at", _Time(timezone=True), nullable=False),
        sa.Column("disabled_at", _Time(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_account_username", "staff_account", ["username"], unique=True)
    op.create_table(
        "console_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", _String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", _String(length=64), nullable=False),
        sa.Column("created_at", _Time(timezone=True), nullable=False),
        sa.Column("last_seen_at", _Time(timezone=True), nullable=False),
        sa.Column("expires_at", _Time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["staff_account.id"], name="fk_console_session_account"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_console_session_token_hash", "console_session", ["token_hash"], unique=True
    )
    op.create_index("ix_console_session_account_id", "console_session", ["account_id"])
    # The queue lists open tickets by nearest due time.
    op.create_index("ix_ticket_status_due", "ticket", ["status", "resolution_due_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_status_due", table_name="ticket")
    op.drop_table("console_session")
    op.drop_table("staff_account")
