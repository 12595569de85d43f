"""Console accounts and signed-in HTTP clients for the console's tests."""

from __future__ import annotations

import re

import httpx

from hub.auth import Role
from hub.console.accounts import create_account
from hub.runtime import Hub

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'"X-CSRF-Token": "([^"]+)"')
_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')


async def add_staff(hub: Hub, username: str, role: Role, *, language: str = "en") -> str:
    async with hub.sessions() as session, session.begin():
        await create_account(session, username, PASSWORD, role, hub.clock.now(), language=language)
    return username


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/console/login")
    token = _LOGIN_TOKEN.search(form.text)
    assert token is not None, form.text
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "login_token": token.group(1)},
    )


async def csrf_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/console/")
    found = _CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)
