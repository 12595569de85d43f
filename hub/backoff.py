"""Retry schedules for durable work, computed with tenacity's wait strategies.

The retries themselves are rows with a ``next_attempt_at``, not sleeping coroutines, so they
survive restarts and tests can reach them by moving the clock.
"""

from __future__ import annotations

from tenacity import RetryCallState, wait_exponential


class Backoff:
    def __init__(self, initial: float, maximum: float) -> None:
        self._wait = wait_exponential(multiplier=initial, max=maximum, exp_base=2)
        self._maximum = maximum

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failure. A peer's Retry-After wins when it
        is longer, up to the schedule's maximum."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempts
        return max(float(self._wait(state)), min(retry_after or 0.0, self._maximum))
