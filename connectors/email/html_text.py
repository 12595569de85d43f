"""HTML mail as plain text an agent can read safely.

Many clients (QQ Mail, Outlook on the web, marketing tools) send only HTML. The ticket keeps
text, never markup: scripts, styles, head, forms and embedded objects are dropped with their
content; block elements become line breaks; a link whose text hides its target shows the target
(an agent should see where "点击查看账单" really points); quoted history in ``<blockquote>`` is
rendered as ``> `` lines so the quote stripper treats it like a plain-text client's quote.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

MAX_HTML_CHARS = 2_000_000
"""HTML beyond this is not rendered: no customer writes that much, and the parser is linear
but not free."""

_DROP = frozenset(
    {
        "script",
        "style",
        "head",
        "title",
        "noscript",
        "template",
        "svg",
        "math",
        "object",
        "embed",
        "iframe",
        "frame",
        "frameset",
        "applet",
        "select",
        "textarea",
        "button",
        "xml",
    }
)
_VOID = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr", "source"}
)
_BLOCK = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "nav",
        "main",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "pre",
        "address",
        "center",
        "form",
        "fieldset",
        "figure",
        "figcaption",
    }
)
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
_CELL = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._drop_depth = 0
        self._dropping: list[str] = []
        self._quote_depth = 0
        self._pre_depth = 0
        self._links: list[str | None] = []

    # --- structure ------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropping:
            if tag == self._dropping[-1] and tag not in _VOID:
                self._dropping.append(tag)
            return
        if tag in _DROP:
            self._dropping.append(tag)
            return
        if tag == "br":
            self._break(force=True)
        elif tag in _PARAGRAPH:
            self._paragraph()
        elif tag == "hr":
            self._break()
            self._write_raw("----")
            self._break()
        elif tag == "li":
            self._break()
            self._write_raw("- ")
        elif tag in _BLOCK:
            self._break()
            if tag == "pre":
                self._pre_depth += 1
        elif tag in _CELL:
            if self._line and self._line[-1] not in (" ", "\t"):
                self._write_raw("\t")
        elif tag == "blockquote":
            self._break()
            self._quote_depth += 1
        elif tag == "a":
            self._links.append(_link_target(dict(attrs).get("href")))
            self._line.append("\x00")  # marks where the link text starts

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID or tag in _DROP:
            if not self._dropping and tag in {"br", "hr"}:
                self.handle_starttag(tag, attrs)
            return
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._dropping:
            if tag == self._dropping[-1]:
                self._dropping.pop()
            return
        if tag in _PARAGRAPH:
            self._paragraph()
        elif tag in _BLOCK or tag == "li":
            self._break()
            if tag == "pre" and self._pre_depth:
                self._pre_depth -= 1
        elif tag == "blockquote" and self._quote_depth:
            self._break()
            self._quote_depth -= 1
        elif tag == "a" and self._links:
            self._close_link(self._links.pop())

    def handle_data(self, data: str) -> None:
        if self._dropping:
            return
        if self._pre_depth:
            for index, piece in enumerate(data.replace("\r\n", "\n").split("\n")):
                if index:
                    self._break(force=True)
                self._write_raw(piece)
            return
        text = _SPACES.sub(" ", data)
        if text == " " and (not self._line or self._line[-1].endswith((" ", "\t", "\x00"))):
            return
        self._write_raw(text)

    # --- output ---------------------------------------------------------------------

    def _write_raw(self, text: str) -> None:
        self._line.append(text)

    def _close_link(self, target: str | None) -> None:
        if "\x00" not in self._line:
            return
        start = len(self._line) - 1 - self._line[::-1].index("\x00")
        label = "".join(self._line[start + 1 :]).strip()
        del self._line[start]
        if target and label and target.rstrip("/") not in label:
            self._line.append(f" ({target})")

    def _break(self, force: bool = False) -> None:
        """End the current line; ``force`` (a ``<br>``) keeps an empty one as a blank line."""
        line = "".join(self._line).replace("\x00", "")
        line = line.rstrip(" \t") if self._pre_depth else line.strip(" \t")
        self._line = []
        if not line and not force:
            return
        prefix = "> " * self._quote_depth
        self.lines.append(prefix + line if line else prefix.rstrip())

    def _paragraph(self) -> None:
        self._break()
        if self.lines and self.lines[-1].strip("> ") != "":
            self.lines.append(("> " * self._quote_depth).rstrip())

    def text(self) -> str:
        self._break()
        joined = "\n".join(line.rstrip() for line in self.lines)
        return _BLANK_RUNS.sub("\n\n", joined).strip()


def _link_target(href: str | None) -> str | None:
    """Only web and mail targets are shown; ``javascript:`` and the like are dropped."""
    if not href:
        return None
    href = href.strip()
    scheme = urlsplit(href).scheme.lower()
    if scheme in {"http", "https"}:
        return href[:300]
    if scheme == "mailto":
        return href[7:][:200]
    return None


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: no markup, no script or style content, quotes as ``> ``."""
    builder = _TextBuilder()
    builder.feed(html[:MAX_HTML_CHARS])
    builder.close()
    return builder.text()
