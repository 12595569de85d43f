"""Customer notices (hub/notices): every event in both languages, channel and operator
overrides, missing templates and fields, and what a template can never see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hub import notices
from hub.notices import (
    EVENTS,
    NoticeFieldError,
    Notices,
    TemplateBroken,
    TemplateMissing,
    clean_text,
    language_chain,
)
from hub.settings import NoticeSettings
from ticket_core import Kind, Outcome, Status, Ticket

DUE = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 09:00 in Beijing, a Thursday
NEW_DUE = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
SECRETS = ("INTERNAL-NOTE", "li.wei", "cards-queue", "REVIEW-REMARK", "PROPOSED-SUMMARY")
FIELDS: dict[str, dict[str, Any]] = {
    "acknowledgement": {"code": "K7QM3ZTA"},
    "pending_customer": {"request": "身份证正反面照片"},
    "extended": {"due_at": NEW_DUE, "reason": "需要等待外部鉴定结果"},
    "resolved": {"summary": "款项已原路退回。", "days": 7},
    "auto_closed": {"days": 7},
}


def ticket(language: str = "zh-CN", channel: str = "app", **extra: Any) -> Ticket:
    fields: dict[str, Any] = {
        "kind": Kind.complaint,
        "channel": channel,
        "customer_id": 1,
        "number": "TD-20261123-000042",
        "status": Status.in_progress,
        "language": language,
        "created_at": datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
        "resolution_due_at": DUE,
        "outcome": Outcome.resolved,
        # Internal fields a notice must never show.
        "assignee": "li.wei",
        "queue": "cards-queue",
        "review_note": "REVIEW-REMARK",
        "outcome_summary": "PROPOSED-SUMMARY",
    }
    fields.update(extra)
    return Ticket(**fields)


@pytest.fixture
def builtin() -> Notices:
    return Notices()


@pytest.fixture(autouse=True)
def _default_configuration() -> Iterator[None]:
    yield
    notices.configure(NoticeSettings())


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_renders_in_both_languages(builtin: Notices, event: str, language: str) -> None:
    fields = FIELDS.get(event, {})
    text = builtin.render(event, ticket(language), **fields)
    assert "TD-20261123-000042" in text
    assert "{" not in text and "None" not in text
    assert text == text.strip() and "\n\n\n" not in text
    # English texts carry Chinese only where a field does (the request, reason, summary).
    chinese_field = any(_CHINESE.search(str(value)) for value in fields.values())
    assert bool(_CHINESE.search(text)) == (language == "zh-CN" or chinese_field)
    for secret in SECRETS:
        assert secret not in text


def test_acknowledgement_carries_code_and_due_time_in_beijing_time(builtin: Notices) -> None:
    zh = builtin.render("acknowledgement", ticket("zh-CN"), code="K7QM3ZTA")
    assert zh.startswith("您的投诉已受理，工单号 TD-20261123-000042。")
    assert "2026年11月26日（周四）09:00（北京时间）" in zh
    assert "K7QM3ZTA" in zh
    en = builtin.render("acknowledgement", ticket("en"), code="K7QM3ZTA")
    assert en.startswith("We have received your complaint. Your ticket number is")
    assert "Thu 26 Nov 2026, 09:00 (Beijing time)" in en
    assert "K7QM3ZTA" in en


def test_progress_url_and_time_zone_come_from_settings(tmp_path: Path) -> None:
    configured = Notices.from_settings(
        NoticeSettings(progress_url="https://bank.example/progress", timezone="Europe/London")
    )
    text = configured.render("acknowledgement", ticket("en"), code="K7QM3ZTA")
    assert "https://bank.example/progress" in text
    assert "Thu 26 Nov 2026, 01:00 (UTC+00:00)" in text


def test_kinds_and_outcomes_are_in_the_customers_words(builtin: Notices) -> None:
    consult = ticket("en", kind=Kind.consultation)
    assert "your enquiry" in builtin.render("acknowledgement", consult, code="X")
    rejected = builtin.render("resolved", ticket("zh-CN"), outcome=Outcome.rejected)
    assert "处理结果：经核实，未能支持您的诉求。" in rejected
    partly = builtin.render("resolved", ticket("en", outcome=Outcome.partially_resolved))
    assert "Outcome: partly resolved." in partly


def test_extended_shows_the_new_due_time_and_the_reason(builtin: Notices) -> None:
    text = builtin.render("extended", ticket(), due_at=NEW_DUE, reason="需要等待外部鉴定结果")
    assert "延长至2026年12月8日（周二）17:00（北京时间）" in text
    assert "延期原因：需要等待外部鉴定结果" in text


@pytest.mark.parametrize(
    ("requested", "used"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("EN_us", "en"),
        ("zh", "zh-CN"),
        ("zh-Hant-TW", "zh-CN"),
        ("fr", "zh-CN"),
        ("", "zh-CN"),
        ("../../etc/passwd", "zh-CN"),
    ],
)
def test_language_falls_back_to_zh_cn(builtin: Notices, requested: str, used: str) -> None:
    text = builtin.render("in_progress", ticket(requested))
    expected = builtin.render("in_progress", ticket(used))
    assert text == expected
    assert language_chain(requested)[-1] == "zh-CN"


def test_a_channel_may_have_its_own_shorter_text(builtin: Notices) -> None:
    on_app = builtin.render("acknowledgement", ticket(channel="app"), code="K7QM3ZTA")
    on_sms = builtin.render("acknowledgement", ticket(channel="sms"), code="K7QM3ZTA")
    assert "K7QM3ZTA" in on_sms and "TD-20261123-000042" in on_sms
    assert len(on_sms) < len(on_app) / 2
    assert "11月26日 09:00" in on_sms
    # An explicit channel beats the ticket's; a channel without its own texts uses the
    # generic ones, as does a name that could not be a directory.
    assert (
        builtin.render("acknowledgement", ticket(channel="app"), channel="sms", code="K7QM3ZTA")
        == on_sms
    )
    assert builtin.render("acknowledgement", ticket(channel="wechat"), code="K7QM3ZTA") == on_app
    assert builtin.render("acknowledgement", ticket(channel="../sms"), code="K7QM3ZTA") == on_app


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_operator_directory_overrides_built_in_templates(tmp_path: Path) -> None:
    _write(
        tmp_path, "zh-CN/acknowledgement.txt", "【示例银行】工单 {{ number }}，查询码 {{ code }}。"
    )
    _write(tmp_path, "zh-CN/wechat/survey.txt", "微信评价：{{ number }}")
    _write(tmp_path, "fr/assigned.txt", "Votre dossier {{ number }} est suivi.")
    operator = Notices.from_settings(NoticeSettings(template_dir=tmp_path))
    assert (
        operator.render("acknowledgement", ticket(), code="K7QM3ZTA")
        == "【示例银行】工单 TD-20261123-000042，查询码 K7QM3ZTA。"
    )
    # Only what the operator wrote changes: English is still built in.
    assert operator.render("acknowledgement", ticket("en"), code="K") == Notices().render(
        "acknowledgement", ticket("en"), code="K"
    )
    assert operator.render("survey", ticket(channel="wechat")) == "微信评价：TD-20261123-000042"
    assert (
        operator.render("assigned", ticket("fr-FR"))
        == "Votre dossier TD-20261123-000042 est suivi."
    )
    # A language the operator added falls back to zh-CN for the events it does not have.
    assert "正在办理中" in operator.render("in_progress", ticket("fr"))


def test_configure_makes_render_use_the_operator_directory(tmp_path: Path) -> None:
    _write(tmp_path, "zh-CN/reopened.txt", "重新打开：{{ number }}")
    notices.configure(NoticeSettings(template_dir=tmp_path))
    assert notices.render("reopened", ticket()) == "重新打开：TD-20261123-000042"


def test_an_operator_template_that_does_not_compile_stops_the_start(tmp_path: Path) -> None:
    _write(tmp_path, "zh-CN/survey.txt", "第一行\n{% if days %}没有结束")
    with pytest.raises(TemplateBroken, match=r"zh-CN/survey.txt:2 does not compile"):
        Notices.from_settings(NoticeSettings(template_dir=tmp_path))


def test_an_operator_template_failing_at_render_falls_back_to_built_in(tmp_path: Path) -> None:
    # Unknown names fail (StrictUndefined), and so does prying at internals in the sandbox:
    # neither can show anything internal, and the customer still gets the built-in text.
    _write(tmp_path, "zh-CN/assigned.txt", "处理人：{{ assignee }}")
    _write(tmp_path, "zh-CN/in_progress.txt", "{{ number.__class__.__mro__ }}")
    operator = Notices(tmp_path)
    assert operator.render("assigned", ticket()) == Notices().render("assigned", ticket())
    assert operator.render("in_progress", ticket()) == Notices().render("in_progress", ticket())


def test_missing_template_names_event_language_and_channel(builtin: Notices) -> None:
    with pytest.raises(TemplateMissing) as caught:
        builtin.render("refund_done", ticket("en"), channel="sms")
    error = caught.value
    assert (error.event, error.language, error.channel) == ("refund_done", "en", "sms")
    message = str(error)
    assert "'refund_done'" in message and "'en'" in message and "'sms'" in message
    assert "en/sms/refund_done.txt" in message and "zh-CN/refund_done.txt" in message


def test_missing_required_fields_are_named(builtin: Notices) -> None:
    with pytest.raises(NoticeFieldError, match="needs reason"):
        builtin.render("extended", ticket(), due_at=NEW_DUE)
    with pytest.raises(NoticeFieldError, match="needs code"):
        builtin.render("acknowledgement", ticket())
    with pytest.raises(NoticeFieldError, match="needs outcome"):
        builtin.render("resolved", ticket(outcome=None))
    with pytest.raises(NoticeFieldError, match="not an event name"):
        builtin.render("../secrets", ticket())


def test_fields_are_plain_data_with_control_characters_stripped(builtin: Notices) -> None:
    text = builtin.render(
        "pending_customer",
        ticket("en"),
        request="a\x00b\x1b[31mc\u202egnp.exe\r\nline two\u2028three",
    )
    assert "ab[31mcgnp.exe\nline two\nthree" in text
    with pytest.raises(NoticeFieldError, match="field 'summary' is a Ticket"):
        builtin.render("resolved", ticket(), summary=ticket())
    with pytest.raises(NoticeFieldError, match="not a field name"):
        builtin.render("survey", ticket(), **{"bad-name": 1})
    assert clean_text("tab\tand\nnewline\x7f\ufeff") == "tab\tand\nnewline"


def test_settings_refuse_a_missing_directory_and_an_unknown_zone(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not a directory"):
        NoticeSettings(template_dir=tmp_path / "nope")
    with pytest.raises(ValidationError, match="unknown time zone"):
        NoticeSettings(timezone="Asia/Beijing")
    with pytest.raises(ValidationError):
        NoticeSettings(progress_url="javascript:alert(1)")
