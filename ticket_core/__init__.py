"""The ticket core: model, lifecycle, due times and audit. Imports nothing else of Tongdao."""

from ticket_core.audit import verify_chain
from ticket_core.clock import Clock, ManualClock, SystemClock
from ticket_core.errors import IllegalTransition, TicketCoreError, TicketNotFound
from ticket_core.intake import IdentityClaim, IncomingAttachment, IncomingMessage
from ticket_core.lifecycle import TRANSITIONS, TransitionRequest, check_transition
from ticket_core.models import (
    AttachmentBlob,
    AuditEvent,
    Customer,
    CustomerIdentity,
    DeliveryState,
    Direction,
    Kind,
    Message,
    Outcome,
    Priority,
    Status,
    Ticket,
    UTCDateTime,
)
from ticket_core.tickets import (
    Intake,
    add_note,
    add_outbound,
    add_reference,
    get_ticket,
    latest_reply_address,
    mark_delivery,
    messages_of,
    receive,
    transition,
)

__all__ = [
    "TRANSITIONS",
    "AttachmentBlob",
    "AuditEvent",
    "Clock",
    "Customer",
    "CustomerIdentity",
    "DeliveryState",
    "Direction",
    "IdentityClaim",
    "IllegalTransition",
    "IncomingAttachment",
    "IncomingMessage",
    "Intake",
    "Kind",
    "ManualClock",
    "Message",
    "Outcome",
    "Priority",
    "Status",
    "SystemClock",
    "Ticket",
    "TicketCoreError",
    "TicketNotFound",
    "TransitionRequest",
    "UTCDateTime",
    "add_note",
    "add_outbound",
    "add_reference",
    "check_transition",
    "get_ticket",
    "latest_reply_address",
    "mark_delivery",
    "messages_of",
    "receive",
    "transition",
    "verify_chain",
]
