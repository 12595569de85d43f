"""Errors the core raises; the API maps them to HTTP statuses."""


class TicketCoreError(Exception):
    """Base of every refusal from the core."""


class TicketNotFound(TicketCoreError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no ticket numbered {number!r}")
        self.number = number


class MessageNotFound(LookupError):
    """Attachments name a message the core does not have (yet): its own envelope may still be
    waiting. Not a refusal: the caller retries later."""

    def __init__(self, channel: str, external_id: str) -> None:
        super().__init__(f"no {channel} message {external_id!r} (yet)")
        self.channel = channel
        self.external_id = external_id


class IllegalTransition(TicketCoreError):
    """A lifecycle move the rules do not allow; the reason says which rule."""

    def __init__(self, current: str, target: str, reason: str) -> None:
        super().__init__(f"cannot move from {current} to {target}: {reason}")
        self.current = current
        self.target = target
        self.reason = reason
