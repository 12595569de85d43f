"""The customer's own words of a mail: quoted history and signatures cut off.

A reply carries everything said before it, often several times over (the bank's
acknowledgement, the agent's answer, the customer's first complaint). Stored as the ticket
message, that history would repeat on every message and bury what is new. The cut is made at
the first sign of history that mail clients actually write: a separator line ("-----Original
Message-----", QQ Mail's "------------------ 原始邮件 ------------------", NetEase's "----
回复的原邮件 ----"), an Outlook header block (From/Sent/To/Subject, or 发件人/发送时间/收件人/
主题), an attribution line ("On … wrote:", "在 … 写道：") before quoted lines, or a closing
block of ``>`` lines. Then a signature after "-- " and a client's "Sent from my iPhone"
footer go too. Interleaved quotes (answers written between quoted lines) are kept: there the
quote is the context of the answer.

Nothing is ever lost: the connector keeps the full text beside the ticket text, and when the
cut would leave nothing (a forwarded mail) the whole text is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPACE = r"[\s\u00a0\u3000]*"
_SEPARATOR = re.compile(
    rf"^{_SPACE}[-_=*]{{2,}}{_SPACE}"
    r"(original message|forwarded message|reply message|原始邮件|原邮件|回复的原邮件|邮件原文|"
    r"转发邮件|转发的邮件|原始郵件|轉寄郵件|転送メッセージ|元のメッセージ)"
    rf"{_SPACE}[-_=*]{{2,}}{_SPACE}$",
    re.IGNORECASE,
)
_RULE = re.compile(r"^\s*_{10,}\s*$")
_HEADER_FIELD = re.compile(
    r"^\s*\**\s*(from|sent|date|to|cc|subject|发件人|寄件者|发送时间|发送日期|日期|時間|收件人|"
    r"抄送|主题|主旨|副本)\s*\**\s*[:：]",
    re.IGNORECASE,
)
_FROM_FIELD = re.compile(r"^\s*\**\s*(from|发件人|寄件者)\s*\**\s*[:：]", re.IGNORECASE)
_ATTRIBUTION = re.compile(
    r"^\s*(on\s.{4,300}\swrote\s*:|.{0,300}(写道|寫道|來信|来信)\s*[:：]|.{4,300}\sschrieb\s*:)\s*$",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^(-- ?|—— ?)$")
_FOOTER = re.compile(
    r"^\s*(sent from my \S+.*|sent from (mail|outlook) for .*|get outlook for .*|"
    r"发自我的\s*\S+|来自我的\s*\S+|发自\s*(网易|QQ|139|搜狐|新浪)?邮箱.*|"
    r"来自\s*(网易|QQ|139)?邮箱.*|從我的\s*\S+\s*傳送)\s*$",
    re.IGNORECASE,
)
_SIGNATURE_WINDOW = 15


@dataclass(frozen=True, slots=True)
class Stripped:
    text: str
    """What the customer wrote in this mail."""
    cut: bool
    """Whether anything (history, signature, footer) was removed."""


def strip_history(text: str) -> Stripped:
    """The new part of a mail's text; ``cut`` says whether anything was taken away."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    begin = _leading_quote_end(lines)
    end = begin + _history_start(lines[begin:])
    kept = _drop_signature(lines[begin:end])
    result = "\n".join(kept).strip()
    if not result:
        return Stripped(text.strip(), False)
    return Stripped(result, result != text.strip())


def _history_start(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return index
        if _RULE.match(line) and _header_block_at(lines, index + 1):
            return index
        if _FROM_FIELD.match(line) and _header_block_at(lines, index):
            return index
        if _ATTRIBUTION.match(line) and _quote_follows(lines, index + 1):
            return index
        # Gmail folds a long attribution over two lines: "On …, 张三 <" / "zs@qq.com> wrote:"
        if (
            index + 1 < len(lines)
            and _ATTRIBUTION.match(f"{line} {lines[index + 1]}")
            and not _ATTRIBUTION.match(lines[index + 1])
            and _quote_follows(lines, index + 2)
        ):
            return index
    return _trailing_quote_start(lines)


def _header_block_at(lines: list[str], start: int) -> bool:
    """An Outlook-style block: a From line and at least two more header fields right after."""
    window = [line for line in lines[start : start + 8] if line.strip()][:5]
    if not window or not _FROM_FIELD.match(window[0]):
        return False
    return sum(1 for line in window[1:] if _HEADER_FIELD.match(line)) >= 2


def _quote_follows(lines: list[str], start: int) -> bool:
    for line in lines[start : start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False


def _trailing_quote_start(lines: list[str]) -> int:
    """Where a closing run of ``>`` lines (blank lines between them allowed) begins, with the
    attribution line before it; ``len(lines)`` when the text does not end in a quote."""
    start = len(lines)
    index = len(lines) - 1
    while index >= 0:
        line = lines[index].strip()
        if line.startswith(">"):
            start = index
        elif line:
            break
        index -= 1
    if 0 < start < len(lines) and _ATTRIBUTION.match(lines[start - 1]):
        return start - 1
    return start


def _leading_quote_end(lines: list[str]) -> int:
    """Where the text begins after an opening quote (a reply written below the quote); 0 if
    there is none or the text goes on quoting."""
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index < len(lines) and _ATTRIBUTION.match(lines[index]):
        index += 1
    quoted = False
    while index < len(lines):
        line = lines[index].strip()
        if line and not line.startswith(">"):
            break
        quoted = quoted or bool(line)
        index += 1
    if not quoted or any(line.lstrip().startswith(">") for line in lines[index:]):
        return 0  # no opening quote, or answers between quotes: the quotes are context
    return index


def _drop_signature(lines: list[str]) -> list[str]:
    kept = list(lines)
    while kept and not kept[-1].strip():
        kept.pop()
    if kept and _FOOTER.match(kept[-1]):
        kept.pop()
    for index in range(len(kept) - 1, max(-1, len(kept) - 1 - _SIGNATURE_WINDOW), -1):
        if _SIGNATURE.match(kept[index].rstrip("\u00a0")):
            return kept[:index]
    return kept
