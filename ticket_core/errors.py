"""Errors the core raises; the API maps them to HTTP statuses."""


class TicketCoreError(Exception):
    """Base of every refusal from the core."""


class TicketNotFound(TicketCoreError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no ticket numbered {number!r}")
        self.number = number


class IllegalTransition(TicketCoreError):
    """A lifecycle move the rules do not allow; the reason says which rule."""

    def __init__(self, current: str, target: str, reason: str) -> None:
        super().__init__(f"cannot move from {current} to {target}: {reason}")
        self.current = current
        self.target = target
        self.reason = reason
