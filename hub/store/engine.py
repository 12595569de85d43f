"""Engine and sessions for SQLite (one writer, in ``BEGIN IMMEDIATE``) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.settings import DatabaseSettings

SessionFactory = async_sessionmaker[AsyncSession]
_READ_ONLY = "tongdao_read_only"


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url)
    kwargs: dict[str, Any] = {"pool_size": settings.pool_size, "max_overflow": settings.pool_size}
    # hide_parameters: bound values (message text, identities) never reach error strings.
    return create_async_engine(
        url, echo=settings.echo, pool_pre_ping=True, hide_parameters=True, **kwargs
    )


def _sqlite_engine(settings: DatabaseSettings, url: Any) -> AsyncEngine:
    database = url.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=settings.echo,
        connect_args={"timeout": 30},
        pool_size=settings.pool_size,
        hide_parameters=True,
    )
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that every transaction can begin
        # IMMEDIATE: SQLAlchemy ignores FOR UPDATE SKIP LOCKED on SQLite, so claims rely on
        # the single write lock instead, and deferred transactions that later write fail
        # with SQLITE_BUSY rather than wait.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers (``read_session_factory``) begin deferred, so WAL lets them run beside the
        # writer instead of queueing for its lock.
        reading = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that only read. On SQLite they do not take the write lock; writing through
    one fails there rather than silently racing the writer."""
    return async_sessionmaker(
        engine.execution_options(**{_READ_ONLY: True}),
        class_=AsyncSession,
        expire_on_commit=False,
    )
