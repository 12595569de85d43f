"""WeChat's API error codes and what each means for a delivery.

WeChat answers HTTP 200 with ``{"errcode": N, "errmsg": "..."}``; only ``errcode`` says whether
the call worked. Every code maps to one action, and every reason keeps the code, so an agent
looking at an undelivered message (or an operator at the dead letters) can look it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Action(StrEnum):
    retry = "retry"
    """Later: WeChat is busy or a quota resets."""
    give_up = "give_up"
    """Never: the recipient, the template or the account's setup is wrong."""
    refresh_token = "refresh_token"
    """The access token is invalid or expired: refresh once and call again."""
    window_closed = "window_closed"
    """Customer-service messages are not allowed now: use a template message."""


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    retry_after: float | None = None


_BEIJING = ZoneInfo("Asia/Shanghai")

# code: (action, what it means, seconds to wait before retrying)
_CODES: dict[int, tuple[Action, str, float | None]] = {
    -1: (Action.retry, "WeChat system busy", 5.0),
    40001: (Action.refresh_token, "access token invalid", None),
    40014: (Action.refresh_token, "access token invalid", None),
    42001: (Action.refresh_token, "access token expired", None),
    40003: (Action.give_up, "openid invalid for this account", None),
    40007: (Action.give_up, "media_id invalid or expired (temporary media lives 3 days)", None),
    40013: (Action.give_up, "AppID invalid", None),
    40125: (Action.give_up, "AppSecret invalid", None),
    40037: (Action.give_up, "template_id invalid", None),
    40164: (Action.retry, "this server's IP is not in the account's IP whitelist", 600.0),
    41001: (Action.give_up, "access token missing", None),
    43004: (Action.give_up, "the customer does not follow the account", None),
    43019: (Action.give_up, "the customer is in the account's blacklist", None),
    43101: (Action.give_up, "the customer refuses these messages", None),
    45002: (Action.give_up, "message content too long", None),
    45009: (Action.retry, "daily API quota reached", None),
    45011: (Action.retry, "API minute quota reached", 60.0),
    45015: (Action.window_closed, "customer-service window closed (48 h since last message)", None),
    45047: (Action.window_closed, "customer-service message quota for this window used up", None),
    47001: (Action.give_up, "data format error", None),
    47003: (Action.give_up, "argument invalid (a template value too long or wrong type)", None),
    48001: (Action.give_up, "API not authorised for this account", None),
}


def classify(errcode: int, errmsg: str, now: datetime) -> Verdict:
    """What to do about a WeChat error; unknown codes are given up on, never retried blindly."""
    action, meaning, retry_after = _CODES.get(errcode, (Action.give_up, "", None))
    if errcode == 45009:
        retry_after = _until_beijing_midnight(now)
    detail = meaning or "unknown error"
    message = errmsg.split(" rid:")[0].strip()[:120]
    reason = f"WeChat {errcode}: {detail}" + (f" ({message})" if message else "")
    return Verdict(action, reason, retry_after)


def _until_beijing_midnight(now: datetime) -> float:
    """Daily quotas reset at midnight Beijing time; wait until just after."""
    local = now.astimezone(_BEIJING)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds() + 60.0
