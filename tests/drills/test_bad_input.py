"""The bad-input drill, short form (``bench/drills/bad_input.py``; ``python -m bench.drills
bad-input --long`` is the long one): derandomized, so every run tries the same examples."""

from __future__ import annotations

from pathlib import Path

from bench.drills import bad_input

EXAMPLES = 80


async def test_every_api_operation_answers_generated_requests_without_a_5xx(
    sqlite_url: str, tmp_path: Path
) -> None:
    counts = await bad_input.openapi_answers_no_5xx(sqlite_url, tmp_path, examples=5)
    print(f"\n[bad input: openapi] {counts}")
    assert counts["operations"] >= 30


def test_wechat_xml_reader_refuses_bad_pushes_only_with_its_own_errors_in_bounded_memory() -> None:
    counts = bad_input.wechat_xml_parser_fuzz(EXAMPLES)
    print(f"\n[bad input: wechat xml] {counts}")
    assert counts["examples"] >= EXAMPLES


def test_mail_reader_refuses_bad_mime_only_as_unreadable_mail_in_bounded_memory() -> None:
    counts = bad_input.mime_parser_fuzz(EXAMPLES)
    print(f"\n[bad input: mime] {counts}")
    assert counts["examples"] >= EXAMPLES


def test_12378_sheet_import_refuses_bad_csv_only_with_its_own_errors_in_bounded_memory() -> None:
    counts = bad_input.hotline_csv_parser_fuzz(EXAMPLES)
    print(f"\n[bad input: 12378 csv] {counts}")
    assert counts["examples"] >= EXAMPLES
