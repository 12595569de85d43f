"""Envelope, parsed by its connector, to the core's ``IncomingMessage``."""

from __future__ import annotations

from hub.sdk import InboundEnvelope, InboundMessage
from normalizer.classify import classify
from normalizer.pii import mask_identity, mask_name, mask_phone
from ticket_core.intake import IdentityClaim, IncomingAttachment, IncomingMessage

SUBJECT_LENGTH = 80


def normalize(envelope: InboundEnvelope, message: InboundMessage) -> IncomingMessage:
    text = message.text.strip()
    if not text and not message.attachments:
        raise ValueError("the message has neither text nor attachments")
    decision = classify(text, message.kind_hint)
    phone = next((i.value for i in message.identities if i.kind == "phone"), None)
    first_line = text.splitlines()[0] if text else "(attachment)"
    return IncomingMessage(
        channel=envelope.channel,
        external_id=envelope.external_id,
        received_at=envelope.received_at,
        text=text,
        kind=decision.kind,
        priority=decision.priority,
        identities=tuple(
            IdentityClaim(i.kind, i.value, mask_identity(i.kind, i.value), i.verified)
            for i in message.identities
        ),
        subject=message.subject or first_line[:SUBJECT_LENGTH],
        display_name=mask_name(message.display_name) if message.display_name else None,
        phone_masked=mask_phone(phone) if phone else None,
        ticket_reference=message.ticket_reference,
        reply_to=dict(message.reply_address),
        attachments=tuple(
            IncomingAttachment(a.name, a.content_type, a.data) for a in message.attachments
        ),
        classification=decision.as_record(),
    )
