"""A push's content: checked at the door, turned into a channel-neutral message by ``parse``.

The same ``read_message`` runs when the push arrives (so anything ``parse`` could not read is
refused with 400 at once, and WeChat's operators see it) and when a worker parses the stored
envelope (pure: it reads only the envelope and the account's configuration).

What becomes what:

| push | text of the message | opens a ticket |
|---|---|---|
| text | ``Content`` | yes |
| image | ``[图片]``, the picture follows as an attachment | yes |
| voice | ``Recognition`` (WeChat's transcript) or ``[语音]``; the audio follows | yes |
| video, shortvideo | ``[视频]`` (not fetched) | yes |
| location | ``[位置] label (latitude, longitude)`` | yes |
| link | ``[链接] title``, description, url | yes |
| another message type | ``[<type>]`` | yes: the customer wrote something |
| click on a menu key in ``menu_requests`` | the configured request | yes |
| any other event (subscribe, unsubscribe, click, view, scan, ...) | a description | no |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wechatpy import parse_message
from wechatpy.messages import BaseMessage

from connectors.wechat.untrusted_xml import Push, read_push

_OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,32}")
_TYPE = re.compile(r"[A-Za-z_]{1,32}")
_EVENT = re.compile(r"[A-Za-z_]{1,64}")
TICKET_NUMBER = re.compile(r"\b[A-Z]{2,6}-\d{8}-\d{6,12}\b")

MEDIA_TYPES = frozenset({"image", "voice"})
"""Message types whose media is fetched and attached."""


class MessageInvalid(ValueError):
    """A well-formed document that is not a push we can take; the text says why."""


@dataclass(frozen=True, slots=True)
class Received:
    """The fields every push carries, checked, and wechatpy's typed reading of the rest."""

    to_user: str
    openid: str
    create_time: int
    msg_type: str
    msg_id: str | None
    event: str | None
    media_id: str | None
    message: BaseMessage
    fields: dict[str, str]

    @property
    def sent_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    def external_id(self, account: str) -> str:
        """Stable across WeChat's three retries: the MsgId, or for events (which have none)
        the sender, the time and the event, as WeChat's documentation says to dedupe them."""
        if self.msg_id is not None and not self.is_event:
            return f"{account}:{self.msg_id}"
        kind = self.event or self.msg_type
        return f"{account}:{self.openid}:{self.create_time}:{kind}"


def read_message(xml: bytes) -> Received:
    """Check a decrypted push and read it with wechatpy; raises ``HostileXml`` or
    ``MessageInvalid``."""
    push = read_push(xml)  # defused first: wechatpy's own parser expands entities
    return _checked(push, xml)


def _checked(push: Push, xml: bytes) -> Received:
    to_user = push.get("ToUserName")
    openid = push.get("FromUserName")
    create_time = push.get("CreateTime")
    msg_type = push.get("MsgType")
    if not to_user or len(to_user) > 64:
        raise MessageInvalid("ToUserName is missing or too long")
    if not _OPENID.fullmatch(openid):
        raise MessageInvalid("FromUserName is missing or not an openid")
    if not (_DIGITS.fullmatch(create_time) and len(create_time) <= 12):
        raise MessageInvalid("CreateTime is missing or not unix seconds")
    if not _TYPE.fullmatch(msg_type):
        raise MessageInvalid("MsgType is missing or not a message type")
    msg_type = msg_type.lower()
    msg_id = push.get("MsgId") or push.get("MsgID") or None
    if msg_id is not None and not _DIGITS.fullmatch(msg_id):
        raise MessageInvalid("MsgId is not a number")
    event = None
    if msg_type == "event":
        event = push.get("Event")
        if not _EVENT.fullmatch(event):
            raise MessageInvalid("an event push without a valid Event")
    elif msg_id is None:
        raise MessageInvalid("a message push without MsgId")
    media_id = push.get("MediaId") or None
    if msg_type in MEDIA_TYPES and (media_id is None or len(media_id) > 256):
        raise MessageInvalid(f"a {msg_type} message without a valid MediaId")
    try:
        message = parse_message(xml.decode())
    except Exception as exc:  # wechatpy on a document that passed the checks above
        raise MessageInvalid(f"wechatpy could not read the push: {type(exc).__name__}") from None
    return Received(
        to_user=to_user,
        openid=openid,
        create_time=int(create_time),
        msg_type=msg_type,
        msg_id=msg_id,
        event=event,
        media_id=media_id,
        message=message,
        fields=push.fields,
    )


@dataclass(frozen=True, slots=True)
class Reading:
    """What ``parse`` needs to build the hub's message from one push."""

    text: str
    opens_ticket: bool


def describe(received: Received, menu_requests: dict[str, str]) -> Reading:
    """The message's text as agents read it, and whether it is a customer's request."""
    message: Any = received.message
    kind = received.msg_type
    if kind == "text":
        return Reading(_clean(message.content or ""), True)
    if kind == "image":
        return Reading("[图片]", True)
    if kind == "voice":
        recognition = _clean(message.recognition or "")
        return Reading(recognition or "[语音]", True)
    if kind in ("video", "shortvideo"):
        return Reading("[视频]", True)
    if kind == "location":
        label = _clean(message.label or "")
        where = f"({message.location_x}, {message.location_y})"
        return Reading(f"[位置] {label} {where}".replace("  ", " "), True)
    if kind == "link":
        parts = [f"[链接] {_clean(message.title or '')}", _clean(message.description or "")]
        parts.append(_clean(message.url or ""))
        return Reading("\n".join(part for part in parts if part), True)
    if kind != "event":
        return Reading(f"[{kind}]", True)
    return _event(received, menu_requests)


def _event(received: Received, menu_requests: dict[str, str]) -> Reading:
    event = (received.event or "").lower()
    key = received.fields.get("EventKey", "")
    if event == "click" and key in menu_requests:
        return Reading(menu_requests[key], True)
    descriptions = {
        "subscribe": "关注了公众号",
        "unsubscribe": "取消关注公众号",
        "click": f"点击菜单 {key}",
        "view": f"打开菜单链接 {key}",
        "scan": f"扫描二维码 {key}",
        "location": "上报地理位置",
    }
    return Reading(f"[事件] {descriptions.get(event, received.event or event)}", False)


def _clean(value: str) -> str:
    # XML already excludes C0 controls but tab, newline and carriage return; DEL and C1 can
    # still come, and have no place in a ticket.
    return re.sub(r"[\x7f-\x9f]", "", value).strip()


_WINDOW_EVENTS = frozenset({"subscribe", "scan", "click", "scancode_push", "scancode_waitmsg"})


def opens_window(received: Received) -> bool:
    """Whether WeChat counts the push as the customer interacting, which allows 48 hours of
    customer-service messages: any message; of events, following the account, scanning a code
    and menu clicks, but not opening a menu link, unfollowing, or reports WeChat sends on its
    own (location, template delivery)."""
    return not received.is_event or (received.event or "").lower() in _WINDOW_EVENTS


def ticket_reference(text: str, follow_up: str | None) -> str | None:
    """A ticket number the customer typed wins over the one they were last written to about;
    the core threads onto it only if it is theirs and still open."""
    match = TICKET_NUMBER.search(text)
    return match.group(0) if match else follow_up
