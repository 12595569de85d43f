"""A stand-in for the bank's anti-fraud adapter, speaking the contract in
docs/context-providers.md.

It scores ``POST /assessments`` from simple rules: a score per identity (a known malicious
complainant), per customer number, and per phrase in the message text (a suspicious refund
demand); the highest matching score wins and every matching rule adds its reason. Anything
unmatched scores ``base_score``. Like every context stand-in it checks the signature and can
be scripted to be down, slow, hanging, refusing or answering garbage
(``hub.testing.standins.scriptable``).

Tests start it in-process (``AntifraudStandIn``); ``make run`` runs it on its own, with a
demo rule (a refund demand threatening the media scores 0.92)::

    python -m hub.testing.standins.antifraud --port 8004 --secret whsec_...
    curl -X POST localhost:8004/_control -d '{"mode": "slow", "delay": 5}'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub.testing.standins.scriptable import CommandLine, ScriptableStandIn


@dataclass(frozen=True)
class Rule:
    score: float
    code: str
    description: str = ""


@dataclass
class AntifraudStandIn(ScriptableStandIn):
    route: ClassVar[str] = "/assessments"
    base_score: float = 0.05
    by_identity: dict[tuple[str, str], Rule] = field(default_factory=dict)
    by_customer: dict[str, Rule] = field(default_factory=dict)
    by_phrase: list[tuple[tuple[str, ...], Rule]] = field(default_factory=list)
    assessments: int = 0

    def flag_identity(self, kind: str, value: str, rule: Rule) -> None:
        self.by_identity[(kind, value)] = rule

    def flag_customer(self, customer_number: str, rule: Rule) -> None:
        self.by_customer[customer_number] = rule

    def flag_phrases(self, phrases: Sequence[str], rule: Rule) -> None:
        """The rule matches a message containing every one of ``phrases``."""
        self.by_phrase.append((tuple(phrases), rule))

    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        identities = request.get("identities")
        if not isinstance(identities, list) or not isinstance(request.get("request_id"), str):
            return 422, {"error": "request_id and identities are required"}
        matched: list[Rule] = []
        for identity in identities:
            if isinstance(identity, dict):
                rule = self.by_identity.get((str(identity.get("kind")), str(identity.get("value"))))
                if rule is not None:
                    matched.append(rule)
        number = request.get("customer_number")
        if isinstance(number, str) and number in self.by_customer:
            matched.append(self.by_customer[number])
        message = request.get("message") or {}
        text = message.get("text") if isinstance(message, dict) else None
        if isinstance(text, str):
            matched.extend(
                rule for phrases, rule in self.by_phrase if all(p in text for p in phrases)
            )
        self.assessments += 1
        score = max([self.base_score, *(r.score for r in matched)])
        return 200, {
            "risk_score": score,
            "reasons": [{"code": r.code, "description": r.description} for r in matched],
            "assessment_id": f"AF-{self.assessments:06d}",
        }


def demo_rules(stand_in: AntifraudStandIn) -> None:
    stand_in.flag_phrases(
        ("退款", "媒体"),
        Rule(0.92, "suspicious_refund_demand", "退款诉求并以媒体曝光相威胁，疑似恶意投诉"),
    )


COMMAND_LINE = CommandLine(
    module="antifraud",
    what="anti-fraud",
    description="A stand-in for the bank's anti-fraud adapter (docs/context-providers.md).",
    port=8004,
    make=AntifraudStandIn,
    seed=demo_rules,
    no_demo="start without the demo rule",
)
main = COMMAND_LINE.main


if __name__ == "__main__":
    main()
