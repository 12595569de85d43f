"""Routing rules as data: each condition, first match, the priority floor, and refusal at load
naming the rule's index and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hub.sdk import Identity, InboundEnvelope, InboundMessage
from hub.settings import Settings
from normalizer import normalize
from normalizer.routing import RouteInput, Router, RoutingError
from ticket_core import Priority

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BASE = RouteInput(kind="complaint", label="complaint", channel="app")


def route(when: dict[str, Any], item: RouteInput) -> list[str] | None:
    decision = Router.parse([{"name": "r", "when": when, "then": {"queue": "q"}}]).route(item)
    return list(decision.why) if decision else None


def _replace(**fields: Any) -> RouteInput:
    values = {name: getattr(BASE, name) for name in BASE.__slots__}  # type: ignore[attr-defined]
    values.update(fields)
    return RouteInput(**values)


@pytest.mark.parametrize(
    ("when", "fits", "misses", "why"),
    [
        (
            {"kinds": ["complaint"]},
            {},
            {"kind": "consultation", "label": "consultation"},
            "kind complaint",
        ),
        (
            {"kinds": ["praise"]},
            {"kind": "suggestion", "label": "praise"},
            {"kind": "suggestion", "label": "suggestion"},
            "kind praise",
        ),
        ({"categories": ["cards"]}, {"category": "cards"}, {"category": "loans"}, "category cards"),
        ({"causes": ["fees"]}, {"cause": "fees"}, {"cause": None}, "cause fees"),
        ({"channels": ["wechat"]}, {"channel": "wechat"}, {}, "channel wechat"),
        (
            {"segments": ["vip", "private_banking"]},
            {"segments": frozenset({"vip"})},
            {},
            "segment vip",
        ),
        (
            {"flags": ["regulator_transfer"]},
            {"flags": frozenset({"regulator_transfer"})},
            {},
            "flags regulator_transfer",
        ),
        (
            {"urgency": ["media", "regulator"]},
            {"urgency": frozenset({"media"})},
            {},
            "urgency media",
        ),
        ({"sentiment": ["negative"]}, {"sentiment": "negative"}, {}, "sentiment negative"),
        (
            {"min_fraud_score": 0.8},
            {"fraud_score": 0.91},
            {"fraud_score": 0.5},
            "fraud score 0.91 ≥ 0.8",
        ),
        ({"min_amount": 50000}, {"amount": 80000.0}, {"amount": 1000.0}, "amount 80000 ≥ 50000"),
    ],
)
def test_each_condition_fits_or_not_and_says_why(
    when: dict[str, Any], fits: dict[str, Any], misses: dict[str, Any], why: str
) -> None:
    assert route(when, _replace(**fits)) == [why]
    assert route(when, _replace(**misses)) is None


def test_an_unknown_fraud_score_or_amount_never_fits_a_minimum() -> None:
    assert route({"min_fraud_score": 0.1}, BASE) is None
    assert route({"min_amount": 1}, BASE) is None


def test_the_first_matching_rule_wins_and_a_rule_without_conditions_catches_all() -> None:
    router = Router.parse(
        [
            {"name": "vip", "when": {"segments": ["vip"]}, "then": {"queue": "vip-desk"}},
            {"name": "cards", "when": {"categories": ["cards"]}, "then": {"queue": "cards"}},
            {"name": "rest", "then": {"queue": "general"}},
        ]
    )
    vip_cards = _replace(segments=frozenset({"vip"}), category="cards")
    assert router.route(vip_cards).rule.name == "vip"  # type: ignore[union-attr]
    assert router.route(_replace(category="cards")).rule.queue == "cards"  # type: ignore[union-attr]
    caught = router.route(BASE)
    assert caught is not None and (caught.rule.index, caught.why) == (2, ("always",))


def test_a_rule_priority_raises_but_never_lowers() -> None:
    router = Router.parse([{"when": {}, "then": {"priority": "high"}}])
    decision = router.route(BASE)
    assert decision is not None
    assert decision.apply_priority(Priority.normal) == Priority.high
    assert decision.apply_priority(Priority.urgent) == Priority.urgent


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [{"then": {"queue": "a"}}, {"when": {"kinds": ["rant"]}, "then": {"queue": "b"}}],
            r"routing\.rules\[1\]\.when\.kinds: 'rant' not one of",
        ),
        (
            [{"when": {"colour": ["red"]}, "then": {"queue": "a"}}],
            r"routing\.rules\[0\]\.when\.colour: unknown condition",
        ),
        ([{"when": {}, "then": {}}], r"routing\.rules\[0\]\.then: a table"),
        ([{"then": {"priority": "asap"}}], r"routing\.rules\[0\]\.then\.priority: 'asap'"),
        (
            [{"then": {"queue": "a"}}, {"then": {"queue": "b", "assign": "li"}}],
            r"routing\.rules\[1\]\.then\.assign: unknown action",
        ),
        (
            [{"when": {"min_fraud_score": 3}, "then": {"queue": "a"}}],
            r"routing\.rules\[0\]\.when\.min_fraud_score: at most 1",
        ),
        (
            [{"when": {"min_amount": "lots"}, "then": {"queue": "a"}}],
            r"routing\.rules\[0\]\.when\.min_amount: a number",
        ),
        ([{"if": {}, "then": {"queue": "a"}}], r"routing\.rules\[0\]\.if: unknown field"),
    ],
)
def test_an_invalid_rule_is_refused_at_load_naming_its_index_and_field(
    rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(RoutingError, match=message):
        Router.parse(rules)
    with pytest.raises(ValidationError, match=message):
        Settings(routing={"rules": rules})


def test_a_rule_naming_an_unknown_sla_policy_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match=r"routing\.rules\[0\]\.then\.sla_policy: 'fast'"):
        Settings(routing={"rules": [{"then": {"sla_policy": "fast"}}]})
    Settings(routing={"rules": [{"then": {"sla_policy": "cn-nfra-order-3"}}]})


def _normalized(text: str, router: Router, **fields: Any) -> Any:
    envelope = InboundEnvelope(
        channel="app",
        external_id="m1",
        body=b"{}",
        content_type="application/json",
        received_at=AT,
    )
    message = InboundMessage(
        text=text, sent_at=AT, identities=(Identity("app_user", "u-1", True),), **fields
    )
    return normalize(envelope, message, router=router)


def test_normalize_routes_with_the_classification_and_carries_the_decision() -> None:
    router = Router.parse(
        [
            {
                "name": "card fraud",
                "when": {
                    "kinds": ["complaint"],
                    "causes": ["unauthorised_transaction"],
                    "min_amount": 1000,
                },
                "then": {
                    "queue": "card-fraud",
                    "priority": "high",
                    "sla_policy": "cn-nfra-order-3",
                    "tags": ["fraud"],
                },
            }
        ]
    )
    incoming = _normalized("我的信用卡被盗刷了8000元，要求赔偿", router)
    assert (incoming.queue, incoming.priority, incoming.policy) == (
        "card-fraud",
        Priority.high,
        "cn-nfra-order-3",
    )
    assert incoming.routing["name"] == "card fraud"
    assert incoming.routing["tags"] == ["fraud"]
    assert "amount 8000 ≥ 1000" in incoming.routing["why"]
    assert incoming.category == "cards"
    assert incoming.category_codes == {"business": "B01", "cause": "C03"}


def test_codes_the_channel_gave_are_kept_over_the_classifier() -> None:
    incoming = _normalized(
        "信用卡被盗刷", Router(), category_codes={"channel": "A01", "business": "B0203"}
    )
    assert incoming.category_codes == {"channel": "A01", "business": "B0203"}
    assert incoming.routing == {} and incoming.policy is None


def test_an_invalid_rule_in_the_config_file_is_refused_naming_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tongdao.toml"
    config.write_text(
        "# routing for the card centre\n"
        "[[routing.rules]]\n"
        'name = "cards"\n'
        'when = { kinds = ["complaint"] }\n'
        'then = { queue = "cards" }\n'
        "\n"
        "[[routing.rules]]\n"
        'name = "typo"\n'
        'when = { kinds = ["rant"] }\n'
        'then = { queue = "x" }\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TONGDAO_CONFIG", str(config))
    with pytest.raises(ValidationError, match=r"routing\.rules\[1\]\.when\.kinds: .*line 7\)"):
        Settings()
