"""The dialect-specific INSERT (with ON CONFLICT) for the two databases we run on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    if session.bind is None:
        raise RuntimeError("the session is not bound to an engine")
    module = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return module.insert(table)
