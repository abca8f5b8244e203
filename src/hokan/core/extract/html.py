"""HTML helpers for the rule extractors: parsing and visible text with block boundaries.

Pure lxml, no Django. The visible text defined here is the reference text of every
``FieldValue.quote`` made by :mod:`hokan.core.extract.rules`: a quote is always a substring
of ``flat(visible_text(html))`` (whitespace runs collapsed to one space).
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

# Elements whose content is never shown to a reader.
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "head", "title", "iframe", "object"})
# Elements that start a new line of text (HTML block-level and table/list parts).
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
        "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p",
        "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "option",
        "select", "button",
    }
)  # fmt: skip

_WS = re.compile(r"\s+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


def parse_html(html: str) -> lxml.html.HtmlElement:
    """Parse a whole page or a fragment (legacy uppercase tags included) into an lxml tree.

    Returns the root element; an empty or unparsable document gives an empty ``<html>``.
    Tag names are lower-cased by lxml's HTML parser.
    """
    # lxml refuses str input that carries an XML encoding declaration.
    html = _XML_DECL.sub("", html)
    if not html.strip():
        return lxml.html.fromstring("<html></html>")
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return lxml.html.fromstring("<html></html>")


def tag_of(el: lxml.etree._Element) -> str:
    """Lower-case tag name, or "" for comments and processing instructions."""
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


def _walk(el: lxml.etree._Element, out: list[str], skip: frozenset | set = frozenset()) -> None:
    tag = tag_of(el)
    if el in skip:
        out.append("\n")  # a left-out element still separates the text around it
    elif tag and tag not in SKIP_TAGS:
        block = tag in BLOCK_TAGS
        if block:
            out.append("\n")
        if tag == "br":
            out.append("\n")
        elif tag != "img":
            if el.text:
                out.append(el.text)
            for child in el:
                _walk(child, out, skip)
        if block:
            out.append("\n")
    if el.tail:
        out.append(el.tail)


def text_lines(el: lxml.etree._Element, skip: frozenset | set = frozenset()) -> list[str]:
    """The visible text of ``el`` (without its tail) as non-empty lines.

    Script/style/noscript/template/svg content is dropped; block elements and ``<br>`` end a
    line; whitespace inside a line is collapsed to one space (U+3000 included). Elements in
    ``skip`` are left out (their tails are kept).
    """
    out: list[str] = []
    tag = tag_of(el)
    if tag in SKIP_TAGS:
        return []
    tail, el.tail = el.tail, None
    try:
        _walk(el, out, skip)
    finally:
        el.tail = tail
    lines = (_WS.sub(" ", line).strip() for line in "".join(out).split("\n"))
    return [line for line in lines if line]


def visible_text(html_or_root: str | lxml.etree._Element) -> str:
    """Visible text of a page, one block per line (see :func:`text_lines`)."""
    root = parse_html(html_or_root) if isinstance(html_or_root, str) else html_or_root
    return "\n".join(text_lines(root))


def flat(text: str) -> str:
    """Collapse every whitespace run (newlines included) to one space, and strip."""
    return _WS.sub(" ", text).strip()


def element_flat(el: lxml.etree._Element) -> str:
    """Visible text of ``el`` on one line: :func:`text_lines` joined by single spaces."""
    return " ".join(text_lines(el))
