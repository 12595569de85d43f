"""Scores for a classifier on a labelled JSON Lines file (``tongdao classify eval FILE``).

One object a line: ``text``, ``kind`` (complaint, suggestion, praise, consultation), and
optionally ``category`` and ``cause`` (taxonomy names). Kind is scored on the classifier's
finer label, so praise filed as a suggestion still counts as wrong when it was a complaint.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from normalizer.classify import LABELS, Understanding


class EvalFileError(ValueError):
    """A line of the labelled file that cannot be scored; the message names the line."""


@dataclass(frozen=True, slots=True)
class Example:
    line: int
    text: str
    kind: str
    category: str | None = None
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class ClassScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    labels: tuple[str, ...]
    scores: list[ClassScore]
    confusion: dict[str, Counter[str]]
    """Gold label → predicted label → count."""
    total: int
    kind_correct: int
    category_total: int = 0
    category_correct: int = 0
    cause_total: int = 0
    cause_correct: int = 0
    misses: list[tuple[Example, str]] = field(default_factory=list)

    @property
    def kind_accuracy(self) -> float:
        return self.kind_correct / self.total if self.total else 0.0

    @property
    def category_accuracy(self) -> float | None:
        return self.category_correct / self.category_total if self.category_total else None

    @property
    def cause_accuracy(self) -> float | None:
        return self.cause_correct / self.cause_total if self.cause_total else None


def read_examples(path: Path) -> list[Example]:
    examples = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EvalFileError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise EvalFileError(f"line {number}: an object with a text is needed")
        if item.get("kind") not in LABELS:
            raise EvalFileError(
                f"line {number}: kind {item.get('kind')!r} is not one of {', '.join(LABELS)}"
            )
        examples.append(
            Example(number, item["text"], item["kind"], item.get("category"), item.get("cause"))
        )
    if not examples:
        raise EvalFileError("the file holds no examples")
    return examples


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def evaluate(understanding: Understanding, examples: Sequence[Example]) -> Report:
    confusion: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    report = Report(LABELS, [], confusion, len(examples), 0)
    for example in examples:
        decision = understanding.classify(example.text)
        predicted = decision.label
        confusion[example.kind][predicted] += 1
        if predicted == example.kind:
            report.kind_correct += 1
        else:
            report.misses.append((example, predicted))
        if example.category:
            report.category_total += 1
            report.category_correct += decision.category == example.category
        if example.cause:
            report.cause_total += 1
            report.cause_correct += decision.cause == example.cause
    for label in LABELS:
        tp = confusion[label][label]
        predicted = sum(confusion[gold][label] for gold in LABELS)
        support = sum(confusion[label].values())
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(int(2 * precision * recall * 1e9), int((precision + recall) * 1e9))
        report.scores.append(ClassScore(label, precision, recall, f1, support))
    return report
