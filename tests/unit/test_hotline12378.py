"""The 12378 connector's parts that need no database: the wire format, parse, rows of a sheet,
the config, and what send refuses."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.hotline12378 import FEEDBACK_PURPOSE, Hotline12378Connector
from connectors.hotline12378.models import Transfer, end_of_day, normalize_phone
from connectors.hotline12378.sheet import transfer_from_row
from hub.registry import ConnectorError, build_config
from hub.sdk import (
    BatchRow,
    ConnectorContext,
    DeliveryStatus,
    InboundEnvelope,
    OutboundMessage,
    RowRejected,
)
from hub.testing import InMemoryIngest
from normalizer import normalize
from tests.hotline_transfers import BEIJING, RESIDENT_ID, hotline_config, transfer
from ticket_core import ManualClock

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def connector() -> Hotline12378Connector:
    config = build_config(
        "hotline12378", Hotline12378Connector, hotline_config("https://reg.example/feedback")
    )
    context = ConnectorContext(
        "hotline12378", InMemoryIngest(), httpx.AsyncClient(), ManualClock(NOW)
    )
    return Hotline12378Connector(config, context)


def _envelope(body: dict[str, Any], branch: str = "beijing") -> InboundEnvelope:
    return InboundEnvelope(
        channel="hotline12378",
        external_id=body["transfer_id"],
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json",
        received_at=NOW,
        metadata={"branch": branch},
    )


# --- parse ---------------------------------------------------------------------------------


def test_parse_makes_a_regulator_complaint_with_the_transfers_facts(
    connector: Hotline12378Connector,
) -> None:
    body = transfer(
        NOW,
        deadline="2026-12-05",
        complainant={
            "name": "王秀英",
            "phone": "+86 138-1234-5678",
            "id_number": RESIDENT_ID.lower(),
            "tags": ["老年人", "Foreign"],
        },
    )
    message = connector.parse(_envelope(body))
    assert message == connector.parse(_envelope(body)), "parse is repeatable"
    assert message.kind_hint == "complaint"
    assert message.flags == frozenset({"regulator_transfer"})
    assert message.received_at == datetime.fromisoformat(body["received_at"])
    # The whole of 5 December in China: 23:59:59 +08:00.
    assert message.deadline == datetime(2026, 12, 5, 15, 59, 59, tzinfo=UTC)
    assert message.customer_tags == ("elderly", "foreign")
    assert message.category_codes == {"channel": "A01", "business": "B0203", "cause": "C0101"}
    assert message.references == (("hotline12378.transfer", body["transfer_id"]),)
    assert message.reply_address == {"branch": "beijing", "transfer_id": body["transfer_id"]}
    assert [(i.kind, i.value, i.verified) for i in message.identities] == [
        ("id_number", RESIDENT_ID, True),
        ("phone", "13812345678", True),
    ]
    assert message.display_name == "王秀英"
    assert body["summary"] in message.text and "诉求：退还年费并道歉" in message.text
    assert message.subject.startswith("12378 信用卡年费")


def test_hot_transfer_is_flagged_and_keeps_its_call(connector: Hotline12378Connector) -> None:
    message = connector.parse(_envelope(transfer(NOW, transfer_type="hot_transfer", call_id="C9")))
    assert message.flags == frozenset({"regulator_transfer", "hot_transfer"})
    assert ("hotline12378.call", "C9") in message.references
    assert "呼叫编号：C9" in message.text


def test_an_id_number_whose_check_digit_fails_never_links_customers(
    connector: Hotline12378Connector,
) -> None:
    body = transfer(NOW, complainant={"name": "A", "phone": "13800000000", "id_number": "E1234567"})
    identities = {i.kind: i.verified for i in connector.parse(_envelope(body)).identities}
    assert identities == {"id_number": False, "phone": True}
    typo = RESIDENT_ID[:-1] + "1"
    body["complainant"]["id_number"] = typo
    identities = {i.kind: i.verified for i in connector.parse(_envelope(body)).identities}
    assert identities["id_number"] is False


def test_attachments_with_data_are_kept_and_linked_ones_are_listed_not_fetched(
    connector: Hotline12378Connector,
) -> None:
    data = b"%PDF-1.4 receipt"
    body = transfer(
        NOW,
        attachments=[
            {
                "name": "回单.pdf",
                "content_type": "application/pdf",
                "sha256": hashlib.sha256(data).hexdigest(),
                "data": base64.b64encode(data).decode(),
            },
            {
                "name": "录音.mp3",
                "content_type": "audio/mpeg",
                "url": "https://12378.example/files/1.mp3",
            },
        ],
    )
    message = connector.parse(_envelope(body))
    assert [(a.name, a.data) for a in message.attachments] == [("回单.pdf", data)]
    assert "录音.mp3（audio/mpeg）https://12378.example/files/1.mp3" in message.text


def test_a_parsed_transfer_normalizes_into_the_consumer_protection_queue(
    connector: Hotline12378Connector,
) -> None:
    envelope = _envelope(transfer(NOW))
    incoming = normalize(envelope, connector.parse(envelope))
    assert incoming.queue == "consumer-protection"
    assert incoming.priority == "high"
    assert incoming.kind == "complaint"
    assert incoming.clock_started_at == NOW - timedelta(days=1)


# --- the wire format -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("010-6512 3456", "01065123456"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_stored_in_one_form(given: str, stored: str) -> None:
    assert normalize_phone(given) == stored


def _errors(body: dict[str, Any], **context: Any) -> dict[str, str]:
    try:
        Transfer.model_validate(body, context=context or None)
    except ValidationError as exc:
        return {".".join(map(str, e["loc"])): e["msg"] for e in exc.errors()}
    return {}


def test_cross_field_rules_name_the_field() -> None:
    late = transfer(
        NOW, transferred_at=(NOW - timedelta(days=3)).isoformat(), deadline="2020-01-01"
    )
    assert set(_errors(late)) == {"transferred_at", "deadline"}
    assert "call_id" in _errors(transfer(NOW, transfer_type="hot_transfer"))
    ahead = (NOW + timedelta(hours=1)).isoformat()
    future = transfer(NOW, received_at=ahead, transferred_at=ahead)
    assert "received_at" in _errors(future, now=NOW)
    assert _errors(future) == {}, "without a moment to compare, parse accepts what was stored"


def test_attachment_data_must_match_its_hash_and_fit_the_cap() -> None:
    data = base64.b64encode(b"abc").decode()
    wrong = transfer(
        NOW,
        attachments=[{"name": "a", "content_type": "text/plain", "data": data, "sha256": "0" * 64}],
    )
    assert "sha256 does not match" in str(_errors(wrong))
    both = transfer(
        NOW,
        attachments=[
            {"name": "a", "content_type": "text/plain", "data": data, "url": "https://x.example/a"}
        ],
    )
    assert "exactly one of data" in str(_errors(both))
    big = transfer(NOW, attachments=[{"name": "a", "content_type": "text/plain", "data": data}])
    assert "larger than 2 bytes" in str(_errors(big, max_attachment_bytes=2))


def test_deadline_means_the_end_of_that_day_in_china() -> None:
    assert end_of_day(date(2026, 12, 5)).isoformat() == "2026-12-05T23:59:59+08:00"


# --- rows of a sheet -----------------------------------------------------------------------


def test_a_sheet_row_is_read_generously() -> None:
    row, unreadable = transfer_from_row(
        {
            "transfer_id": "BJ-1",
            "transfer_type": "一键呼转",
            "received_at": datetime(2026, 11, 20, 9, 30),
            "transferred_at": "2026年11月20日 10:05",
            "deadline": "2026/12/05",
            "complainant.name": "王秀英",
            "complainant.phone": 13812345678,
            "complainant.tags": "老年人，外籍",
            "institution.name": "朝阳支行",
            "call_id": 778899.0,
        }
    )
    assert row["transfer_type"] == "hot_transfer"
    assert row["received_at"] == "2026-11-20T09:30:00+08:00"
    assert row["transferred_at"] == "2026-11-20T10:05:00+08:00"
    assert row["deadline"] == "2026-12-05"
    assert row["complainant"] == {
        "name": "王秀英",
        "phone": "13812345678",
        "tags": ["老年人", "外籍"],
    }
    assert row["call_id"] == "778899"
    assert unreadable == {}


def test_a_sheet_row_names_every_cell_it_cannot_read() -> None:
    row, unreadable = transfer_from_row(
        {
            "transfer_id": "T-1",
            "received_at": "yesterday",
            "complainant.id_number": 110105194912310020,
            "complainant": "not an object",
        }
    )
    assert row == {"transfer_id": "T-1"}
    assert set(unreadable) == {"received_at", "complainant.id_number", "complainant"}
    assert "the sheet holds it as a number" in unreadable["complainant.id_number"]
    assert unreadable["complainant"] == "an object is expected"


def test_batch_rows_become_envelopes_with_the_push_external_id(
    connector: Hotline12378Connector,
) -> None:
    values = {
        "transfer_id": "BJ-77",
        "transfer_type": "转办",
        "regulator_branch": "北京监管局",
        "received_at": "2026-11-20 09:30",
        "transferred_at": "2026-11-20 10:00",
        "complainant.name": "王秀英",
        "complainant.phone": "138 1234 5678",
        "institution.name": "朝阳支行",
        "summary": "年费",
    }
    envelope = connector.batch_envelope(BatchRow(7, values, "today.csv"))
    assert envelope.external_id == "BJ-77"
    assert envelope.metadata == {
        "branch": "beijing",
        "source": "import",
        "file": "today.csv",
        "row": 7,
    }
    assert connector.parse(envelope).reply_address == {"branch": "beijing", "transfer_id": "BJ-77"}
    with pytest.raises(RowRejected) as caught:
        connector.batch_envelope(
            BatchRow(8, {**values, "regulator_branch": "火星监管局", "summary": ""}, "x.csv")
        )
    reasons = " | ".join(caught.value.reasons)
    assert "'火星监管局' matches no configured branch" in reasons
    assert "summary (投诉事项)" in reasons
    with pytest.raises(RowRejected) as caught:
        connector.batch_envelope(BatchRow(9, {**values, "received_at": "昨天"}, "x.csv"))
    assert len(caught.value.reasons) == 1, "an unreadable cell is not also reported missing"


# --- config --------------------------------------------------------------------------------


def test_two_branches_may_share_neither_a_secret_nor_a_name() -> None:
    good = hotline_config("https://reg.example/feedback")
    beijing = good["branches"]["beijing"]
    with pytest.raises(ConnectorError, match="share one"):
        build_config(
            "hotline12378",
            Hotline12378Connector,
            {"branches": {"a": beijing, "b": {**beijing, "name": "其他"}}},
        )
    shanghai = good["branches"]["shanghai"]
    with pytest.raises(ConnectorError, match="both called"):
        build_config(
            "hotline12378",
            Hotline12378Connector,
            {"branches": {"a": beijing, "b": {**shanghai, "aliases": [BEIJING]}}},
        )


# --- send ----------------------------------------------------------------------------------


def _outbound(purpose: str, recipient: dict[str, Any], **metadata: Any) -> OutboundMessage:
    return OutboundMessage(
        "hotline12378", "k1", "TD-20261123-000001", recipient, "x", purpose, NOW, metadata
    )


async def test_send_refuses_anything_but_feedback_with_a_reason(
    connector: Hotline12378Connector,
) -> None:
    result = await connector.send(_outbound("acknowledgement", {"branch": "beijing"}))
    assert result.status == DeliveryStatus.give_up
    assert "contact the complainant by phone" in result.reason


async def test_send_gives_up_on_an_unknown_branch_or_an_incomplete_record(
    connector: Hotline12378Connector,
) -> None:
    gone = await connector.send(_outbound(FEEDBACK_PURPOSE, {"branch": "guangzhou"}))
    assert gone.status == DeliveryStatus.give_up and "no branch 'guangzhou'" in gone.reason
    partial = await connector.send(
        _outbound(FEEDBACK_PURPOSE, {"branch": "beijing", "transfer_id": "T1"}, outcome="won")
    )
    assert partial.status == DeliveryStatus.give_up
    assert "decided_at" in partial.reason and "outcome" in partial.reason
