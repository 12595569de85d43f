"""The bad-input drill: what strangers can send is generated, not imagined.

* ``openapi_answers_no_5xx``: schemathesis reads the hub's own ``/openapi.json`` and sends
  every operation generated requests, valid and invalid (``positive`` and ``negative``
  modes), authenticated with an admin API key, over loopback to a real hub; no answer may be
  a 5xx. Operations that name a ticket, customer, envelope or outbox row are also tried
  with ids that exist, so the generated bodies reach the handlers' logic, not just a 404.
* ``wechat_xml_parser_fuzz``, ``mime_parser_fuzz``, ``hotline_csv_parser_fuzz``: hypothesis
  builds documents shaped like the real thing (then mangles them) for the WeChat push
  reader (``connectors.wechat.messages.read_message``), the mail reader
  (``connectors.email.reading.read_mail``) and the 12378 sheet import (``hub.importing``
  decoding and CSV reading, the column matching, and the connector's ``batch_envelope``).
  Each may refuse a document only with its own clear error type (``HostileXml`` /
  ``MessageInvalid``, ``UnreadableMail``, ``ImportFailed`` / ``RowRejected``); anything else
  is a crash. Every call runs under tracemalloc and its peak must stay under a limit.

The short form (``tests/drills/test_bad_input.py``) is derandomized: the same examples on
every run. The long form (``python -m bench.drills bad-input --long``) runs many more with a
seed it prints, so a failure can be replayed with ``--seed``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import quopri
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from bench.drills import fail
from bench.drills.common import APP_SECRET, app_message, app_push_headers

MIB = 1024 * 1024
PARSER_PEAK_LIMIT = 32 * MIB
"""The most one parser call may allocate at its peak: inputs here are at most a few hundred
KiB, so anything near this is a blow-up (an expanded entity, a quadratic copy)."""


@dataclass
class Outcomes:
    """What a fuzz run saw: examples, how they ended (accepted or the error's type), and the
    largest tracemalloc peak of one call."""

    name: str
    examples: int = 0
    endings: Counter[str] = field(default_factory=Counter)
    peak_bytes: int = 0
    largest_input: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "endings": dict(self.endings.most_common()),
            "peak memory of one call (KiB)": self.peak_bytes // 1024,
            "largest input (bytes)": self.largest_input,
            "seconds": round(self.seconds, 1),
        }


def _fuzz(
    name: str,
    strategy: st.SearchStrategy[bytes],
    call: Callable[[bytes], object],
    allowed: tuple[type[BaseException], ...],
    *,
    examples: int,
    seed_: int | None,
    warm_up: bytes = b"",
) -> Outcomes:
    """Run ``call`` on ``examples`` generated inputs; fail on an exception outside
    ``allowed`` or a peak over ``PARSER_PEAK_LIMIT``. ``seed_`` None: derandomized."""
    outcomes = Outcomes(name)

    @settings(
        max_examples=examples,
        derandomize=seed_ is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=True,
    )
    @given(strategy)
    def one(data: bytes) -> None:
        outcomes.examples += 1
        outcomes.largest_input = max(outcomes.largest_input, len(data))
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]  # what the fuzzer itself holds by now
        try:
            call(data)
        except allowed as exc:
            outcomes.endings[type(exc).__name__] += 1
        else:
            outcomes.endings["accepted"] += 1
        finally:
            peak = tracemalloc.get_traced_memory()[1] - before
            outcomes.peak_bytes = max(outcomes.peak_bytes, peak)
        assert peak < PARSER_PEAK_LIMIT, f"{name}: {peak // 1024} KiB at the peak of one call"

    test = seed(seed_)(one) if seed_ is not None else one
    # Lazy imports and caches of the first call are not the input's cost.
    with contextlib.suppress(Exception):
        call(warm_up)
    started = time.monotonic()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        test()
    except AssertionError:
        raise
    except Exception as exc:
        fail(f"{name}: crashed with {type(exc).__name__}: {exc}")
    finally:
        if not tracing:
            tracemalloc.stop()
        outcomes.seconds = time.monotonic() - started
    return outcomes


def _mangled(documents: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Documents as built, cut short, with bytes flipped or inserted, or plain noise."""

    @st.composite
    def mangle(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(documents))
        for _ in range(draw(st.integers(0, 4))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            what = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
            if what == "cut":
                del data[at:]
            elif what == "flip":
                data[at] = draw(st.integers(0, 255))
            elif what == "insert":
                data[at:at] = draw(st.binary(max_size=16))
            else:
                del data[at : at + draw(st.integers(1, 32))]
        return bytes(data)

    return st.one_of(documents, mangle(), st.binary(max_size=512))


# --- WeChat push XML -----------------------------------------------------------------------

_WECHAT_FIELDS = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "MsgID",
    "PicUrl",
    "MediaId",
    "Format",
    "Recognition",
    "Location_X",
    "Location_Y",
    "Scale",
    "Label",
    "Title",
    "Description",
    "Url",
    "Event",
    "EventKey",
    "Ticket",
    "Latitude",
    "Longitude",
    "Precision",
    "ThumbMediaId",
    "Encrypt",
]
_MSG_TYPES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event", "TEXT"]
_EVENTS = ["subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "TEMPLATESENDJOBFINISH"]
_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40
) | st.sampled_from(
    ["", " ", "0", "-1", "1e309", "99999999999999999999", "oUpF8uMuAJO_M2pxb1Q9zN", "\x00", "\x1b"]
)


@st.composite
def wechat_documents(draw: st.DrawFn) -> bytes:
    def mostly(good: st.SearchStrategy[str]) -> str:
        return draw(st.one_of(good, good, good, _TEXT))

    values = {
        "ToUserName": mostly(st.just("gh_retail0001")),
        "FromUserName": mostly(st.just("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")),
        "CreateTime": mostly(st.integers(0, 2**34).map(str)),
        "MsgType": mostly(st.sampled_from(_MSG_TYPES)),
        "Event": mostly(st.sampled_from(_EVENTS)),
        "MsgId": mostly(st.integers(0, 2**64).map(str)),
    }
    core = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId"]
    names = [name for name in core if draw(st.integers(0, 19))]
    names += [
        n for n in draw(st.lists(st.sampled_from(_WECHAT_FIELDS), max_size=6)) if n not in names
    ]
    if draw(st.integers(0, 9)) == 0:
        names.append(draw(st.sampled_from(_WECHAT_FIELDS)))  # one field twice
    names = draw(st.permutations(names)) if draw(st.integers(0, 3)) == 0 else names
    parts = []
    for name in names:
        value = values.get(name) or draw(_TEXT)
        escaped = value.replace("]]>", "]]]]><![CDATA[>")
        style = draw(st.sampled_from(["cdata"] * 12 + ["plain"] * 4 + ["nested", "empty"]))
        if style == "cdata":
            parts.append(f"<{name}><![CDATA[{escaped}]]></{name}>")
        elif style == "plain":
            plain = value.replace("&", "&amp;").replace("<", "&lt;")
            parts.append(f"<{name}>{plain}</{name}>")
        elif style == "nested":
            parts.append(
                f"<{name}><item><{name}>{draw(st.integers(0, 9))}</{name}></item></{name}>"
            )
        else:
            parts.append(f"<{name}/>")
    prolog = draw(st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>', "\ufeff"]))
    return (prolog + "<xml>" + "".join(parts) + "</xml>").encode()


def wechat_xml_parser_fuzz(examples: int = 100, seed_: int | None = None) -> dict[str, Any]:
    from connectors.wechat.messages import MessageInvalid, read_message
    from connectors.wechat.untrusted_xml import HostileXml

    return _fuzz(
        "WeChat push XML",
        _mangled(wechat_documents()),
        read_message,
        (HostileXml, MessageInvalid),
        examples=examples,
        seed_=seed_,
        warm_up=b"<xml><ToUserName>gh</ToUserName><FromUserName>oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        b"</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
        b"<Content>x</Content></xml>",
    ).as_dict()


# --- MIME mail -----------------------------------------------------------------------------

_CHARSETS = ["utf-8", "gbk", "gb2312", "gb18030", "big5", "iso-2022-jp", "latin-1", "x-unknown"]
_WORDS = ["信用卡", "年费", "扣款", "退款", "Refund", "請處理", "テスト", "", "=?", "\x00"]


def _encoded_word(draw: st.DrawFn) -> str:
    text = "".join(draw(st.lists(st.sampled_from(_WORDS), max_size=4)))
    charset = draw(st.sampled_from(_CHARSETS))
    try:
        raw = text.encode(charset)
    except (LookupError, UnicodeEncodeError):
        raw = text.encode("utf-8")
    if draw(st.booleans()):
        return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    return f"=?{charset}?Q?{''.join(f'={b:02X}' for b in raw)}?="


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(
        st.sampled_from(
            ["text/plain", "text/html", "application/pdf", "image/jpeg", "message/rfc822"]
            + (["multipart/mixed", "multipart/alternative"] if depth < 3 else [])
        )
    )
    charset = draw(st.sampled_from(_CHARSETS))
    encoding = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-bogus"]))
    text = "".join(draw(st.lists(st.sampled_from([*_WORDS, "\r\n", "> quoted\r\n"]), max_size=8)))
    try:
        body = text.encode(charset)
    except (LookupError, UnicodeEncodeError):
        body = text.encode("utf-8", "surrogatepass")
    if encoding == "base64":
        body = base64.encodebytes(body)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(body)
    headers = [f"Content-Type: {kind}; charset={charset}".encode()]
    if draw(st.booleans()):
        name = draw(st.sampled_from(["账单.pdf", "a.jpg", "../../etc/passwd", ""]))
        headers.append(
            draw(
                st.sampled_from(
                    [
                        f'Content-Disposition: attachment; filename="{name}"'.encode(),
                        f"Content-Disposition: attachment; filename*=utf-8''{name}".encode(),
                        b"Content-Disposition: inline",
                    ]
                )
            )
        )
    headers.append(f"Content-Transfer-Encoding: {encoding}".encode())
    if kind.startswith("multipart/"):
        boundary = draw(st.sampled_from(["b1", "=_b", "", "a" * 80])) + str(depth)
        headers[0] = f'Content-Type: {kind}; boundary="{boundary}"'.encode()
        children = draw(st.lists(mime_part(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + c + b"\r\n" for c in children)
        body += draw(st.sampled_from([b"--" + boundary.encode() + b"--\r\n", b""]))
    elif kind == "message/rfc822" and depth < 3:
        body = draw(mail_documents(depth + 1))
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


@st.composite
def mail_documents(draw: st.DrawFn, depth: int = 0) -> bytes:
    sender = draw(
        st.sampled_from(
            [
                "zhangsan@qq.com",
                f"{_encoded_word(draw)} <li@163.com>",
                "MAILER-DAEMON@mx.bank.test",
                "<>",
                "not an address",
                "",
            ]
        )
    )
    lines = [f"From: {sender}"]
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    "To",
                    "Subject",
                    "Date",
                    "Message-ID",
                    "In-Reply-To",
                    "References",
                    "Auto-Submitted",
                    "List-Id",
                    "Reply-To",
                    "X-Failed-Recipients",
                ]
            ),
            max_size=8,
        )
    ):
        value = draw(
            st.sampled_from(
                [
                    _encoded_word(draw),
                    f"<{draw(st.integers(0, 999))}@bank.test>",
                    format_datetime(datetime(2026, 11, 23, tzinfo=UTC)),
                    "Mon, 99 Foo 2026 25:61:61 +9999",
                    "auto-replied",
                    "support@bank.test, 客服 <kf@bank.test>",
                    "",
                ]
            )
        )
        lines.append(f"{name}: {value}")
    head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        head += b"\r\nSubject: " + "账单问题".encode("gbk")  # raw 8-bit header
    return head + b"\r\nMIME-Version: 1.0\r\n" + draw(mime_part(depth))


