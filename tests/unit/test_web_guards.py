"""The web form's guards on their own: file types by content, one-time codes, CSRF tokens,
the shared rate limit on a moving clock, language choice and field validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.web.forms import check
from connectors.web.guards import (
    SharedLimit,
    code_digest,
    code_ok,
    csrf_ok,
    csrf_token,
    new_code,
    sniff,
)
from connectors.web.words import choose_language
from hub.sdk import MemoryState
from ticket_core import ManualClock

SECRET = b"k" * 32


def test_file_types_are_read_from_content_not_names() -> None:
    assert sniff(b"%PDF-1.7\n...") == ("application/pdf", ".pdf")
    assert sniff(b"\x89PNG\r\n\x1a\n....") == ("image/png", ".png")
    assert sniff(b"\xff\xd8\xff\xe0..JFIF") == ("image/jpeg", ".jpg")
    for hostile in (b"MZ\x90\x00", b"<svg onload=alert(1)>", b"PK\x03\x04", b"", b"%PDF"):
        assert sniff(hostile) is None


def test_codes_are_bound_single_valued_and_forgiving_of_input_methods() -> None:
    code = new_code()
    assert len(code) == 6 and code.isdigit()
    stored = code_digest(SECRET, "a" * 32, "123456")
    assert code_ok(SECRET, "a" * 32, "123456", stored)
    assert code_ok(SECRET, "a" * 32, "１２３ ４５６", stored)  # full-width, spaced
    assert not code_ok(SECRET, "b" * 32, "123456", stored)  # another submission
    assert not code_ok(SECRET, "a" * 32, "123457", stored)
    assert not code_ok(SECRET, "a" * 32, "", stored)


def test_csrf_token_needs_the_cookie_it_was_made_for() -> None:
    token = csrf_token(SECRET, "browser-one-token")
    assert csrf_ok(SECRET, "browser-one-token", token)
    assert not csrf_ok(SECRET, "browser-two-token", token)
    assert not csrf_ok(SECRET, None, token)
    assert not csrf_ok(SECRET, "browser-one-token", "")
    assert not csrf_ok(b"x" * 32, "browser-one-token", token)


async def test_shared_limit_counts_per_key_until_the_window_passes() -> None:
    clock = ManualClock(datetime(2026, 11, 23, 8, tzinfo=UTC))
    limit = SharedLimit(MemoryState(clock.now), clock, SECRET, "ip", 2, timedelta(minutes=10))
    assert await limit.hit("203.0.113.1") == 0
    clock.advance(seconds=60)
    assert await limit.hit("203.0.113.1") == 0
    assert await limit.hit("203.0.113.1") == 540  # until the first hit's lease ends
    assert await limit.hit("203.0.113.2") == 0
    clock.advance(seconds=540)
    assert await limit.hit("203.0.113.1") == 0


def test_language_from_the_browser_with_an_explicit_switch() -> None:
    assert choose_language(None, "en-GB,en;q=0.9,zh-CN;q=0.5") == "en"
    assert choose_language(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert choose_language(None, "fr-FR, en;q=0.3") == "en"
    assert choose_language(None, "fr-FR") == "zh-CN"
    assert choose_language(None, "en;q=bogus,zh") == "zh-CN"
    assert choose_language("en", "zh-CN") == "en"


def test_fields_are_checked_and_contacts_normalized() -> None:
    ok = check(
        {
            "kind": "complaint",
            "area": "cards",
            "description": "  扣费两次\r\n请退款\x00 ",
            "contact_kind": "phone",
            "phone": "+86 138-1234-5678",
            "consent": "yes",
        },
        "zh-CN",
    )
    assert ok.errors == {}
    assert ok.contact is not None and ok.contact.value == "13812345678"
    assert ok.contact.masked() == "138****5678"
    assert "\x00" not in ok.values["description"] and "\r" not in ok.values["description"]
    bad = check({"kind": "<script>", "contact_kind": "email", "email": "a@b"}, "en")
    assert set(bad.errors) == {"kind", "area", "description", "email", "consent"}
    assert bad.contact is None
