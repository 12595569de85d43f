"""Personal data in free text: each kind found, checked and masked; look-alikes left alone."""

from __future__ import annotations

import pytest

from normalizer.pii import find_pii, luhn_ok, mask_pii, valid_prc_id


@pytest.mark.parametrize(
    ("text", "kind", "masked"),
    [
        ("我的手机13812345678，请回电", "phone", "我的手机138****5678，请回电"),
        ("call me on +86 138 1234 5678", "phone", "call me on 138****5678"),
        ("身份证11010519491231002X", "id_number", "身份证110105********002X"),
        ("卡号6222020200112233446被盗刷", "card", "卡号6222 **** **** 3446被盗刷"),
        ("card 4111 1111 1111 1111 was charged", "card", "card 4111 **** **** 1111 was charged"),
        ("write to zhang.san@example.com", "email", "write to z***@example.com"),
    ],
)
def test_each_kind_of_personal_data_is_found_and_masked(text: str, kind: str, masked: str) -> None:
    assert [m.kind for m in find_pii(text)] == [kind]
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单号202611230000000001",  # 18 digits, neither an id's check nor Luhn
        "卡号6222020200112233445",  # fails Luhn
        "转账12378元",  # too short to be anything
        "ticket TD-20261123-000001",
    ],
)
def test_numbers_that_fail_their_check_are_left_alone(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_a_role_with_clearance_keeps_the_kinds_it_may_see() -> None:
    text = "手机13812345678 卡号6222020200112233446"
    assert mask_pii(text, keep=frozenset({"phone"})) == "手机13812345678 卡号6222 **** **** 3446"


def test_the_checks_themselves() -> None:
    assert valid_prc_id("11010519491231002X")
    assert not valid_prc_id("110105194912310021")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
