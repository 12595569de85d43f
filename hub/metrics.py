"""Prometheus counters for what operators watch: intake, processing, delivery."""

from __future__ import annotations

from prometheus_client import Counter

ENVELOPES = Counter(
    "tongdao_envelopes_total", "Inbound envelopes offered by connectors", ["channel", "result"]
)
PROCESSED = Counter(
    "tongdao_envelopes_processed_total", "Envelopes through the pipeline", ["channel", "result"]
)
DELIVERIES = Counter(
    "tongdao_outbox_attempts_total", "Outbound delivery attempts", ["target", "result"]
)
SLA_EVENTS = Counter(
    "tongdao_sla_events_total", "SLA warnings, breaches and automatic closes", ["clock", "event"]
)
