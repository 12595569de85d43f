"""The key that hashes customer identities, the same in every process of one installation."""

from __future__ import annotations

import base64
import secrets

from hub.settings import SecuritySettings
from hub.store import HubSetting, SessionFactory
from hub.store.upsert import dialect_insert

_NAME = "identity_key"


async def load_identity_key(sessions: SessionFactory, settings: SecuritySettings) -> bytes:
    """The configured key, else one generated once and kept in the database.

    Keeping the key outside the database (``TONGDAO_SECURITY__IDENTITY_KEY``) is stronger: a
    copy of the database alone then cannot be matched against known phone numbers.
    """
    if settings.identity_key:
        return settings.identity_key.encode()
    candidate = base64.b64encode(secrets.token_bytes(32)).decode()
    async with sessions() as session, session.begin():
        insert = dialect_insert(session, HubSetting.__table__)
        await session.exec(
            insert.values(name=_NAME, value=candidate).on_conflict_do_nothing(
                index_elements=["name"]
            )
        )
        stored = await session.get(HubSetting, _NAME)
        assert stored is not None
        return stored.value.encode()
