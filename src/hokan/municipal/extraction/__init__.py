"""Extraction of a municipal service page (issue 10 §2 steps 5 and 6; design document 003 §7.2, §8, §13).

    from hokan.municipal.extraction import extract_page, municipal_llm

    values = extract_page(text, url="https://www.city.example.lg.jp/kurashi/1.html", html=html,
                          variables=["department", "phone", "kokuho_fee"], llm=municipal_llm())
    values["phone"].value        # "086-724-9512"
    values["phone"].quote        # the printed line it was read from

1. **Rules** ($0, :mod:`.rules`): department, phone, e-mail, postal code, address, location,
   office hours, fee, required documents, online application — read from the service's own
   contact block, never from the government-wide footer, never a FAX number.
2. **The LLM** (:mod:`.llm`, §7.2) for the variables still missing: one call per page asking
   only for those, through ``core.llm`` (profile "municipal", ledger scope "municipal", an
   idempotency key per page, the LLM cache); each value comes with a verbatim quote, and a
   value whose quote is not in the page, or that is not in its own quote, is rejected.
3. **Checks** (:mod:`.checks`): validation by ``core.fields.clean`` on NFKC text, vagueness
   (§13), confidence (§8.2).

A variable the page does not state is simply absent from the result: no guessed value is ever
returned. :func:`extract_page_detailed` also returns the variables left missing, the rejected
answers and the LLM calls made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from hokan.municipal.catalogue import VariableSpec, load_catalogue
from hokan.municipal.extraction import checks
from hokan.municipal.extraction.rules import RULE_FIELDS, Candidate, extract_rules
from hokan.municipal.extraction.text import haystack, in_page, page_lines, squeeze

# The variables of design document 003 §3 (plus postal_code, printed apart from the address).
DEFAULT_VARIABLES: tuple[str, ...] = (
    "department", "phone", "email", "address", "postal_code", "office_hours", "fee", "premium_rate",
    "subsidy_amount", "required_documents", "application_method", "online_available", "processing_time",
    "location", "access", "parking",
)  # fmt: skip

Method = Literal["rule", "ai", "manual"]


@dataclass(frozen=True)
class ExtractedValue:
    """One value of a variable and its evidence (the per-variable record of a draft, §6.1).

    variable: the variable's name (``phone``, ``kokuho_phone``).
    value: what the template shows — phone "086-724-9512", postal_code "700-8546", email lower
        case, fee the amount as printed (NFKC: "3,000円", "無料"), online_available a bool, other
        variables the text as printed on the page (full-width brackets, ～ kept).
    normalized: ``core.fields.clean``'s value (fee int JPY, time_range "08:30-17:15", percent
        Decimal, …). raw: the substring as printed on the page. quote: the printed passage it
        was read from (a substring of the page text, ≤ 300 chars).
    source_url: the page. method: "rule" | "ai" (| "manual" for an editor's value, set by the
        draft). confidence: 0.0–1.0 (§8.2, :mod:`.checks`). extracted_at: aware UTC datetime.
    validated: the value passed ``core.fields.clean`` for its validation_type.
    extractor: the rule or "llm" that produced it.
    """

    variable: str
    value: Any
    raw: str
    quote: str
    source_url: str | None
    method: Method
    confidence: float
    extracted_at: dt.datetime
    validated: bool
    normalized: Any = None
    extractor: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready {value, raw, quote, source_url, method, confidence, extracted_at, validated,
        normalized, extractor} (Decimal as str, datetime ISO 8601)."""
        data = dataclasses.asdict(self)
        data.pop("variable")
        data["extracted_at"] = self.extracted_at.isoformat()
        for key in ("value", "normalized"):
            if isinstance(data[key], Decimal):
                data[key] = str(data[key])
        return data


