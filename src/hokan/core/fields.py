"""FieldValue: one value of one field, with the evidence it was read from.

Every app that fills fields (leads, municipal, knowledge) passes values around as
FieldValue, so provenance is never dropped between extraction and storage.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Method = Literal["registry", "rule", "ai", "manual"]
METHODS: tuple[str, ...] = ("registry", "rule", "ai", "manual")


@dataclass(frozen=True)
class FieldValue:
    """One extracted value and its evidence.

    field: the target column name (e.g. ``capital``).
    value: the normalised value — int JPY for amounts, int for years and counts,
        national-format string for phones, plain ``str`` otherwise.
    raw: the text the value was parsed from (label-free), as it stood on the page.
    quote: the verbatim passage (label and value) it was read from, at most ~200 chars.
    source_url: where the evidence came from (page URL, registry name/URL), or None.
    method: "registry" | "rule" | "ai" | "manual".
    confidence: 0.0–1.0.
    extractor: a short name of the extractor that produced it (e.g. "table", "jsonld").
    observed_at: when the evidence was read (aware datetime, UTC).
    """

    field: str
    value: Any
    raw: str
    quote: str
    source_url: str | None
    method: Method
    confidence: float
    extractor: str = ""
    observed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict: {value, raw, quote, source_url, method, confidence, extractor, observed_at}."""
        data = asdict(self)
        data.pop("field")
        data["observed_at"] = self.observed_at.isoformat()
        return data
