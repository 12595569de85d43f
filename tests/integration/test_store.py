"""Storage on real SQLite and PostgreSQL: migrations, readiness, constraints, shared keys."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from hub.identity_key import load_identity_key
from hub.runtime import Hub, NotMigrated
from hub.settings import DatabaseSettings, SecuritySettings, Settings
from hub.store import (
    create_engine,
    current_revision,
    head_revision,
    is_up_to_date,
    session_factory,
    upgrade,
)
from ticket_core import Customer, CustomerIdentity, ManualClock


async def test_migrations_bring_an_empty_database_to_head(database_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        assert await current_revision(engine) == head_revision()
        assert await is_up_to_date(engine)
        await upgrade(engine)  # again: nothing to do
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_unmigrated_database_is_not_ready_and_hub_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(database={"url": f"sqlite+aiosqlite:///{tmp_path}/empty.db"})
    engine = create_engine(settings.database)
    try:
        assert not await is_up_to_date(engine)
    finally:
        await engine.dispose()
    hub = Hub(settings)
    with pytest.raises(NotMigrated, match="tongdao migrate"):
        await hub.open(migrate=False)
    await hub.close()


async def test_a_verified_identity_belongs_to_one_customer_only(database_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=database_url))
    sessions = session_factory(engine)
    now = ManualClock().now()
    try:
        async with sessions() as session, session.begin():
            first, second = Customer(created_at=now), Customer(created_at=now)
            session.add_all([first, second])
            await session.flush()
            for customer in (first, second):
                session.add(
                    CustomerIdentity(
                        customer_id=customer.id,
                        kind="phone",
                        value_hash="h",
                        masked="138****0000",
                        verified=False,
                        created_at=now,
                    )
                )
            session.add(
                CustomerIdentity(
                    customer_id=first.id,
                    kind="app_user",
                    value_hash="v",
                    masked="u***1",
                    verified=True,
                    created_at=now,
                )
            )
            ids = (first.id, second.id)
        with pytest.raises(IntegrityError):
            async with sessions() as session, session.begin():
                session.add(
                    CustomerIdentity(
                        customer_id=ids[1],
                        kind="app_user",
                        value_hash="v",
                        masked="u***1",
                        verified=True,
                        created_at=now,
                    )
                )
    finally:
        await engine.dispose()


async def test_generated_identity_key_is_shared_by_every_process(database_url: str) -> None:
    engines = [create_engine(DatabaseSettings(url=database_url)) for _ in range(2)]
    try:
        keys = [await load_identity_key(session_factory(e), SecuritySettings()) for e in engines]
        assert keys[0] == keys[1]
        assert len(keys[0]) >= 32
        configured = await load_identity_key(
            session_factory(engines[0]),
            SecuritySettings(identity_key="from-config-" + uuid.uuid4().hex),
        )
        assert configured.startswith(b"from-config-")
    finally:
        for engine in engines:
            await engine.dispose()


async def test_verified_identity_owned_by_another_customer_is_not_taken_over(
    database_url: str,
) -> None:
    from ticket_core import IdentityClaim
    from ticket_core.customers import resolve_customer

    engine = create_engine(DatabaseSettings(url=database_url))
    sessions = session_factory(engine)
    now, key = ManualClock().now(), b"k" * 32
    a = IdentityClaim("app_user", "A", "A***", True)
    x = IdentityClaim("wechat_openid", "X", "X***", True)
    try:
        async with sessions() as session, session.begin():
            first = await resolve_customer(
                session, key, (a,), display_name=None, phone_masked=None, now=now
            )
            second = await resolve_customer(
                session, key, (x,), display_name=None, phone_masked=None, now=now
            )
        async with sessions() as session, session.begin():
            both = await resolve_customer(
                session, key, (a, x), display_name=None, phone_masked=None, now=now
            )
        assert both.id == first.id != second.id
    finally:
        await engine.dispose()
