"""Customer context after the ack: CRM and anti-fraud lookups, and what their answers change.

The ack path never calls a provider. When a ticket opens, ``LookupScheduler`` (a reaction,
see ``hub.reactions``) writes one outbox row per enabled provider (target
``context:<provider>``) and a ``ticket_context`` row in state ``pending``, in the transaction
that opened the ticket. The dispatcher then hands those rows to ``ContextDelivery``, so
leases, retries with backoff and dead letters work as for any delivery; on top of them come a
per-call time limit, a circuit breaker per provider (``ProviderBreaker``), a cache of recent
CRM answers, and the recovery rule: when a provider answers again, every lookup left
``unavailable`` is asked again.

An answer is applied (``ContextApplier``) in the transaction that records the delivery: the
customer's context is stored, a CRM customer number links or merges customers, and the bank's
policy raises priority or flags the ticket. Every change is an audit event on the ticket.
"""

from hub.enrichment.applying import Answer, ContextApplier
from hub.enrichment.breaker import ProviderBreaker
from hub.enrichment.delivery import ContextDelivery
from hub.enrichment.scheduling import CONTEXT_KIND, LookupScheduler, context_target

__all__ = [
    "CONTEXT_KIND",
    "Answer",
    "ContextApplier",
    "ContextDelivery",
    "LookupScheduler",
    "ProviderBreaker",
    "context_target",
]
