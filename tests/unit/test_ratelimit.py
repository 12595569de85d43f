"""The in-memory sliding-window limiter (hub/ratelimit.py), driven by a manual clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.ratelimit import SlidingWindow, client_key, retry_after_header
from ticket_core import ManualClock


def test_limit_then_allowed_again_as_the_window_slides() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(3, timedelta(minutes=15))
    for _ in range(3):
        assert limiter.retry_after("a", clock.now()) == 0
        limiter.hit("a", clock.now())
        clock.advance(minutes=1)
    # Three hits at 0, 1 and 2 minutes: the first leaves the window at 15 minutes.
    assert limiter.retry_after("a", clock.now()) == 12 * 60
    assert limiter.retry_after("b", clock.now()) == 0
    clock.advance(minutes=12)
    assert limiter.retry_after("a", clock.now()) == 0
    limiter.hit("a", clock.now())
    assert limiter.retry_after("a", clock.now()) == 60  # the hit at 1 minute leaves next


def test_idle_keys_are_forgotten_and_the_key_count_is_bounded() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(2, timedelta(seconds=10), max_keys=100)
    for i in range(50):
        limiter.hit(f"old-{i}", clock.now())
    clock.advance(seconds=11)
    limiter.hit("new", clock.now())
    assert len(limiter) == 1
    for i in range(500):
        limiter.hit(f"k-{i}", clock.now())
    assert len(limiter) == 100


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(0, timedelta(minutes=1))
    with pytest.raises(ValueError):
        SlidingWindow(1, timedelta(0))


def test_retry_after_header_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(61.01) == "62"


def test_clients_are_counted_by_ipv4_address_or_ipv6_64() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key(None) == client_key("not an address") == "unknown"
