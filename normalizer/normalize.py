"""Envelope, parsed by its connector, to the core's ``IncomingMessage``."""

from __future__ import annotations

from hub.sdk import InboundEnvelope, InboundMessage
from normalizer.classify import Understanding, default_understanding
from normalizer.pii import mask_identity, mask_name, mask_phone
from normalizer.routing import NO_ROUTES, RouteInput, Router
from ticket_core.intake import IdentityClaim, IncomingAttachment, IncomingMessage
from ticket_core.models import Priority

SUBJECT_LENGTH = 80
REGULATOR_QUEUE = "consumer-protection"
_RAISING_TAGS = frozenset({"elderly", "foreign", "disabled"})
_ORDER = (Priority.low, Priority.normal, Priority.high, Priority.urgent)


def _raise(priority: Priority, steps: int = 1) -> Priority:
    return _ORDER[min(len(_ORDER) - 1, _ORDER.index(priority) + steps)]


def _priority(base: Priority, message: InboundMessage) -> Priority:
    """Regulator transfers rank above ordinary complaints, a live call handed over above all;
    a complainant the regulator names as elderly or foreign raises it one step more."""
    priority = base
    if "hot_transfer" in message.flags:
        return Priority.urgent
    if "regulator_transfer" in message.flags:
        priority = max(priority, Priority.high, key=_ORDER.index)
    if _RAISING_TAGS.intersection(message.customer_tags):
        priority = _raise(priority)
    return priority


def normalize(
    envelope: InboundEnvelope,
    message: InboundMessage,
    understanding: Understanding | None = None,
    router: Router = NO_ROUTES,
) -> IncomingMessage:
    """Classify the message (``understanding``: the configured taxonomy and models) and route
    it (``router``: the configured rules, first match); both decisions travel in the
    ``IncomingMessage`` for the core to record on the ticket it opens."""
    text = message.text.strip()
    if not text and not message.attachments:
        raise ValueError("the message has neither text nor attachments")
    decision = (understanding or default_understanding()).classify(text, message.kind_hint)
    phone = next((i.value for i in message.identities if i.kind == "phone"), None)
    first_line = text.splitlines()[0] if text else "(attachment)"
    codes = dict(message.category_codes)
    if not codes:
        # The channel classified nothing: our own codes, recorded as the classifier's.
        codes = {
            k: v
            for k, v in (("business", decision.category_code), ("cause", decision.cause_code))
            if v
        }
    queue = REGULATOR_QUEUE if "regulator_transfer" in message.flags else None
    priority = _priority(decision.priority, message)
    route = router.route(
        RouteInput(
            kind=decision.kind.value,
            label=decision.label or decision.kind.value,
            channel=envelope.channel,
            category=decision.category,
            cause=decision.cause,
            segments=frozenset(t.lower() for t in message.customer_tags),
            flags=frozenset(message.flags),
            urgency=frozenset(decision.urgency),
            sentiment=decision.sentiment,
            amount=decision.amount,
        )
    )
    policy = None
    routing: dict[str, object] = {}
    if route is not None:
        routing = route.as_record()
        priority = route.apply_priority(priority)
        queue = route.rule.queue or queue
        policy = route.rule.sla_policy
    return IncomingMessage(
        channel=envelope.channel,
        external_id=envelope.external_id,
        received_at=envelope.received_at,
        text=text,
        kind=decision.kind,
        priority=priority,
        category=decision.category,
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
        clock_started_at=message.received_at,
        language=message.language or "zh-CN",
        deadline=message.deadline,
        flags=message.flags,
        customer_tags=message.customer_tags,
        category_codes=codes,
        references=message.references,
        queue=queue,
        policy=policy,
        routing=routing,
    )
