"""What the customer wants: kind, business category and cause, urgency, sentiment, amount.

Two layers. The rules layer reads a keyword and phrase taxonomy (``taxonomy.toml`` shipped
here, or a bank's own file named in ``[classify] taxonomy``): Chinese is segmented with jieba
(every taxonomy term is added to the segmenter's dictionary, and a term never matches across
two words, nor right after a negation such as 不/没), English matches whole words. Then any
classifier models the bank configured (``[classify] plugins``, dotted paths to objects that
follow the ``Classifier`` protocol) may overrule a field when confident enough.

Every decision is recorded with who made it (a taxonomy rule or a model) and why (the terms
and their scores, or the model's reason): ``Classification.as_record()`` is what the ticket's
``ticket.created`` audit event keeps.

Kinds: the taxonomy knows ``praise`` apart from ``suggestion``, but the ticket model has three
kinds (each has SLA targets, notices and statistics), so praise is filed as a ``suggestion``
and the finer ``label`` is kept in the record.
"""

from __future__ import annotations

import importlib
import logging
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ticket_core.models import Kind, Priority

BUILTIN_TAXONOMY = Path(__file__).with_name("taxonomy.toml")
LABELS = ("complaint", "suggestion", "praise", "consultation")
"""What the classifier tells apart; ``praise`` is filed as ``Kind.suggestion``."""
_KIND_OF_LABEL = {
    "complaint": Kind.complaint,
    "suggestion": Kind.suggestion,
    "praise": Kind.suggestion,
    "consultation": Kind.consultation,
}
_ORDER = (Priority.low, Priority.normal, Priority.high, Priority.urgent)
_NEGATORS = ("不", "没", "未", "无", "别", "非")
_NEGATOR_WORDS = frozenset({"不", "没", "没有", "未", "无", "别", "并不", "不是", "不太", "从未"})


class TaxonomyError(ValueError):
    """A taxonomy file that cannot work; the message names the entry."""


