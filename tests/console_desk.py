"""Tickets received and worked straight through ``ticket_core`` at a test clock's time, for
the console's pages (which read what the core wrote, whatever channel it came from)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hub.runtime import Hub
from ticket_core import (
    IdentityClaim,
    IncomingMessage,
    Kind,
    ManualClock,
    Outcome,
    Status,
    TransitionRequest,
    get_ticket,
    receive,
    transition,
)


class Desk:
    """Tickets received and worked with the core's own functions at the test clock's time."""

    def __init__(self, hub: Hub, clock: ManualClock) -> None:
        self.hub, self.clock = hub, clock

    async def receive(
        self, channel: str, kind: Kind, category: str | None, queue: str | None, subject: str
    ) -> str:
        user = uuid.uuid4().hex[:8]
        incoming = IncomingMessage(
            channel=channel,
            external_id=uuid.uuid4().hex,
            received_at=self.clock.now(),
            text=subject,
            kind=kind,
            identities=(IdentityClaim(f"{channel}_user", user, "u***", True),),
            category=category,
            subject=subject,
            queue=queue,
        )
        async with self.hub.sessions() as session, session.begin():
            intake = await receive(
                session,
                incoming,
                identity_key=b"k" * 32,
                now=self.clock.now(),
                reopen_window=timedelta(days=7),
                book=self.hub.book,
            )
            assert intake.ticket.number is not None
            return intake.ticket.number

    async def move(self, number: str, *steps: TransitionRequest, actor: str) -> None:
        async with self.hub.sessions() as session, session.begin():
            ticket = await get_ticket(session, number, for_update=True)
            for step in steps:
                await transition(
                    session, ticket, step, actor=actor, now=self.clock.now(), book=self.hub.book
                )

    async def resolve(self, number: str) -> None:
        await self.move(
            number,
            TransitionRequest(Status.in_progress),
            TransitionRequest(Status.resolved, Outcome.resolved, "已处理"),
            actor="agent:bo",
        )
