"""Reading an LLM's answer about fields: the schema asked for, validation, grounding, confidence.

Generic over the fields asked (anything with ``name``, ``label`` and ``prompt_label``: a leads
``Column``, a ``FieldSpec``) and over how a raw value becomes stored values (``clean``), so
every app that asks an LLM to fill fields (leads, municipal, knowledge) reads answers the same
way. Pure, no Django.

The answer's shape (one item per field, keyed by its prompt label)::

    {"資本金": {"value": "5,000万円", "source_url": "https://…/company/", "quote": "資本金 5,000万円"}, …}

``answer_schema(labels)`` is its JSON schema, ``answer_template(labels)`` the same shape with
empty strings, shown in the prompt.

Grounding (ARCHITECTURE.md: a value that cannot be found in any evidence is scored low): a
value is *grounded* when its quote — or the raw value itself — of at least
``MIN_GROUNDING_CHARS`` characters appears, after ``ja.fold``, in the text of a page we read.
Confidence: ``GROUNDED_CONFIDENCE`` (0.7) when grounded, ``CITED_CONFIDENCE`` (0.5) when the
model named a source, ``UNCITED_CONFIDENCE`` (0.3) otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from hokan.core import ja
from hokan.core.fields import FieldValue

if TYPE_CHECKING:
    from hokan.core.web import Page

GROUNDED_CONFIDENCE = 0.7
CITED_CONFIDENCE = 0.5
UNCITED_CONFIDENCE = 0.3
MIN_GROUNDING_CHARS = 4
MAX_QUOTE_CHARS = 500
ITEM_KEYS = ("value", "source_url", "quote")


class AskedField(Protocol):
    """A field an LLM is asked for: ``name`` (stored column), ``label`` (Japanese, for
    messages) and ``prompt_label`` (the item's key in the prompt and the answer)."""

    name: str
    label: str
    prompt_label: str


# Turns one raw answer value into {column: normalised value}: {} for a vague value; raises
# ValueError (Japanese reason) for an invalid one.
Cleaner = Callable[[str, str], dict[str, Any]]


def answer_template(labels: Sequence[str]) -> str:
    """The answer's shape with empty strings, as indented JSON (for the prompt)."""
    item = {key: "" for key in ITEM_KEYS}
    return json.dumps({label: item for label in labels}, ensure_ascii=False, indent=2)


def answer_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of an answer for ``labels``: every label required, each an object of
    nullable strings ``value`` / ``source_url`` / ``quote``; no other keys."""
    nullable = {"type": ["string", "null"]}
    return {
        "type": "object",
        "properties": {
            label: {
                "type": "object",
                "properties": {key: nullable for key in ITEM_KEYS},
                "required": list(ITEM_KEYS),
                "additionalProperties": False,
            }
            for label in labels
        },
        "required": list(labels),
        "additionalProperties": False,
    }


def grounding_page(quote: str, value_text: str, pages: Sequence[Page], *, folded: Sequence[str] | None = None) -> Page | None:
    """The first of ``pages`` whose text contains the quote (or else the raw value), compared
    after ``ja.fold``; None when neither (of at least MIN_GROUNDING_CHARS characters) is found.

    folded: ``[ja.fold(page.text) for page in pages]`` when the caller has it already.
    """
    texts = list(folded) if folded is not None else [ja.fold(page.text) for page in pages]
    for needle in (quote, value_text):
        needle = ja.fold(needle or "")
        if len(needle) < MIN_GROUNDING_CHARS:
            continue
        for page, text in zip(pages, texts):
            if needle in text:
                return page
    return None


def values_from_answer(
    data: dict[str, Any],
    fields: Sequence[AskedField],
    *,
    clean: Cleaner,
    pages: Sequence[Page],
    citations: Sequence[str],
    subject: str,
    repaired: bool = False,
) -> tuple[list[FieldValue], list[str]]:
    """Validate the model's answer: (accepted FieldValues with method "ai", rejection messages).

    data: the parsed answer (see the module docstring); an item may also be a bare string or
        number (taken as its value).
    fields: the fields asked, in order; clean: see ``Cleaner``.
    pages: the pages we read ourselves (for grounding); citations: URLs the provider cited
        (the first is the source of an item that names none).
    subject: what the answer is about (a company name), put in front of each message.
    repaired: the answer was truncated and repaired: its last item is dropped, it is the one
        the cut went through ("5,0" of "5,000万円" would otherwise be stored as 50 yen).

    A vague or invalid value is treated as missing (an invalid one adds a message). A source
    that is not an http(s) URL is dropped. Quotes are cut at MAX_QUOTE_CHARS.
    """
    accepted: list[FieldValue] = []
    rejected: list[str] = []
    if repaired and data:
        last = list(data)[-1]
        data = {key: value for key, value in data.items() if key != last}
        rejected.append(f"{subject} {last}: 回答が途中で切れていたため採用しません")
    folded: list[str] | None = None
    for spec in fields:
        item = data.get(spec.prompt_label)
        if isinstance(item, (str, int, float)):
            item = {"value": item}
        if not isinstance(item, dict) or item.get("value") in (None, ""):
            continue
        raw = str(item.get("value"))
        source_url = str(item.get("source_url") or "") or (citations[0] if citations else "")
        if source_url and urlsplit(source_url).scheme not in ("http", "https"):
            source_url = ""
        quote = str(item.get("quote") or "")[:MAX_QUOTE_CHARS]
        try:
            cleaned = clean(spec.name, raw)
        except ValueError as exc:
            rejected.append(f"{subject} {spec.label}: {exc}")
            continue
        if not cleaned:
            continue
        if folded is None:
            folded = [ja.fold(page.text) for page in pages]
        grounded = grounding_page(quote, raw, pages, folded=folded) is not None
        confidence = GROUNDED_CONFIDENCE if grounded else (CITED_CONFIDENCE if source_url else UNCITED_CONFIDENCE)
        extractor = "llm:grounded" if grounded else "llm:unverified"
        for column, value in cleaned.items():
            accepted.append(
                FieldValue(field=column, value=value, raw=raw, quote=quote, source_url=source_url or None,
                           method="ai", confidence=confidence, extractor=extractor)
            )
    return accepted, rejected