# --- taxonomy --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    weight: float = 1.0

    @property
    def ascii(self) -> bool:
        return self.text.isascii()


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named set of terms: a category or cause (with its JR/T 0169 style code), an urgency
    signal (with its priority floor), or a kind."""

    name: str
    terms: tuple[Term, ...]
    code: str | None = None
    label: str | None = None
    priority: Priority | None = None
    threat: bool = False


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: str
    kinds: tuple[Bucket, ...]
    categories: tuple[Bucket, ...]
    causes: tuple[Bucket, ...]
    urgency: tuple[Bucket, ...]
    negative: tuple[Term, ...]
    positive: tuple[Term, ...]
    source: str = "builtin"

    def all_terms(self) -> Iterable[Term]:
        for group in (self.kinds, self.categories, self.causes, self.urgency):
            for bucket in group:
                yield from bucket.terms
        yield from self.negative
        yield from self.positive

    def category(self, name: str) -> Bucket | None:
        return next((b for b in self.categories if b.name == name), None)

    def cause(self, name: str) -> Bucket | None:
        return next((b for b in self.causes if b.name == name), None)


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _terms(values: Any, where: str) -> tuple[Term, ...]:
    if not isinstance(values, list) or not values:
        raise TaxonomyError(f"{where}.terms: a non-empty list of strings is needed")
    out = []
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise TaxonomyError(f"{where}.terms[{i}]: {value!r} is not a term")
        text, weight = value, 1.0
        head, sep, tail = value.rpartition(":")
        if sep and re.fullmatch(r"\d+(\.\d+)?", tail.strip()):
            text, weight = head, float(tail)
        out.append(Term(_norm(text.strip()), weight))
    return tuple(out)


def _priority(value: Any, where: str) -> Priority:
    if value not in Priority.__members__:
        raise TaxonomyError(f"{where}.priority: {value!r} is not one of {', '.join(Priority)}")
    return Priority(value)


def parse_taxonomy(data: Mapping[str, Any], source: str = "builtin") -> Taxonomy:
    """A taxonomy from its TOML tables; raises ``TaxonomyError`` naming the bad entry."""
    kinds_table = data.get("kinds")
    if not isinstance(kinds_table, Mapping):
        raise TaxonomyError("[kinds]: the table of kinds is missing")
    order = kinds_table.get("order", list(LABELS))
    unknown = [k for k in order if k not in LABELS]
    if unknown or not order:
        raise TaxonomyError(f"kinds.order: {unknown or order!r} not among {', '.join(LABELS)}")
    kinds = tuple(
        Bucket(name, _terms(kinds_table.get(name, {}).get("terms"), f"kinds.{name}"))
        for name in order
    )

    def buckets(family: str) -> tuple[Bucket, ...]:
        out = []
        for i, entry in enumerate(data.get(family, [])):
            where = f"{family}[{i}]"
            name, code = entry.get("name"), entry.get("code")
            if not isinstance(name, str) or not name:
                raise TaxonomyError(f"{where}.name: a name is needed")
            if code is not None and not re.fullmatch(r"[A-Z]\d{2,6}", str(code)):
                raise TaxonomyError(f"{where}.code: {code!r} is not a code like B01 or C0101")
            out.append(Bucket(name, _terms(entry.get("terms"), where), code, entry.get("label")))
        return tuple(out)

    urgency = tuple(
        Bucket(
            name,
            _terms(entry.get("terms"), f"urgency.{name}"),
            priority=_priority(entry.get("priority", "high"), f"urgency.{name}"),
            threat=bool(entry.get("threat", False)),
        )
        for name, entry in data.get("urgency", {}).items()
    )
    sentiment = data.get("sentiment", {})
    return Taxonomy(
        version=str(data.get("version", "unversioned")),
        kinds=kinds,
        categories=buckets("categories"),
        causes=buckets("causes"),
        urgency=urgency,
        negative=_terms(sentiment.get("negative", ["\u0000"]), "sentiment.negative"),
        positive=_terms(sentiment.get("positive", ["\u0000"]), "sentiment.positive"),
        source=source,
    )


@lru_cache(maxsize=8)
def load_taxonomy(path: str | None = None) -> Taxonomy:
    """The taxonomy at ``path``, or the built-in one."""
    file = Path(path) if path else BUILTIN_TAXONOMY
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"taxonomy {file}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"taxonomy {file}: {exc}") from None
    return parse_taxonomy(data, "builtin" if path is None else str(file))


# --- matching ----------------------------------------------------------------------------


class _Matcher:
    """Finds a taxonomy's terms in a text: jieba words for Chinese, whole words for English."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._patterns: dict[str, re.Pattern[str]] = {}
        for term in taxonomy.all_terms():
            if term.ascii:
                self._patterns.setdefault(term.text, _ascii_pattern(term.text))
            else:
                self._jieba.add_word(term.text)

    def words(self, text: str) -> list[str]:
        return [w for w in self._jieba.lcut(text) if w.strip()]

    def find(self, text: str, words: Sequence[str], term: Term) -> bool:
        if term.ascii:
            return bool(self._patterns[term.text].search(text))
        for i, word in enumerate(words):
            at = word.find(term.text)
            if at < 0:
                continue
            before, after = word[:at], word[at + len(term.text) :]
            if (before and after) or len(before) + len(after) > 2:
                continue  # inside a longer word (人行 in 个人行为), not an affix (被盗刷)
            if before.endswith(_NEGATORS):
                continue  # 不满意 is not 满意
            if not before and i > 0 and words[i - 1] in _NEGATOR_WORDS:
                continue  # 不 投诉
            return True
        return False


def _ascii_pattern(word: str) -> re.Pattern[str]:
    """Numbers only apart from other digits (12378 inside a phone number does not count);
    English words whole, with their usual endings ("regulatory" is not "regulator")."""
    if word.isdigit():
        return re.compile(rf"(?<!\d){word}(?!\d)")
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?:s|es|ed|d|ing)?(?![\w-])")


