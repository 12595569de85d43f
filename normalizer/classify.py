"""A first reading of what the customer wants: complaint, suggestion or consultation.

Keyword rules in Chinese and English; each decision says which rule made it. The full
taxonomy, categories and a pluggable model come with the routing work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ticket_core.models import Kind, Priority

_COMPLAINT = (
    "投诉",
    "不满",
    "举报",
    "乱收费",
    "被骗",
    "盗刷",
    "欺诈",
    "退款",
    "赔偿",
    "态度差",
    "拒绝",
    "complain",
    "complaint",
    "unacceptable",
    "refund",
    "fraud",
    "unauthorised",
    "unauthorized",
    "charged twice",
    "disappointed",
    "scam",
)
_SUGGESTION = (
    "建议",
    "希望增加",
    "能否增加",
    "suggest",
    "suggestion",
    "would be nice",
    "feature request",
)
_URGENT = (
    "12378",
    "银保监",
    "监管",
    "媒体",
    "报警",
    "regulator",
    "journalist",
    "police",
    "lawyer",
    "律师",
)


@dataclass(frozen=True, slots=True)
class Classification:
    kind: Kind
    priority: Priority
    rule: str
    matched: tuple[str, ...]

    def as_record(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "priority": self.priority.value,
            "rule": self.rule,
            "matched": list(self.matched),
        }


def _pattern(word: str) -> re.Pattern[str]:
    """Chinese terms match anywhere; numbers and English words only as whole words (with the
    usual English endings), so 12378 inside a phone number or "regulatory" do not count."""
    if word.isdigit():
        return re.compile(rf"(?<!\d){word}(?!\d)")
    if word.isascii():
        return re.compile(rf"\b{re.escape(word)}(?:s|es|ed|d|ing)?\b")
    return re.compile(re.escape(word))


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _hits(text: str, words: tuple[str, ...]) -> tuple[str, ...]:
    lowered = text.lower()
    found = []
    for word in words:
        pattern = _PATTERNS.get(word) or _PATTERNS.setdefault(word, _pattern(word))
        if pattern.search(lowered):
            found.append(word)
    return tuple(found)


def classify(text: str, kind_hint: str | None = None) -> Classification:
    urgent = _hits(text, _URGENT)
    priority = Priority.high if urgent else Priority.normal
    if kind_hint in Kind.__members__:
        return Classification(Kind(kind_hint), priority, "channel.kind_hint", urgent)
    if complaint := _hits(text, _COMPLAINT):
        return Classification(Kind.complaint, priority, "keywords.complaint", complaint + urgent)
    if suggestion := _hits(text, _SUGGESTION):
        return Classification(Kind.suggestion, priority, "keywords.suggestion", suggestion + urgent)
    if urgent:
        return Classification(Kind.complaint, priority, "keywords.escalation_threat", urgent)
    return Classification(Kind.consultation, priority, "default.consultation", ())
