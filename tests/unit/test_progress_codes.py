"""Verification codes for the progress lookup (hub/progress_codes.py)."""

from __future__ import annotations

from hub import progress_codes

KEY = b"k" * 32
NUMBER = "TD-20261123-000001"


def test_codes_are_eight_unambiguous_characters_and_differ() -> None:
    codes = {progress_codes.issue() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert len(code) == 8
        assert not set(code) & set("01ILO")
        assert progress_codes.normalize(code) == code


def test_typing_variations_are_accepted() -> None:
    assert progress_codes.normalize("k7qm-3zta") == "K7QM3ZTA"
    assert progress_codes.normalize(" K7QM 3ZTA ") == "K7QM3ZTA"
    assert progress_codes.normalize("Ｋ７ＱＭ３ＺＴＡ") == "K7QM3ZTA"  # full-width input
    assert progress_codes.normalize("K7QM3ZT") is None
    assert progress_codes.normalize("K7QM3ZT0") is None  # 0 is not in the alphabet
    assert progress_codes.normalize("x" * 10_000) is None


def test_only_the_right_code_for_the_right_ticket_matches() -> None:
    stored = progress_codes.digest(KEY, NUMBER, "K7QM3ZTA")
    assert len(stored) == 64 and "K7QM3ZTA" not in stored
    assert progress_codes.matches(KEY, NUMBER, "k7qm-3zta", stored)
    assert not progress_codes.matches(KEY, NUMBER, "K7QM3ZTB", stored)
    assert not progress_codes.matches(KEY, "TD-20261123-000002", "K7QM3ZTA", stored)
    assert not progress_codes.matches(b"other key", NUMBER, "K7QM3ZTA", stored)
    assert not progress_codes.matches(KEY, NUMBER, "K7QM3ZTA", None)
    assert not progress_codes.matches(KEY, NUMBER, "", stored)
