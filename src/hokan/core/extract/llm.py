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
Its ``source_url`` is then the page that proved it, whatever the model said.

1. ``values_from_answer`` checks the pages we read ourselves (extractor ``llm:grounded``);
2. ``ground_in_cited_pages`` fetches the pages the model cited for the values still
   unverified — through the caller's fetcher (``hokan.core.web``: SSRF guard, robots.txt,
   size cap), at most ``max_pages`` distinct URLs per answer, no LLM cost — and checks the
   quote there (extractor ``llm:grounded:cited``).

Confidence: ``GROUNDED_CONFIDENCE`` (0.7) when grounded, ``CITED_CONFIDENCE`` (0.5) when the
model named a source we could not confirm, ``UNCITED_CONFIDENCE`` (0.3) otherwise.
``is_grounded(value)`` tells the two grounded extractors from the rest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urldefrag, urlsplit

from hokan.core import ja
from hokan.core.errors import FetchError
from hokan.core.fields import FieldValue

if TYPE_CHECKING:
    from hokan.core.web import Page

GROUNDED_CONFIDENCE = 0.7
CITED_CONFIDENCE = 0.5
UNCITED_CONFIDENCE = 0.3
MIN_GROUNDING_CHARS = 4
MAX_QUOTE_CHARS = 500
ITEM_KEYS = ("value", "source_url", "quote")
GROUNDED = "llm:grounded"  # the quote is on a page we read ourselves
GROUNDED_CITED = "llm:grounded:cited"  # the quote is on a page the model cited (fetched by us)
UNVERIFIED = "llm:unverified"

log = logging.getLogger("hokan.core.extract.llm")


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


def page_haystack(page: Page) -> str:
    """The text a quote is looked for in: the page source and its visible text (one space
    between blocks, so "資本金 5,000万円" matches a ``<th>資本金</th><td>5,000万円</td>`` row),
    both folded with ``ja.fold``, whitespace runs as one space."""
    if not page.text:
        return ""
    from hokan.core.extract.html import flat, visible_text

    return flat_text(ja.fold(page.text)) + "\n" + flat_text(ja.fold(flat(visible_text(page.text))))


def grounding_page(quote: str, value_text: str, pages: Sequence[Page], *, folded: Sequence[str] | None = None) -> Page | None:
    """The first of ``pages`` whose text contains the quote (or else the raw value), compared
    after ``ja.fold`` (and with whitespace runs as one space); None when neither (of at least
    MIN_GROUNDING_CHARS characters) is found.

    folded: ``[page_haystack(page) for page in pages]`` when the caller has it already.
    """
    texts = list(folded) if folded is not None else [page_haystack(page) for page in pages]
    for needle in (quote, value_text):
        needle = flat_text(ja.fold(needle or ""))
        if len(needle) < MIN_GROUNDING_CHARS:
            continue
        for page, text in zip(pages, texts):
            if needle in text:
                return page
    return None


def flat_text(text: str) -> str:
    """Every whitespace run as one space, stripped."""
    return " ".join(text.split())


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
            folded = [page_haystack(page) for page in pages]
        proof = grounding_page(quote, raw, pages, folded=folded)
        if proof is not None:
            source_url, confidence, extractor = proof.final_url, GROUNDED_CONFIDENCE, GROUNDED
        else:
            confidence, extractor = (CITED_CONFIDENCE if source_url else UNCITED_CONFIDENCE), UNVERIFIED
        for column, value in cleaned.items():
            accepted.append(
                FieldValue(field=column, value=value, raw=raw, quote=quote, source_url=source_url or None,
                           method="ai", confidence=confidence, extractor=extractor)
            )
    return accepted, rejected


def is_grounded(value: FieldValue) -> bool:
    """Whether an AI value's quote was found on a page (ours or one the model cited)."""
    return value.extractor in (GROUNDED, GROUNDED_CITED)


@dataclass
class CitedPages:
    """What ``ground_in_cited_pages`` fetched: pages read, "URL: reason" per failed fetch, and
    how many values it grounded."""

    pages: list[Page] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    grounded: int = 0


def _same_page(url: str) -> str:
    return urldefrag(url)[0]


def ground_in_cited_pages(
    values: Sequence[FieldValue],
    fetch: Callable[[str], Page],
    *,
    max_pages: int,
    citations: Sequence[str] = (),
    known_urls: Sequence[str] = (),
) -> tuple[list[FieldValue], CitedPages]:
    """Check the unverified values' quotes on the pages the model cited: (values, CitedPages).

    values: from ``values_from_answer``; only ``llm:unverified`` ones with a ``source_url``
        are looked at (the others are returned unchanged, in order).
    fetch: ``Fetcher.fetch`` (raises ``FetchError``); no LLM is involved.
    max_pages: at most this many distinct URLs are requested (failures count), first the
        values' own sources in order, then the provider's ``citations``; 0 fetches nothing.
    known_urls: pages already checked (ours): not fetched again.

    A value whose quote (or raw value) is on a fetched page gets that page as ``source_url``,
    confidence ``GROUNDED_CONFIDENCE`` and extractor ``llm:grounded:cited``. Values split from
    one answer item (an address into prefecture, city, …) share their evidence and are
    grounded together. Never raises for a page that cannot be fetched.
    """
    result = CitedPages()
    pending = [v for v in values if v.extractor == UNVERIFIED and v.source_url]
    if not pending or max_pages <= 0:
        return list(values), result
    known = {_same_page(url) for url in known_urls}
    wanted: list[str] = []
    for url in [v.source_url for v in pending] + list(citations):
        if not url or urlsplit(url).scheme not in ("http", "https"):
            continue
        page_url = _same_page(url)
        if page_url not in known and page_url not in wanted:
            wanted.append(page_url)
    for url in wanted[:max_pages]:
        try:
            result.pages.append(fetch(url))
        except FetchError as exc:
            result.errors.append(f"{url}: {exc}")
            log.info("cited page not fetched %s: %s", url, exc)
    if not result.pages:
        return list(values), result
    folded = [page_haystack(page) for page in result.pages]
    proofs: dict[tuple[str, str, str | None], Page | None] = {}
    out: list[FieldValue] = []
    for value in values:
        if value.extractor != UNVERIFIED or not value.source_url:
            out.append(value)
            continue
        evidence = (value.raw, value.quote, value.source_url)
        if evidence not in proofs:
            proofs[evidence] = grounding_page(value.quote, value.raw, result.pages, folded=folded)
        proof = proofs[evidence]
        if proof is None:
            out.append(value)
            continue
        result.grounded += 1
        out.append(dataclasses.replace(value, source_url=proof.final_url, confidence=GROUNDED_CONFIDENCE,
                                       extractor=GROUNDED_CITED))
    return out, result
