"""The anti-fraud assessment's wire format (docs/context-providers.md, "The anti-fraud
contract").

The score decides whether a ticket is flagged and rerouted, so it is read strictly: a finite
number from 0 to 1 (not a string, not a boolean, never NaN); reasons are codes the bank's
system defines, with a bounded description for agents.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.sdk import PlainText

MAX_IDENTITIES = 10

ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,59}$")]


class IdentityOut(BaseModel):
    kind: str
    value: str


class TicketOut(BaseModel):
    number: str
    channel: str
    kind: str


class MessageOut(BaseModel):
    text: str | None
    received_at: str


class AssessmentRequest(BaseModel):
    """What the hub sends: verified identities, the customer number if the CRM named one,
    the ticket, and its first message (the text only when ``send_text`` is on)."""

    request_id: str
    identities: list[IdentityOut]
    customer_number: str | None = None
    ticket: TicketOut | None = None
    message: MessageOut | None = None


class Reason(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)

    code: ReasonCode
    description: Annotated[PlainText, StringConstraints(max_length=200)] = ""


class Assessment(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    risk_score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    reasons: list[Reason] = Field(default_factory=list, max_length=20)
    assessment_id: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")] | None
    ) = None
