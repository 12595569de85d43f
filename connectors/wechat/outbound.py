"""Messages to a WeChat customer, within WeChat's rules.

WeChat lets an account write to a customer freely (客服消息, ``message/custom/send``) for 48
hours after the customer's last interaction (a message, a menu click, following the account).
After that only a template message (模板消息, ``message/template/send``) may go, and only with
a template the bank has registered, whose fields are short (a ``thing`` value holds 20
characters), so it is a notice ("your ticket has a new reply"), not the reply itself.

So, per delivery:

1. If the customer's last interaction is within the window (less a safety margin), send the
   text as customer-service message(s). WeChat is the authority on its window: when it
   answers 45015 (window closed) or 45047 (quota for this window used), fall through.
2. Else, if the account has a template for the message's purpose (or a ``default`` one),
   send it, with the hub's idempotency key as ``client_msg_id`` so WeChat drops a repeat.
3. Else give up, saying so: the outbox records the delivery as failed and agents see why on
   the message, instead of it vanishing.

The customer's last interaction is the later of the time carried in the message's reply
address (when the customer last wrote on this ticket) and the per-customer time the connector
records on every push, events included (they may have written on another ticket since, or
clicked a menu).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.wechat.api import ApiFailure, WeChatApi
from connectors.wechat.codes import Action, Verdict
from connectors.wechat.config import TemplateConfig, WeChatConfig
from hub.sdk import Clock, ConnectorState, DeliveryResult, DeliveryStatus, OutboundMessage

_PURPOSE_LABELS = {
    "acknowledgement": "已受理",
    "progress": "处理进展",
    "reply": "客服回复",
}

# WeChat's limits on template values by key type (类目模板的参数规则); others get 200.
_VALUE_LIMITS = {
    "thing": 20,
    "short_thing": 5,
    "phrase": 5,
    "name": 10,
    "symbol": 5,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "phone_number": 17,
    "car_number": 8,
}
_ASCII_ONLY = frozenset({"character_string", "number", "letter", "symbol", "phone_number"})


def customer_key(openid: str) -> str:
    """Per-customer state keys hold a digest, so the shared table lists no openids."""
    return hashlib.sha256(openid.encode()).hexdigest()[:32]


def seen_key(account: str, openid: str) -> str:
    return f"seen:{account}:{customer_key(openid)}"


def follow_up_key(account: str, openid: str) -> str:
    return f"ticket:{account}:{customer_key(openid)}"


class _Bucket:
    """Sends per second for one account in this process (a token bucket on the hub's clock)."""

    def __init__(self, rate: float, now: datetime) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._updated = now

    def take(self, now: datetime) -> float | None:
        """``None`` when a send may go now, else seconds until one may."""
        elapsed = max(0.0, (now - self._updated).total_seconds())
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self._rate


@dataclass(frozen=True, slots=True)
class Recipient:
    account: str
    openid: str
    last_inbound_at: datetime | None


class Sender:
    def __init__(
        self, config: WeChatConfig, api: WeChatApi, state: ConnectorState, clock: Clock
    ) -> None:
        self._config = config
        self._api = api
        self._state = state
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        recipient = _recipient(message.recipient)
        if recipient is None:
            return DeliveryResult.give_up("the recipient has no WeChat account and openid")
        account = self._config.accounts.get(recipient.account)
        if account is None:
            return DeliveryResult.give_up(
                f"WeChat account {recipient.account!r} is no longer configured"
            )
        now = self._clock.now()
        bucket = self._buckets.setdefault(
            recipient.account, _Bucket(self._config.rate_limit_per_second, now)
        )
        wait = bucket.take(now)
        if wait is not None:
            return DeliveryResult.retry("rate limit of this account (rate_limit_per_second)", wait)
        await self._remember_ticket(recipient, message.ticket_number, now)

        last = await self._last_interaction(recipient)
        closed_because = ""
        if last is not None and now < last + self._config.reply_window - self._margin:
            try:
                reference = await self._custom(recipient, message.text)
                return DeliveryResult.delivered(reference)
            except ApiFailure as failure:
                if failure.verdict.action is not Action.window_closed:
                    return _result(failure)
                closed_because = failure.verdict.reason
        else:
            when = last.isoformat() if last is not None else "unknown"
            closed_because = (
                f"outside WeChat's {self._config.reply_window_hours:g}-hour customer-service "
                f"window (the customer's last interaction: {when})"
            )
        template = account.templates.get(message.purpose) or account.templates.get("default")
        if template is None:
            return DeliveryResult.give_up(
                f"undeliverable: {closed_because}, and account {recipient.account!r} has no "
                f"template for {message.purpose!r} or 'default'"
            )
        try:
            reference = await self._template(recipient, template, message)
        except ApiFailure as failure:
            return _result(failure, prefix=f"{closed_because}; template message: ")
        return DeliveryResult.delivered(reference)

    @property
    def _margin(self) -> timedelta:
        return timedelta(seconds=self._config.window_margin_seconds)

    async def _last_interaction(self, recipient: Recipient) -> datetime | None:
        recorded = await self._state.get(seen_key(recipient.account, recipient.openid))
        seen = _parse_time(recorded) if recorded else None
        times = [t for t in (recipient.last_inbound_at, seen) if t is not None]
        return max(times) if times else None

    async def _remember_ticket(self, recipient: Recipient, number: str, now: datetime) -> None:
        """The customer's next message within ``follow_up_hours`` joins this ticket."""
        if self._config.follow_up_hours <= 0 or not number:
            return
        await self._state.put(
            follow_up_key(recipient.account, recipient.openid),
            number,
            expires_at=now + timedelta(hours=self._config.follow_up_hours),
        )

    async def _custom(self, recipient: Recipient, text: str) -> str:
        parts = split_text(text, self._config.max_text_bytes, self._config.max_parts)
        for part in parts:
            await self._api.post(
                recipient.account,
                "/cgi-bin/message/custom/send",
                {"touser": recipient.openid, "msgtype": "text", "text": {"content": part}},
            )
        return f"custom:{len(parts)}"

    async def _template(
        self, recipient: Recipient, template: TemplateConfig, message: OutboundMessage
    ) -> str:
        values = self._values(recipient, message)
        payload: dict[str, Any] = {
            "touser": recipient.openid,
            "template_id": template.template_id,
            "client_msg_id": message.idempotency_key[:64],
            "data": {
                key: {"value": fit_value(key, pattern.format_map(values))}
                for key, pattern in template.data.items()
            },
        }
        if template.url:
            payload["url"] = template.url.format_map(values)
        answer = await self._api.post(recipient.account, "/cgi-bin/message/template/send", payload)
        return f"template:{answer.get('msgid', '')}"

    def _values(self, recipient: Recipient, message: OutboundMessage) -> dict[str, str]:
        local = message.created_at.astimezone(ZoneInfo(self._config.timezone))
        return {
            "ticket_number": message.ticket_number,
            "text": " ".join(message.text.split()),
            "purpose": _PURPOSE_LABELS.get(message.purpose, message.purpose),
            "sent_at": f"{local:%Y-%m-%d %H:%M}",
            "date": f"{local:%Y年%m月%d日}",
            "account": recipient.account,
        }


def split_text(text: str, max_bytes: int, max_parts: int) -> list[str]:
    """Cut text into parts of at most ``max_bytes`` UTF-8 bytes, at line ends where possible;
    beyond ``max_parts`` the last part ends with an ellipsis."""
    parts: list[str] = []
    rest = text.strip() or text
    while rest and len(parts) < max_parts:
        if len(rest.encode()) <= max_bytes:
            parts.append(rest)
            rest = ""
            break
        cut = _fit(rest, max_bytes)
        newline = rest.rfind("\n", 0, cut)
        if newline > cut // 2:
            cut = newline + 1
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        last = parts[-1]
        parts[-1] = last[: _fit(last, max_bytes - len("…".encode()))] + "…"
    return parts or [""]


def _fit(text: str, max_bytes: int) -> int:
    """How many characters of ``text`` fit in ``max_bytes`` of UTF-8."""
    size = 0
    for index, char in enumerate(text):
        size += len(char.encode())
        if size > max_bytes:
            return index
    return len(text)


def fit_value(key: str, value: str) -> str:
    """A template value cut to what WeChat accepts for its key's type (``thing2`` is a
    ``thing``: 20 characters); a value WeChat would refuse fails the whole message."""
    kind = re.sub(r"\d+$", "", key)
    if kind in _ASCII_ONLY:
        value = "".join(ch for ch in value if ch.isascii() and ch.isprintable())
    limit = _VALUE_LIMITS.get(kind, 200)
    if len(value) <= limit:
        return value
    if kind in _ASCII_ONLY:  # an ellipsis is not ASCII: cut short instead
        return value[:limit]
    return value[: limit - 1] + "…"


def _recipient(raw: dict[str, Any]) -> Recipient | None:
    account, openid = raw.get("account"), raw.get("openid")
    if not isinstance(account, str) or not isinstance(openid, str) or not account or not openid:
        return None
    stamp = raw.get("last_inbound_at")
    return Recipient(account, openid, _parse_time(stamp) if isinstance(stamp, str) else None)


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _result(failure: ApiFailure, prefix: str = "") -> DeliveryResult:
    verdict: Verdict = failure.verdict
    # give_up, and a window closed on a template send (WeChat does not say that), never retry
    retry = verdict.action is Action.retry
    status = DeliveryStatus.retry if retry else DeliveryStatus.give_up
    return DeliveryResult(
        status,
        prefix + verdict.reason,
        verdict.retry_after if status is DeliveryStatus.retry else None,
        None,
        failure.status_code,
    )
