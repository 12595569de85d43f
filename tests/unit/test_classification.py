"""The classifier: taxonomy rules in Chinese (jieba) and English, categories and causes,
urgency, sentiment, amounts, the plug-in interface, and the record of every decision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from normalizer.classify import (
    Opinion,
    TaxonomyError,
    Understanding,
    amounts,
    build_understanding,
    classify,
    load_taxonomy,
    parse_taxonomy,
)
from normalizer.evaluate import evaluate, read_examples
from ticket_core import Kind, Priority

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_SET = ROOT / "tests" / "data" / "classify_eval.jsonl"


def test_a_chinese_complaint_records_the_rule_the_terms_and_the_category() -> None:
    decision = classify("信用卡年费乱收费，我要投诉")
    assert (decision.kind, decision.label, decision.rule) == (
        Kind.complaint,
        "complaint",
        "keywords.complaint",
    )
    assert {"投诉", "乱收费"} <= set(decision.matched)
    assert (decision.category, decision.category_code) == ("cards", "B01")
    assert (decision.cause, decision.cause_code) == ("fees", "C01")
    kind = decision.as_record()["decisions"][0]
    assert kind["field"] == "kind" and kind["by"].startswith("rules:taxonomy@")
    assert "投诉(4)" in kind["why"]


def test_an_english_consultation_is_told_by_its_question() -> None:
    decision = classify("How long does an international wire take to arrive?")
    assert (decision.kind, decision.rule) == (Kind.consultation, "keywords.consultation")
    assert decision.category == "payments"
    assert "how" in decision.matched


def test_praise_is_filed_as_a_suggestion_and_keeps_its_finer_label() -> None:
    decision = classify("非常感谢柜员的耐心服务，给你们点赞")
    assert (decision.kind, decision.label, decision.rule) == (
        Kind.suggestion,
        "praise",
        "keywords.praise",
    )
    assert decision.sentiment == "positive"
    assert decision.as_record()["label"] == "praise"


def test_a_negated_word_does_not_count_as_the_word() -> None:
    decision = classify("我对这个结果很不满意")
    assert decision.label == "complaint"
    assert "满意" not in decision.matched
    assert decision.sentiment == "negative"


def test_jieba_words_keep_a_term_from_matching_across_two_words() -> None:
    # 人行 (the central bank) must not be found in 个人 + 行为.
    assert "regulator" not in classify("这是我个人行为，请问怎么办理").urgency
    assert "regulator" in classify("我要向人行反映这个问题").urgency


def test_english_terms_match_whole_words_only() -> None:
    assert classify("What are the regulatory fees for a wire?").kind == Kind.consultation
    assert "regulator" in classify("I will go to the regulator").urgency


@pytest.mark.parametrize(
    ("text", "signal", "priority"),
    [
        ("不解决我就打12378投诉", "regulator", Priority.high),
        ("I will go to the press with this complaint", "media", Priority.high),
        ("我已经请了律师准备起诉", "legal", Priority.high),
        ("急用钱给家人交住院费，转账一直不到账", "distress", Priority.high),
        ("My father is a pensioner and was charged twice", "elderly", Priority.high),
        ("钱被骗光了，我不想活了", "self_harm", Priority.urgent),
    ],
)
def test_urgency_signals_raise_the_priority_and_are_recorded(
    text: str, signal: str, priority: Priority
) -> None:
    decision = classify(text)
    assert signal in decision.urgency
    assert decision.priority == priority
    assert any(d["field"] == "urgency" and d["value"] == signal for d in decision.decisions)


def test_a_threat_alone_is_a_complaint_by_the_escalation_rule() -> None:
    decision = classify("我已经联系了银保监")
    assert (decision.kind, decision.rule) == (Kind.complaint, "keywords.escalation_threat")


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("被扣了5,000元", 5000.0),
        ("损失3.5万", 35000.0),
        ("charged ¥1200 twice", 1200.0),
        ("a transfer of 200 dollars", 200.0),
        ("我的手机号是13912345678", None),
    ],
)
def test_the_largest_amount_mentioned_is_read_but_not_phone_numbers(
    text: str, amount: float | None
) -> None:
    assert classify(text).amount == amount
    assert (max(amounts(text)) if amounts(text) else None) == amount


def test_the_channel_kind_hint_wins_and_is_recorded() -> None:
    decision = classify("我要投诉", kind_hint="suggestion")
    assert (decision.kind, decision.rule) == (Kind.suggestion, "channel.kind_hint")
    assert decision.decisions[0]["by"] == "channel"


class ConfidentModel:
    name = "bank-bert"

    def classify(self, text: str) -> Opinion | None:
        return Opinion(label="complaint", cause="delay", confidence=0.95, reason="p=0.95")


class UnsureModel:
    name = "unsure"

    def classify(self, text: str) -> Opinion | None:
        return Opinion(label="praise", confidence=0.3, reason="p=0.3")


class BrokenModel:
    name = "broken"

    def classify(self, text: str) -> Opinion | None:
        raise RuntimeError("model server down")


def test_a_confident_model_overrules_the_rules_and_says_why() -> None:
    understanding = Understanding(load_taxonomy(), (ConfidentModel(),))
    decision = understanding.classify("请问转账多久到账")
    assert (decision.label, decision.rule, decision.cause) == (
        "complaint",
        "model:bank-bert",
        "delay",
    )
    record = decision.as_record()
    assert {
        "field": "kind",
        "value": "complaint",
        "by": "model:bank-bert",
        "confidence": 0.95,
        "why": "p=0.95",
    } in record["decisions"]


def test_an_unsure_or_failing_model_leaves_the_rules_answer_standing() -> None:
    understanding = Understanding(load_taxonomy(), (UnsureModel(), BrokenModel()))
    decision = understanding.classify("请问转账多久到账")
    assert (decision.label, decision.rule) == ("consultation", "keywords.consultation")
    assert any(d["by"] == "model:broken" and "failed" in d["why"] for d in decision.decisions)


def test_a_model_is_loaded_by_its_dotted_path() -> None:
    understanding = build_understanding(plugins=["tests.unit.test_classification:ConfidentModel"])
    assert understanding.plugins[0].name == "bank-bert"
    with pytest.raises(TaxonomyError, match="cannot be loaded"):
        build_understanding(plugins=["nowhere.at_all:Model"])


def test_a_bank_taxonomy_file_replaces_the_built_in_one(tmp_path: Path) -> None:
    own = tmp_path / "taxonomy.toml"
    own.write_text(
        'version = "bank-1"\n[kinds]\norder = ["complaint", "consultation"]\n'
        '[kinds.complaint]\nterms = ["吐槽:3"]\n[kinds.consultation]\nterms = ["请教"]\n'
        '[[categories]]\nname = "cards"\ncode = "B0101"\nterms = ["卡"]\n',
        encoding="utf-8",
    )
    decision = build_understanding(str(own)).classify("吐槽一下你们的卡")
    assert (decision.label, decision.category_code) == ("complaint", "B0101")
    assert decision.taxonomy.endswith("@bank-1")


def test_a_bad_taxonomy_entry_is_refused_naming_it() -> None:
    data = {
        "kinds": {"complaint": {"terms": ["投诉"]}},
        "categories": [{"name": "x", "code": "bad"}],
    }
    with pytest.raises(TaxonomyError, match=r"kinds\.suggestion\.terms"):
        parse_taxonomy(data)
    data["kinds"] = {"order": ["complaint"], "complaint": {"terms": ["投诉"]}}
    with pytest.raises(TaxonomyError, match=r"categories\[0\]\.code"):
        parse_taxonomy(data)


def test_the_eval_set_is_kept_apart_from_the_taxonomy() -> None:
    """No labelled sentence is copied into the rules (terms are words and phrases)."""
    texts = [json.loads(line)["text"] for line in SHIPPED_SET.read_text("utf-8").splitlines()]
    assert len(texts) >= 300
    terms = {t.text for t in load_taxonomy().all_terms()}
    assert max(len(t) for t in terms) < 25
    assert not any(text.lower() in terms for text in texts)


def test_the_shipped_set_scores_at_least_ninety_percent() -> None:
    report = evaluate(build_understanding(), read_examples(SHIPPED_SET))
    assert report.kind_accuracy >= 0.90


def test_classify_eval_prints_scores_a_confusion_table_and_the_accuracy_line(
    tmp_path: Path,
) -> None:
    labelled = tmp_path / "small.jsonl"
    rows = [
        {"text": "我要投诉，信用卡被盗刷了", "kind": "complaint", "category": "cards"},
        {"text": "请问房贷利率是多少？", "kind": "consultation", "category": "loans"},
        {"text": "建议手机银行增加大字模式", "kind": "suggestion"},
        {"text": "Thank you, the teller was very patient", "kind": "praise"},
        {"text": "How do I open a fixed deposit?", "kind": "complaint"},
    ]
    labelled.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "classify", "eval", str(labelled)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "precision" in out and "recall" in out and "F1" in out
    assert "confusion" in out
    assert "category accuracy: 1.00 (2 labelled)" in out
    assert out.strip().splitlines()[-1] == "kind accuracy: 0.80"


def test_classify_eval_refuses_a_bad_line_naming_it(tmp_path: Path) -> None:
    labelled = tmp_path / "bad.jsonl"
    labelled.write_text('{"text": "hi", "kind": "complaint"}\n{"text": "x", "kind": "rant"}\n')
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "classify", "eval", str(labelled)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 2
    assert "line 2" in done.stdout and "rant" in done.stdout