@dataclass
class PageExtraction:
    """What one page gave: ``values`` by variable, ``missing`` variable names, ``errors``
    (Japanese: rejected answers, a failed LLM call), ``llm_calls`` made (0 or 1, 2 with the
    re-ask; a cache hit counts 0) and their ``llm_cost_usd`` (Decimal, as the ledger committed)."""

    values: dict[str, ExtractedValue] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    llm_calls: int = 0
    llm_cost_usd: Decimal = Decimal("0")


def resolve_variables(variables: Iterable[str | VariableSpec] | None) -> list[VariableSpec]:
    """The specs of ``variables`` (names of catalogue variables or generic fields, or specs);
    default :data:`DEFAULT_VARIABLES`. Raises KeyError (Japanese) for an unknown name."""
    catalogue = load_catalogue()
    names = DEFAULT_VARIABLES if variables is None else variables
    return [name if isinstance(name, VariableSpec) else catalogue.variable(name) for name in names]


def _display(spec: VariableSpec, candidate: Candidate, cleaned: Any) -> Any:
    if spec.validation_type in ("phone", "postal_code", "email", "url", "boolean"):
        return cleaned
    if spec.validation_type in ("fee", "percent", "count", "date"):
        return candidate.text  # the amount as printed, folded: "3,000円", "無料"
    # Text as printed (full-width brackets and ～ kept) when the printed form is known.
    return candidate.raw if squeeze(candidate.raw) == squeeze(candidate.text) else candidate.text


def extract_page(
    text: str | None,
    *,
    url: str | None,
    variables: Iterable[str | VariableSpec] | None = None,
    html: str | None = None,
    llm: Any = None,
    last_modified: dt.datetime | dt.date | str | None = None,
    official_domains: Sequence[str] = (),
    work_key: str = "",
) -> dict[str, ExtractedValue]:
    """Extract the variables one page states: ``{variable: ExtractedValue}`` (missing ones absent).

    text: the page's text (PDF/OCR text, or None when ``html`` is given); html: the page's HTML
    (used instead of ``text`` when given). url: the page's URL (source_url; official-domain
    bonus). variables: names or specs (default :data:`DEFAULT_VARIABLES`). llm: None for rules
    only, or a client from :func:`municipal_llm` (any object with ``complete_json``).
    last_modified: the Last-Modified header or a date. official_domains: the municipality's own
    domains (``Municipality.official_url``). work_key: part of the LLM call's idempotency key
    (e.g. the job and service), so that two runs over one page are two pieces of paid work.

    Raises KeyError for an unknown variable name; never raises for a provider failure (see
    :func:`extract_page_detailed`, whose ``errors`` say what went wrong).
    """
    return extract_page_detailed(
        text, url=url, variables=variables, html=html, llm=llm, last_modified=last_modified,
        official_domains=official_domains, work_key=work_key,
    ).values  # fmt: skip


def extract_page_detailed(
    text: str | None,
    *,
    url: str | None,
    variables: Iterable[str | VariableSpec] | None = None,
    html: str | None = None,
    llm: Any = None,
    last_modified: dt.datetime | dt.date | str | None = None,
    official_domains: Sequence[str] = (),
    work_key: str = "",
    now: dt.datetime | None = None,
) -> PageExtraction:
    """:func:`extract_page` with the missing variables, errors and LLM usage (``PageExtraction``)."""
    specs = resolve_variables(variables)
    lines = page_lines(html=html, text=text)
    page = haystack(lines)
    now = now or dt.datetime.now(dt.timezone.utc)
    official = checks.is_official(url, official_domains)
    recent = checks.is_recent(checks.page_date("\n".join(lines[:400]), last_modified), today=now.date())
    result = PageExtraction()

    found = extract_rules(lines)
    for spec in specs:
        candidate = found.get(spec.field) if spec.field in RULE_FIELDS else None
        if candidate is None:
            continue
        value = _accept(spec, candidate, page=page, url=url, method="rule", official=official, recent=recent,
                        now=now, errors=result.errors)
        if value is not None:
            result.values[spec.name] = value

    missing = [spec for spec in specs if spec.name not in result.values]
    if llm is not None and missing and getattr(llm, "available", True):
        from hokan.municipal.extraction.llm import ask

        answer = ask(llm, lines=lines, url=url, variables=missing, work_key=work_key)
        result.errors.extend(answer.errors)
        result.llm_calls += answer.calls
        result.llm_cost_usd += answer.cost_usd
        for spec in missing:
            candidate = answer.candidates.get(spec.name)
            if candidate is None:
                continue
            value = _accept(spec, candidate, page=page, url=url, method="ai", official=official, recent=recent,
                            now=now, errors=result.errors)
            if value is not None:
                result.values[spec.name] = value
    result.missing = [spec.name for spec in specs if spec.name not in result.values]
    return result


