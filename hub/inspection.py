"""Audit verification, inspection exports and regulatory statistics, as the REST API and the
CLI both offer them; the logic lives in ``ticket_core`` (audit, export, reports), this wires
it to the hub's sessions, clock, reactions and configuration."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

from hub.runtime import Hub, NotMigrated
from hub.settings import Settings
from hub.store import is_up_to_date
from ticket_core import get_ticket
from ticket_core.audit import AuditVerification, verify_store
from ticket_core.export import export_document, record_export
from ticket_core.reports import (
    DEFAULT_DIMENSIONS,
    Dimension,
    Grouping,
    StatisticsReport,
    StatisticsRequest,
    ticket_statistics,
)


@contextlib.asynccontextmanager
async def standalone_hub(settings: Settings) -> AsyncIterator[Hub]:
    """A hub for one CLI command: the same sessions, clock and reactions as ``serve``, on a
    database checked to be migrated; no connector is started and no worker runs."""
    hub = Hub(settings)
    try:
        if not await is_up_to_date(hub.engine):
            raise NotMigrated("the database is not migrated: run `tongdao migrate`")
        yield hub
    finally:
        await hub.close()


async def verify_audit(hub: Hub, ticket_number: str | None = None) -> AuditVerification:
    """Verify one ticket's audit chain, or every ticket's; raises ``TicketNotFound``."""
    return await verify_store(hub.reads, ticket_number=ticket_number)


async def export_ticket(hub: Hub, number: str, *, actor: str) -> dict[str, Any]:
    """Record the export on the ticket and build its inspection document, in one
    transaction: the document shows the export event, and there is no export that the
    audit trail does not show. Raises ``TicketNotFound``."""
    now = hub.clock.now()
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number, for_update=True)
        record_export(session, ticket, actor=actor, now=now)
        await hub.reactions.run(session, now)
        return await export_document(session, ticket, exported_by=actor, exported_at=now)


async def statistics(
    hub: Hub,
    first: date,
    last: date,
    *,
    grouping: Grouping = Grouping.month,
    dimensions: Sequence[Dimension] = DEFAULT_DIMENSIONS,
    timezone: str | None = None,
) -> StatisticsReport:
    """The regulatory statistics report; raises ``ReportError`` naming a bad parameter."""
    config = hub.settings.reports
    request = StatisticsRequest(
        first=first,
        last=last,
        grouping=grouping,
        timezone=timezone or config.timezone,
        dimensions=tuple(dimensions),
        labels=config.code_labels,
    )
    async with hub.reads() as session:
        return await ticket_statistics(session, request, now=hub.clock.now())
