"""Reading XML that anyone on the internet can send to the account's server URL.

Every document goes through ``read_push`` before wechatpy (whose parser, xmltodict on expat,
expands entities) sees a byte of it: the outer push, and again the inner message decrypted
from it. defusedxml refuses any DTD, so entity bombs ("billion laughs", quadratic blow-up)
and external entities (file or URL reads) stop at the ``<!DOCTYPE`` before anything is
expanded; the caller has already bounded the body's size, and here the tree's shape is
bounded too, so the cost of a hostile document is at most linear in a small body.

A WeChat push is flat: ``<xml>`` holding leaf elements, with a few events nesting up to four
levels (``SendPicsInfo/PicList/item/PicMd5Sum``). Anything else is not a push.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_DEPTH = 6
MAX_ELEMENTS = 200
MAX_TEXT = 64 * 1024


class HostileXml(ValueError):
    """The document is not one we will read; the text says why and is safe to return."""


@dataclass(frozen=True, slots=True)
class Push:
    """The top-level fields of a push (``ToUserName``, ``MsgType``, ``Encrypt``, ...)."""

    fields: dict[str, str]

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def read_push(data: bytes) -> Push:
    """Parse and check one push document; raise ``HostileXml`` saying what is wrong."""
    if not data.strip():
        raise HostileXml("empty body")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise HostileXml(f"refused XML: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise HostileXml(f"not well-formed XML: {exc}") from None
    if root.tag != "xml":
        raise HostileXml(f"the root element is <{root.tag}>, not <xml>")
    _check_shape(root)
    fields: dict[str, str] = {}
    for child in root:
        if child.tag in fields:
            raise HostileXml(f"<{child.tag}> appears twice")
        fields[child.tag] = (child.text or "").strip() if len(child) == 0 else ""
    return Push(fields)


def _check_shape(root: Element) -> None:
    count = 0
    stack: list[tuple[Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        if count > MAX_ELEMENTS:
            raise HostileXml(f"more than {MAX_ELEMENTS} elements")
        if depth > MAX_DEPTH:
            raise HostileXml(f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(element.tag, str) or "}" in element.tag:
            raise HostileXml("namespaced or special elements are not part of a push")
        if element.attrib:
            raise HostileXml(f"<{element.tag}> has attributes; pushes have none")
        if element.text is not None and len(element.text) > MAX_TEXT:
            raise HostileXml(f"<{element.tag}> holds more than {MAX_TEXT} characters")
        stack.extend((child, depth + 1) for child in element)
