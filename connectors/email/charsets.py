"""Bytes to text for mail from Chinese banks' customers, without losing characters.

Mail clients label their text with a charset, and the label is often wrong or too narrow:

* ``gb2312`` parts routinely carry GBK-only characters (镕, 喆, 堃 in people's names), which
  the standard library turns into U+FFFD. Every GB label is read as GB18030, the superset.
* Big5 comes in Microsoft's (cp950) and Hong Kong's (HKSCS) flavours; both are tried.
* Some clients label GBK or UTF-8 text ``iso-8859-1`` or ``us-ascii``, or label UTF-8 as
  ``gb2312``, or send 8-bit text with no label at all. Single-byte labels never fail to
  decode, so a failed decode cannot be the only test.

``decode`` therefore decodes strictly with the label first and keeps the result when it looks
like text; otherwise it tries the charsets such mail is really written in and keeps the most
plausible. Plausibility is measured per script: text decoded as GB18030 should be made of the
3,755 common characters of GB 2312 level 1, text decoded as Big5 of the 5,401 of Big5 level 1,
and mis-decoded text is full of kana, Cyrillic, box drawing, private-use and rare characters.
Only when no charset decodes the bytes cleanly is anything replaced, and then as little as
any candidate allows.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from functools import cache

GB = "gb18030"
UTF8 = "utf-8"

_ALIASES: dict[str, tuple[str, ...]] = {
    # Every GB label: GB18030 is a strict superset of GB 2312 and GBK (cp936).
    **dict.fromkeys(
        (
            "gb2312",
            "gb_2312",
            "gb_2312-80",
            "gb2312-80",
            "csgb2312",
            "euc-cn",
            "euccn",
            "x-euc-cn",
            "gbk",
            "x-gbk",
            "cp936",
            "ms936",
            "windows-936",
            "chinese",
            "iso-ir-58",
            "gb18030",
            "gb-18030",
        ),
        (GB,),
    ),
    **dict.fromkeys(
        ("big5", "big-5", "big5-hkscs", "big5hkscs", "x-big5", "cn-big5", "csbig5", "cp950"),
        ("big5hkscs", "cp950"),
    ),
    **dict.fromkeys(
        ("iso-2022-jp", "csiso2022jp", "iso2022jp", "iso-2022-jp-2", "iso-2022-jp-3"),
        ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3"),
    ),
    **dict.fromkeys(
        ("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j", "cp932"),
        ("cp932",),
    ),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "ks_c_5601", "cp949", "uhc"), ("cp949",)),
    **dict.fromkeys(("hz-gb-2312", "hz"), ("hz",)),
    **dict.fromkeys(("utf8", "utf-8", "unicode-1-1-utf-8"), (UTF8,)),
}

_WEAK_LABELS = frozenset(
    {"us-ascii", "ascii", "ansi_x3.4-1968", "iso-8859-1", "latin1", "latin-1", "windows-1252"}
)
"""Labels that fit any bytes (or only ASCII), which clients put on text of another charset."""

_DETECT = (UTF8, GB, "big5hkscs", "cp950", "latin-1")
"""What an unlabelled or mislabelled part from our customers is most likely written in; Latin-1
last, since it fits any bytes and only wins when no CJK reading looks like text."""

_JAPANESE = frozenset({"iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3", "cp932"})
_SAMPLE = 4000
_TRUST_LABEL = 0.8
_SHORT = 4

_PUNCTUATION = frozenset("，。、；：？！“”‘’（）《》〈〉【】「」『』…—–·～　﹏￥")


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    charset: str
    """The codec that produced ``text`` (after aliasing), for logs and tests."""
    exact: bool
    """False when some bytes fitted no candidate and were replaced with U+FFFD."""


def candidates(label: str | None) -> tuple[str, ...]:
    """The codecs to try for a declared label, most faithful first; () when it is unknown."""
    if not label:
        return ()
    name = label.strip().strip("\"'").lower()
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        return (codecs.lookup(name).name,)
    except (LookupError, ValueError):
        return ()


def decode(data: bytes, label: str | None = None) -> Decoded:
    """``data`` as text, read with its label when that holds up and by detection otherwise."""
    if not data:
        return Decoded("", candidates(label)[0] if candidates(label) else "ascii", True)
    declared = candidates(label)
    weak = not declared or (label or "").strip().strip("\"'").lower() in _WEAK_LABELS
    if data.isascii() and b"\x1b" not in data and b"~{" not in data:
        # Seven-bit text reads the same in every ASCII-compatible charset; the label only
        # matters for the 7-bit encodings (UTF-7, UTF-16 without high bytes is not a thing).
        if declared and declared[0] in {"utf_7", "utf-7"}:
            return _strict(data, declared[0]) or Decoded(data.decode("ascii"), "ascii", True)
        return Decoded(data.decode("ascii"), "ascii", True)

    tried: dict[str, Decoded | None] = {}
    if not weak:
        for codec in declared:
            result = tried.setdefault(codec, _strict(data, codec))
            if result is not None and (
                _non_ascii(result.text) < _SHORT or plausibility(result.text, codec) >= _TRUST_LABEL
            ):
                return result

    order = [*([] if weak else declared), *_DETECT]
    if b"\x1b$" in data or b"\x1b(" in data:
        order[:0] = ["iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext"]
    best: Decoded | None = None
    best_score = -1.0
    for codec in dict.fromkeys(order):
        result = tried[codec] if codec in tried else _strict(data, codec)
        tried[codec] = result
        if result is None:
            continue
        score = plausibility(result.text, codec)
        if score > best_score:
            best, best_score = result, score
    if best is not None and best_score >= _TRUST_LABEL:
        return best
    # Nothing reads cleanly and convincingly. A reading that loses a byte or two of
    # otherwise good Chinese beats one that keeps every byte as mojibake (a single-byte
    # charset "fits" any bytes, so it can only win on plausibility).
    damaged = _least_damaged(data, [*declared, UTF8, GB, "big5hkscs", "cp950"])
    if _worth_its_losses(damaged) and damaged.text != (best.text if best else None):
        damaged_score = plausibility(damaged.text, damaged.charset)
        if best is None or damaged_score > best_score + 0.2:
            return damaged
    return best or damaged


def _worth_its_losses(decoded: Decoded) -> bool:
    """At most one character in four lost, and the rest convincingly text."""
    lost = decoded.text.count("\ufffd")
    return (
        lost * 4 <= _non_ascii(decoded.text)
        and plausibility(decoded.text, decoded.charset) >= _TRUST_LABEL
    )


def _strict(data: bytes, codec: str) -> Decoded | None:
    try:
        return Decoded(data.decode(codec), codec, True)
    except (UnicodeDecodeError, LookupError):
        return None


def _least_damaged(data: bytes, codecs_: list[str]) -> Decoded:
    """Nothing fits every byte: the reading that replaces the fewest, then the likeliest."""
    best: tuple[int, float, str, str] | None = None
    for codec in dict.fromkeys(codecs_):
        try:
            text = data.decode(codec, errors="replace")
        except LookupError:
            continue
        key = (text.count("\ufffd"), -plausibility(text, codec), text, codec)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None  # UTF-8 and GB18030 always exist
    return Decoded(best[2], best[3], False)


def _non_ascii(text: str) -> int:
    return sum(1 for ch in text[: _SAMPLE * 4] if ord(ch) > 0x7F)


def plausibility(text: str, codec: str) -> float:
    """How much of the non-ASCII text is what a person writes in this charset's script, from
    0 (mojibake) to 1. Text with no non-ASCII characters scores 1."""
    frequent = _frequent_han(codec)
    japanese = codec in _JAPANESE
    total = 0
    score = 0.0
    last = len(text) - 1
    for index, ch in enumerate(text):
        code = ord(ch)
        if code < 0x80 or code == 0xFFFD:
            continue
        total += 1
        # A letter inside a Latin word ("Grüße") is Latin; a Han character inside one
        # ("Gr鼢e") is two Latin bytes misread.
        in_word = (index > 0 and text[index - 1].isascii() and text[index - 1].isalpha()) or (
            index < last and text[index + 1].isascii() and text[index + 1].isalpha()
        )
        score += _weight(ch, code, frequent, japanese, in_word)
        if total >= _SAMPLE:
            break
    return 1.0 if total == 0 else score / total


def _weight(ch: str, code: int, frequent: frozenset[str], japanese: bool, in_word: bool) -> float:
    if ch in _PUNCTUATION or 0xFF01 <= code <= 0xFF5E:
        return 1.0
    if 0x4E00 <= code <= 0x9FFF:
        if in_word:
            return 0.2
        return 1.0 if ch in frequent else 0.3
    if 0x3040 <= code <= 0x30FF:  # kana: Japanese text, or GB/Big5 bytes read wrongly
        return 1.0 if japanese else 0.05
    if 0xAC00 <= code <= 0xD7A3:
        return 0.3
    if 0xC0 <= code <= 0xFF and code not in (0xD7, 0xF7):
        return 1.0 if in_word else 0.4  # accented Latin letters: plausible in European mail
    if code in (0xA0, 0xA9, 0xAE, 0xB0, 0xB7) or 0x2010 <= code <= 0x2027:
        return 0.8
    if unicodedata.category(ch) in {"Co", "Cc", "Cn", "Cs"}:
        return 0.0
    return 0.05


def _frequent_han(codec: str) -> frozenset[str]:
    if codec == GB or codec == "hz":
        return _gb2312_level1()
    if codec in {"big5hkscs", "cp950"}:
        return _big5_level1()
    if codec in _JAPANESE:
        return _gb2312_level1() | _big5_level1() | _jis_level1()
    return _gb2312_level1() | _big5_level1()


def _table(codec: str, leads: range, trails: tuple[range, ...]) -> frozenset[str]:
    found: set[str] = set()
    for lead in leads:
        for span in trails:
            for trail in span:
                try:
                    found.add(bytes((lead, trail)).decode(codec))
                except UnicodeDecodeError:
                    continue
    return frozenset(found)


@cache
def _gb2312_level1() -> frozenset[str]:
    """The 3,755 most used simplified characters (GB 2312 rows 16-55)."""
    return _table("gb2312", range(0xB0, 0xD8), (range(0xA1, 0xFF),))


@cache
def _big5_level1() -> frozenset[str]:
    """The 5,401 most used traditional characters (Big5 A440-C67E)."""
    chars = _table("cp950", range(0xA4, 0xC7), (range(0x40, 0x7F), range(0xA1, 0xFF)))
    return frozenset(ch for ch in chars if 0x4E00 <= ord(ch) <= 0x9FFF)


@cache
def _jis_level1() -> frozenset[str]:
    """JIS X 0208 level 1 kanji (Shift_JIS 889F-9872)."""
    chars = _table("cp932", range(0x88, 0x99), (range(0x40, 0x7F), range(0x80, 0xFD)))
    return frozenset(ch for ch in chars if 0x4E00 <= ord(ch) <= 0x9FFF)
