"""Alembic environment. Runs on the connection ``hub.store.migrate`` hands it."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import hub.store.tables  # noqa: F401  (registers the hub's tables)
import ticket_core.models  # noqa: F401  (registers the core's tables)

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")

if connection is None:
    raise RuntimeError("run migrations with `tongdao migrate`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