def _accept(
    spec: VariableSpec,
    candidate: Candidate,
    *,
    page: str,
    url: str | None,
    method: Method,
    official: bool,
    recent: bool,
    now: dt.datetime,
    errors: list[str],
) -> ExtractedValue | None:
    """Check one candidate (quote in page, vagueness, validation) and score it; None = rejected."""
    if not in_page(candidate.quote, page):
        errors.append(f"{spec.label}: 根拠の引用がページにないため採用しません（{candidate.quote[:60]}）")
        return None
    if checks.is_vague(spec.field, candidate.text, directions=spec.field_spec.directions):
        return None
    cleaned, valid = checks.validate(spec.field_spec, candidate.text)
    if not valid:
        errors.append(f"{spec.label}: 形式が正しくないため採用しません（{candidate.text[:60]}）")
        return None
    if method == "ai":
        base = checks.BASE_AI
    else:
        base = checks.BASE_BLOCK if candidate.in_block else checks.BASE_PAGE
    score = checks.confidence(base=base, official=official, recent=recent,
                              valid_format=spec.field_spec.kind in checks.TYPED_KINDS)
    return ExtractedValue(
        variable=spec.name,
        value=_display(spec, candidate, cleaned),
        raw=candidate.raw,
        quote=candidate.quote[:300],
        source_url=url,
        method=method,
        confidence=score,
        extracted_at=now,
        validated=valid,
        normalized=cleaned,
        extractor=candidate.extractor,
    )


def agree(per_page: Sequence[dict[str, ExtractedValue]]) -> dict[str, ExtractedValue]:
    """Merge the values of several pages of one service: per variable the most confident value,
    with §8.2's +0.1 when another page (another source URL) gives the same normalised value."""
    merged: dict[str, ExtractedValue] = {}
    for values in per_page:
        for name, value in values.items():
            best = merged.get(name)
            if best is None or value.confidence > best.confidence:
                merged[name] = value
    for name, best in list(merged.items()):
        sources = {
            v.source_url for values in per_page for v in [values.get(name)]
            if v is not None and v.normalized == best.normalized and v.source_url
        }  # fmt: skip
        if len(sources) >= 2:
            merged[name] = dataclasses.replace(best, confidence=round(min(best.confidence + checks.BONUS_AGREE, 1.0), 2))
    return merged


def municipal_llm(*, max_retries: int | None = None, below_cache: Any = None) -> Any:
    """The municipal profile's LLM client behind the ledger and the cache, or None offline.

    Order (ARCHITECTURE.md): cache → budget (ledger scope "municipal", cost per call
    HOKAN_MUNICIPAL_COST_PER_CALL_USD) → shared rate limiter → provider. None when no provider
    is configured (``get_client(profile="municipal").available`` is False). below_cache: a
    wrapper put under the cache (``build_client``; the free-tier claim of ``quotas.limit_llm``).

    Raises:
        LLMConfigError: a provider is named but misconfigured (unknown name, missing key).
    """
    from hokan.municipal.extraction.llm import build_client

    return build_client(max_retries=max_retries, below_cache=below_cache)


__all__ = [
    "DEFAULT_VARIABLES",
    "ExtractedValue",
    "PageExtraction",
    "agree",
    "extract_page",
    "extract_page_detailed",
    "municipal_llm",
    "resolve_variables",
]