# --- amounts -----------------------------------------------------------------------------

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_AMOUNTS = (
    re.compile(rf"(?:[¥$€£]|rmb|cny|usd|hkd|inr|rs\.?)\s*{_NUMBER}\s*(万|千|k)?"),
    re.compile(rf"{_NUMBER}\s*(万|千|k)?\s*(?:元|块|人民币|rmb|yuan|cny|dollars?|usd|rupees?)"),
    re.compile(rf"{_NUMBER}\s*(万)"),
)
_SCALE = {"万": 10_000, "千": 1_000, "k": 1_000}


def amounts(text: str) -> list[float]:
    """Sums of money the text mentions (¥5,000, 3.5万元, 200 dollars), in their own units."""
    text = _norm(text)
    found: list[float] = []
    for pattern in _AMOUNTS:
        for match in pattern.finditer(text):
            whole, frac, scale = match.group(1), match.group(2), match.group(3)
            value = float(whole.replace(",", "") + (f".{frac}" if frac else ""))
            found.append(value * _SCALE.get(scale or "", 1))
    return found


# --- the plug-in interface ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opinion:
    """What one classifier says of a text. Leave a field ``None`` to have no opinion on it.

    ``label`` is one of ``complaint``, ``suggestion``, ``praise``, ``consultation``;
    ``category`` and ``cause`` are names from the taxonomy (their codes come from it)."""

    label: str | None = None
    category: str | None = None
    cause: str | None = None
    sentiment: str | None = None
    confidence: float = 1.0
    reason: str = ""


@runtime_checkable
class Classifier(Protocol):
    """A bank's own model: ``[classify] plugins = ["mybank.nlp:ComplaintModel"]``.

    The object (or the class, instantiated without arguments) needs a ``name`` and
    ``classify``; it runs after the taxonomy rules and overrules them field by field when its
    ``confidence`` reaches ``[classify] min_confidence``. It must not raise for odd input;
    if it does, the rules' answer stands and the error is recorded."""

    name: str

    def classify(self, text: str) -> Opinion | None: ...