def mime_parser_fuzz(examples: int = 100, seed_: int | None = None) -> dict[str, Any]:
    from connectors.email.reading import Limits, UnreadableMail, external_id, read_mail

    limits = Limits(max_attachment_bytes=64 * 1024, max_attachments=5, max_text_chars=20_000)

    def read(raw: bytes) -> None:
        external_id(raw)  # never raises: the poller calls it on anything
        read_mail(raw, limits)

    return _fuzz(
        "MIME mail",
        _mangled(mail_documents()),
        read,
        (UnreadableMail,),
        examples=examples,
        seed_=seed_,
    ).as_dict()


# --- 12378 CSV sheets ----------------------------------------------------------------------

_LABELS = [
    "转办编号",
    "转办类型",
    "监管机构",
    "受理时间",
    "转办时间",
    "办理时限",
    "投诉人",
    "联系电话",
    "证件号码",
    "联系地址",
    "客户标签",
    "被投诉机构代码",
    "被投诉机构",
    "渠道代码",
    "业务代码",
    "原因代码",
    "投诉事项",
    "诉求",
    "呼叫编号",
    "attachments",
    "complainant",
    "备注",
]
_CELLS = st.sampled_from(
    [
        "",
        "BJ12378-000001",
        "转办",
        "国家金融监督管理总局北京监管局",
        "北京监管局",
        "2026-11-20 09:30",
        "2026年11月20日 9时30分",
        "2026/13/45",
        "45678.5",
        "1.38E+10",
        "138 1234 5678",
        "11010519491231002X",
        "老年人,外籍",
        "某银行朝阳支行",
        "信用卡年费被重复扣收，要求退还",
        '{"name": "王"}',
        "[]",
        "=cmd|' /C calc'!A0",
        "\x00",
        '"',
        "a\nb",
    ]
) | st.text(max_size=30)


