"""Texts the hub sends customers on its own: the acknowledgement of a new ticket."""

from __future__ import annotations

from ticket_core import Kind, Ticket

_KIND_ZH = {Kind.complaint: "投诉", Kind.consultation: "咨询", Kind.suggestion: "建议"}


def acknowledgement(ticket: Ticket) -> str:
    due = (
        ticket.resolution_due_at.strftime("%Y-%m-%d %H:%M UTC")
        if ticket.resolution_due_at
        else None
    )
    kind = Kind(ticket.kind)
    zh = f"您的{_KIND_ZH[kind]}已受理，工单号 {ticket.number}。"
    en = f"We have received your {kind.value}; your ticket number is {ticket.number}."
    if due:
        zh += f"我们将在 {due} 前给您答复。"
        en += f" We will answer by {due}."
    return f"{zh}\n{en}"