def load_plugin(path: str) -> Classifier:
    """``package.module:Name`` or ``package.module.Name``; a class is instantiated."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise TaxonomyError(f"classifier {path!r}: give it as package.module:Name")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise TaxonomyError(f"classifier {path!r} cannot be loaded: {exc}") from None
    plugin = target() if isinstance(target, type) else target
    if not isinstance(plugin, Classifier):
        raise TaxonomyError(f"classifier {path!r} has no name and classify(text)")
    return plugin


# --- the decision ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Classification:
    kind: Kind
    priority: Priority
    rule: str
    """What decided the kind: ``keywords.<label>``, ``keywords.escalation_threat``,
    ``default.consultation``, ``channel.kind_hint`` or ``model:<name>``."""
    matched: tuple[str, ...]
    label: str = ""
    category: str | None = None
    category_code: str | None = None
    cause: str | None = None
    cause_code: str | None = None
    urgency: tuple[str, ...] = ()
    sentiment: str = "neutral"
    amount: float | None = None
    decisions: tuple[dict[str, Any], ...] = ()
    taxonomy: str = ""

    def as_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "label": self.label or self.kind.value,
            "priority": self.priority.value,
            "rule": self.rule,
            "matched": list(self.matched),
            "category": self.category,
            "codes": {
                k: v for k, v in (("business", self.category_code), ("cause", self.cause_code)) if v
            },
            "cause": self.cause,
            "urgency": list(self.urgency),
            "sentiment": self.sentiment,
            "amount": self.amount,
            "taxonomy": self.taxonomy,
            "decisions": [dict(d) for d in self.decisions],
        }


def _why(hits: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{t}({w:g})" for t, w in hits)


@dataclass
class Understanding:
    """The configured classifier: a taxonomy, and the bank's models after it."""

    taxonomy: Taxonomy = field(default_factory=load_taxonomy)
    plugins: tuple[Classifier, ...] = ()
    min_confidence: float = 0.8
    _matcher: _Matcher | None = field(default=None, repr=False)

    @property
    def matcher(self) -> _Matcher:
        if self._matcher is None:
            self._matcher = _Matcher(self.taxonomy)
        return self._matcher

    def warm_up(self) -> None:
        """Load jieba's dictionary now (about a second of CPU) rather than on the first
        message, where it would stall every request the process is serving."""
        self.matcher.words("预热")

    def _score(
        self, text: str, words: Sequence[str], terms: Iterable[Term], joined: str | None = None
    ) -> list[tuple[str, float]]:
        # A term can only match where its text occurs: the words are pieces of ``text``, so a
        # term found in none of them (``joined``) is not looked for word by word (most of the
        # taxonomy's thousand terms, for any one message).
        haystack = text if joined is None else joined
        find = self.matcher.find
        return [
            (t.text, t.weight)
            for t in terms
            if (t.text in text if t.ascii else t.text in haystack) and find(text, words, t)
        ]

    def _best(
        self, text: str, words: Sequence[str], buckets: Sequence[Bucket], joined: str
    ) -> tuple[Bucket, list[tuple[str, float]]] | None:
        best: tuple[Bucket, list[tuple[str, float]]] | None = None
        best_score = 0.0
        for bucket in buckets:
            hits = self._score(text, words, bucket.terms, joined)
            score = sum(w for _, w in hits)
            if score > best_score:
                best, best_score = (bucket, hits), score
        return best

    def classify(self, text: str, kind_hint: str | None = None) -> Classification:
        tax = self.taxonomy
        norm = _norm(text)
        words = self.matcher.words(norm)
        joined = "\n".join(words)
        by = f"rules:taxonomy@{tax.version}"
        decisions: list[dict[str, Any]] = []

        # urgency and sentiment
        urgency: list[str] = []
        urgency_hits: list[str] = []
        priority = Priority.normal
        threat = False
        for bucket in tax.urgency:
            hits = self._score(norm, words, bucket.terms, joined)
            if hits:
                urgency.append(bucket.name)
                urgency_hits += [t for t, _ in hits]
                threat = threat or bucket.threat
                if bucket.priority is not None:
                    priority = max(priority, bucket.priority, key=_ORDER.index)
                decisions.append(
                    {
                        "field": "urgency",
                        "value": bucket.name,
                        "by": by,
                        "rule": f"urgency.{bucket.name}",
                        "why": _why(hits),
                    }
                )
        negative = self._score(norm, words, tax.negative, joined)
        positive = self._score(norm, words, tax.positive, joined)
        net = len(positive) - len(negative)
        sentiment = "negative" if net < 0 else "positive" if net > 0 else "neutral"
        if negative or positive:
            decisions.append(
                {
                    "field": "sentiment",
                    "value": sentiment,
                    "by": by,
                    "rule": "sentiment",
                    "why": _why(positive + [(t, -w) for t, w in negative]),
                }
            )

        # kind
        scores: dict[str, float] = {}
        evidence: dict[str, list[tuple[str, float]]] = {}
        for bucket in tax.kinds:
            hits = self._score(norm, words, bucket.terms, joined)
            evidence[bucket.name] = hits
            scores[bucket.name] = sum(w for _, w in hits)
        if "?" in norm:
            scores["consultation"] = scores.get("consultation", 0) + 1
            evidence.setdefault("consultation", []).append(("?", 1))
        cause_found = self._best(norm, words, tax.causes, joined)
        if "complaint" in scores:
            if threat:
                scores["complaint"] += 2
            if sentiment == "negative":
                scores["complaint"] += len(negative)
            if (
                cause_found is not None
                and sentiment != "positive"
                and scores.get("consultation", 0) < 2
            ):
                # A JR/T 0169 complaint cause (a fee, a delay, a transaction not made, ...)
                # is half a complaint in itself; not in a question about it (a consultation)
                # nor in thanks for putting it right (praise).
                cause_score = sum(w for _, w in cause_found[1])
                scores["complaint"] += cause_score / 2
                evidence["complaint"] = evidence["complaint"] + [
                    (f"cause:{cause_found[0].name}", cause_score / 2)
                ]
        order = [b.name for b in tax.kinds]
        label = max(order, key=lambda k: (scores.get(k, 0), -order.index(k)))
        matched: tuple[str, ...]
        if scores.get(label, 0) <= 0 or not evidence.get(label):
            if threat:
                label, rule, matched = "complaint", "keywords.escalation_threat", ()
                why = "a threat to go to the regulator, the media or court: " + ", ".join(
                    urgency_hits
                )
            else:
                label, rule, matched = "consultation", "default.consultation", ()
                why = "no kind evidence; consultation by default"
        else:
            rule = f"keywords.{label}"
            matched = tuple(t for t, _ in evidence[label])
            why = (
                _why(evidence[label])
                + " | scores "
                + ", ".join(f"{k}={scores.get(k, 0):g}" for k in order)
            )
        decisions.insert(0, {"field": "kind", "value": label, "by": by, "rule": rule, "why": why})

        # category and cause
        category = self._best(norm, words, tax.categories, joined)
        cause = cause_found
        for family, found in (("category", category), ("cause", cause)):
            if found is not None:
                bucket, hits = found
                decisions.append(
                    {
                        "field": family,
                        "value": bucket.name,
                        "code": bucket.code,
                        "by": by,
                        "rule": f"{family}.{bucket.name}",
                        "why": _why(hits),
                    }
                )
        category_name = category[0].name if category else None
        cause_name = cause[0].name if cause else None

        # the bank's models
        for plugin in self.plugins:
            try:
                opinion = plugin.classify(text)
            except Exception as exc:  # a model's failure leaves the rules' answer standing
                decisions.append(
                    {"field": "*", "by": f"model:{plugin.name}", "why": f"failed: {exc!r}"[:200]}
                )
                continue
            if opinion is None or opinion.confidence < self.min_confidence:
                continue
            model = f"model:{plugin.name}"
            if opinion.label in LABELS and opinion.label != label:
                label, rule, matched = opinion.label, model, ()
            if opinion.category and tax.category(opinion.category):
                category_name = opinion.category
            if opinion.cause and tax.cause(opinion.cause):
                cause_name = opinion.cause
            if opinion.sentiment in ("negative", "neutral", "positive"):
                sentiment = opinion.sentiment
            for name in ("label", "category", "cause", "sentiment"):
                value = getattr(opinion, name)
                if value is not None:
                    decisions.append(
                        {
                            "field": "kind" if name == "label" else name,
                            "value": value,
                            "by": model,
                            "confidence": opinion.confidence,
                            "why": opinion.reason,
                        }
                    )

        if kind_hint in Kind.__members__:
            label, rule = kind_hint, "channel.kind_hint"
            matched = ()
            decisions.insert(
                0,
                {
                    "field": "kind",
                    "value": kind_hint,
                    "by": "channel",
                    "rule": rule,
                    "why": "the channel said what kind the message is",
                },
            )

        money = amounts(text)
        category_bucket = tax.category(category_name) if category_name else None
        cause_bucket = tax.cause(cause_name) if cause_name else None
        return Classification(
            kind=_KIND_OF_LABEL[label],
            priority=priority,
            rule=rule,
            matched=matched + tuple(u for u in urgency_hits if u not in matched),
            label=label,
            category=category_name,
            category_code=category_bucket.code if category_bucket else None,
            cause=cause_name,
            cause_code=cause_bucket.code if cause_bucket else None,
            urgency=tuple(urgency),
            sentiment=sentiment,
            amount=max(money) if money else None,
            decisions=tuple(decisions),
            taxonomy=f"{tax.source}@{tax.version}",
        )


@lru_cache(maxsize=1)
def default_understanding() -> Understanding:
    return Understanding()


def build_understanding(
    taxonomy: str | None = None, plugins: Sequence[str] = (), min_confidence: float = 0.8
) -> Understanding:
    """From ``[classify]``: the taxonomy file (or the built-in one) and the models' paths."""
    if taxonomy is None and not plugins:
        return default_understanding()
    return Understanding(
        load_taxonomy(taxonomy), tuple(load_plugin(p) for p in plugins), min_confidence
    )


def classify(text: str, kind_hint: str | None = None) -> Classification:
    """Classify with the built-in taxonomy and no models."""
    return default_understanding().classify(text, kind_hint)