@st.composite
def csv_documents(draw: st.DrawFn) -> bytes:
    headings = draw(st.lists(st.sampled_from(_LABELS) | st.text(max_size=8), max_size=14))
    if draw(st.booleans()):
        headings = _LABELS[:19]
    rows = draw(st.lists(st.lists(_CELLS, max_size=len(headings) + 2), max_size=6))
    delimiter = draw(st.sampled_from([",", "\t"]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    if draw(st.booleans()):
        out.write("12378转办清单（导出）\n")
    writer.writerow(headings)
    writer.writerows(rows)
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
    return text.encode(encoding, "replace")


def hotline_csv_parser_fuzz(examples: int = 100, seed_: int | None = None) -> dict[str, Any]:
    from connectors.hotline12378 import Hotline12378Connector
    from hub.importing import Columns, ImportFailed, _read_csv, decode
    from hub.registry import build_config
    from hub.sdk import BatchRow, ConnectorContext, RowRejected
    from hub.testing import InMemoryIngest
    from ticket_core import ManualClock

    config = build_config(
        "hotline12378",
        Hotline12378Connector,
        {
            "branches": {
                "beijing": {
                    "name": "国家金融监督管理总局北京监管局",
                    "aliases": ["北京监管局"],
                    "secret": APP_SECRET,
                    "feedback_url": "http://127.0.0.1:9/feedback",
                }
            }
        },
    )
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    http = httpx.AsyncClient()
    connector = Hotline12378Connector(
        config, ConnectorContext("hotline12378", InMemoryIngest(), http, clock)
    )

    def load(data: bytes) -> None:
        text, encoding = decode(data)
        source = _read_csv(text, encoding)
        columns = Columns(connector.batch_fields, connector.batch_mapping())
        headings, rows = columns.tabulate(source)
        columns.check_headings(headings)
        for row in rows:
            values = columns.values(row)
            if values:
                with contextlib.suppress(RowRejected):  # that row's clear answer; the rest go on
                    connector.batch_envelope(
                        BatchRow(row.number, columns.with_defaults(values), "fuzz.csv")
                    )

    return _fuzz(
        "12378 CSV",
        _mangled(csv_documents()),
        load,
        (ImportFailed,),
        examples=examples,
        seed_=seed_,
    ).as_dict()


# --- the API through its own OpenAPI document ---------------------------------------------


async def openapi_answers_no_5xx(
    database_url: str, workdir: Path, *, examples: int = 5, seed_: int | None = None
) -> dict[str, Any]:
    """Every operation of ``/openapi.json``, ``examples`` generated requests per operation
    and mode (positive, negative), against a real hub with a few tickets in it."""
    from hub.app import create_app
    from hub.auth import Role, create_key
    from hub.runtime import Hub
    from hub.settings import Settings
    from hub.testing import SignedWebhookReceiver, serving

    receiver = SignedWebhookReceiver(secret=APP_SECRET)
    await receiver.start()
    settings_ = Settings(
        database={"url": database_url},
        worker={"in_process": False},
        outbox={"backoff_initial": 2, "max_attempts": 4, "http_timeout": 2},
        webhooks={"allow_private_targets": False},
        connectors={"app": {"secret": APP_SECRET, "callback_url": receiver.url}},
    )
    hub = await Hub(settings_).open(migrate=True)
    try:
        async with hub.sessions() as session, session.begin():
            key = await create_key(session, "drill-admin", Role.admin, hub.clock.now())
        async with serving(create_app(hub=hub, run_workers=False)) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                for i in range(3):
                    body = app_message(f"第{i}条：信用卡年费被重复扣收，要求退款", f"u-{i}")
                    headers = app_push_headers(body, datetime.now(UTC), f"msg_drill_{i}")
                    response = await client.post(
                        "/channels/app/messages", content=body, headers=headers
                    )
                    assert response.status_code == 202, response.text
                for _ in range(20):
                    if not await hub.work_once():
                        break
                listed = await client.get(
                    "/api/v1/tickets", headers={"authorization": f"Bearer {key}"}
                )
                numbers = [t["number"] for t in listed.json()["items"]]
            known = {"number": numbers[0], "customer_id": 1, "envelope_id": 1, "row_id": 1}
            return await asyncio.to_thread(
                _schemathesis, base_url, {"authorization": f"Bearer {key}"}, known, examples, seed_
            )
    finally:
        await hub.close()
        await receiver.stop()


def _schemathesis(
    base_url: str,
    auth: dict[str, str],
    known: dict[str, Any],
    examples: int,
    seed_: int | None,
) -> dict[str, Any]:
    import requests
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    started = time.monotonic()
    raw = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    session = requests.Session()
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    operations = unsatisfiable = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = {p.name for p in operation.path_parameters}
        pinned = {name: value for name, value in known.items() if name in names}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if pinned and mode is GenerationMode.POSITIVE:
                strategy = strategy | operation.as_strategy(
                    generation_mode=mode, path_parameters=pinned
                )

            @settings(
                max_examples=examples,
                derandomize=seed_ is None,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @given(strategy)
            def one(case: Any) -> None:
                response = case.call(base_url=base_url, session=session, headers=auth, timeout=10)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {response.request.path_url} body={case.body!r:.300}"
                        f" -> {response.status_code} {response.text[:200]}"
                    )

            test = seed(seed_)(one) if seed_ is not None else one
            try:
                test()
            except Unsatisfiable:
                unsatisfiable += 1  # nothing in the operation can be made invalid
            except Exception as exc:  # generation itself failed: say so, do not hide it
                server_errors.append(
                    f"{operation.label} ({mode.value}): {type(exc).__name__}: {exc}"
                )
    if server_errors:
        fail(
            f"{len(server_errors)} requests answered 5xx or broke:\n"
            + "\n".join(server_errors[:20])
        )
    return {
        "operations": operations,
        "operations with nothing to make invalid": unsatisfiable,
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(time.monotonic() - started, 1),
    }
