"""The CRM lookup's wire format (docs/context-providers.md, "The CRM contract").

Answers are untrusted: every field is typed strictly, bounded in length and count, and free
of control characters, so a broken or hostile adapter can neither store junk in front of
agents nor steer routing with values the bank never configured.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from hub.sdk import PlainText

MAX_IDENTITIES = 10

CustomerNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
"""The bank's customer number: letters, digits and . _ : -, at most 64 characters."""


def _lower(value: str) -> str:
    return value.lower()


Segment = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$"), AfterValidator(_lower)
]
Label = Annotated[PlainText, StringConstraints(min_length=1, max_length=80)]


class IdentityOut(BaseModel):
    kind: str
    value: str


class TicketOut(BaseModel):
    number: str
    channel: str
    kind: str


class LookupRequest(BaseModel):
    """What the hub sends: only identities the channel verified."""

    request_id: str
    identities: list[IdentityOut]
    ticket: TicketOut | None = None


class CrmCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)

    customer_number: CustomerNumber
    name: Annotated[PlainText, StringConstraints(max_length=100)] | None = None
    tier: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None = None
    segments: list[Segment] = Field(default_factory=list, max_length=20)
    products: list[Label] = Field(default_factory=list, max_length=50)
    relationship_manager: Annotated[PlainText, StringConstraints(max_length=100)] | None = None
    matched_by: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] | None = None


class LookupAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    found: bool
    customer: CrmCustomer | None = None

    @model_validator(mode="after")
    def _customer_when_found(self) -> LookupAnswer:
        if self.found and self.customer is None:
            raise ValueError("found is true but there is no customer")
        if not self.found and self.customer is not None:
            raise ValueError("found is false but a customer is given")
        return self
