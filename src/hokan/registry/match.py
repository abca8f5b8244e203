"""Finding a lead in the registry and turning the record into field values.

``match_lead`` matches by 法人番号 first, else by normalised company name (株式会社/(株)/spaces/
full-width folded: ``hokan.core.ja.company_name_key``) and prefecture when known. A name shared by
several records (after the prefecture filter) is ambiguous: no record is returned, so nothing is
filled from a guess. ``registry_values`` gives the record's values as ``FieldValue``s with
method "registry", the registry page as source and the registry row's text as quote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from hokan.core import ja
from hokan.core.fields import FieldValue, clean_field_value, parse_prefecture
from hokan.registry.cells import SPECS
from hokan.registry.models import CompanyRecord

Status = Literal["corporate_number", "name", "ambiguous", "not_found"]

# The Lead columns the registry fills (issue 3 §1), in this order.
REGISTRY_FIELDS: tuple[str, ...] = (
    "corporate_number", "prefecture", "city", "location", "capital", "employee_count", "industry", "website_url",
)  # fmt: skip
# Further columns a record may hold; ask for them explicitly with ``fields=``.
OPTIONAL_FIELDS: tuple[str, ...] = (
    "postal_code", "established_year", "representative_name", "representative_title", "phone",
)

# Confidence of a value by how the record was found: a 法人番号 identifies the company; a unique
# normalised name (and prefecture) very probably does, but the registry may lack a namesake.
CONFIDENCE = {"corporate_number": 0.95, "name": 0.85}

STATUS_LABELS = {
    "corporate_number": "法人番号で一致",
    "name": "社名で一致",
    "ambiguous": "社名が複数の企業に一致（補完しません）",
    "not_found": "該当なし",
}


@dataclass(frozen=True)
class MatchResult:
    """How a lead matched the registry.

    record: the matched record, or None (not found or ambiguous).
    status: "corporate_number" | "name" | "ambiguous" | "not_found".
    candidates: for "ambiguous", the records the name matched (at most ``MAX_CANDIDATES``).
    """

    record: CompanyRecord | None
    status: Status
    candidates: list[CompanyRecord] = field(default_factory=list)

    @property
    def message(self) -> str:
        """A Japanese one-line summary, e.g. 「社名が複数の企業に一致（補完しません）: 2件」."""
        label = STATUS_LABELS[self.status]
        if self.status == "ambiguous":
            return f"{label}: {len(self.candidates)}件"
        if self.record is not None:
            return f"{label}: {self.record.name}（{self.record.corporate_number or '法人番号なし'}）"
        return label

    def values(self, fields: Iterable[str] = REGISTRY_FIELDS) -> list[FieldValue]:
        """``registry_values`` of the matched record with this match's confidence; [] without one."""
        if self.record is None:
            return []
        return registry_values(self.record, fields=fields, matched_by=self.status)


MAX_CANDIDATES = 20


def match_lead(*, corporate_number: str = "", name: str = "", prefecture: str = "") -> MatchResult:
    """Find the registry record of a lead.

    corporate_number: the lead's 法人番号 (any spelling; ignored unless valid). name: the company
    name as written ((株), full-width, spaces allowed). prefecture: 都道府県 when known ("" = unknown).

    1. A valid 法人番号 found in the registry → status "corporate_number".
    2. Else records whose ``name_key`` equals the name's; kept when their prefecture equals the
       lead's or is unknown (a known different prefecture is another company); dropped when both
       names carry a legal form and the forms differ (株式会社 vs 有限会社); when the lead has a
       valid 法人番号, records with another 法人番号 are dropped.
       One left → "name"; several → "ambiguous" (record None); none → "not_found".
    """
    number = ja.parse_corporate_number(corporate_number) if corporate_number else None
    if number:
        record = CompanyRecord.objects.filter(corporate_number=number).first()
        if record is not None:
            return MatchResult(record, "corporate_number")
    key = ja.company_name_key(name or "")
    if not key:
        return MatchResult(None, "not_found")
    candidates = list(CompanyRecord.objects.filter(name_key=key).order_by("id")[: MAX_CANDIDATES * 5])
    pref = _prefecture(prefecture)
    form = ja.company_type(name)
    kept = []
    for record in candidates:
        if pref and record.prefecture and record.prefecture != pref:
            continue
        if number and record.corporate_number and record.corporate_number != number:
            continue
        other_form = ja.company_type(record.name)
        if form and other_form and form != other_form:
            continue
        kept.append(record)
    if len(kept) == 1:
        return MatchResult(kept[0], "name")
    if len(kept) > 1:
        return MatchResult(None, "ambiguous", kept[:MAX_CANDIDATES])
    return MatchResult(None, "not_found")


def _prefecture(text: str) -> str:
    return parse_prefecture(text or "") or ""


def registry_values(
    record: CompanyRecord, *, fields: Iterable[str] = REGISTRY_FIELDS, matched_by: str = "corporate_number"
) -> list[FieldValue]:
    """The record's values for ``fields`` (Lead column names) as FieldValues, in ``fields`` order.

    Only columns with a value and evidence are returned (blank ones are skipped), and each value
    is validated again with the registry's FieldSpec (``cells.SPECS``: a record written before a
    rule was tightened never passes on a value that would be refused today). value: as the
    Lead column stores it (int JPY for capital, int for employee_count, str otherwise); raw: the
    registry cell; quote: the registry row's text (「資本金 1491（百万円）」); source_url: the
    registry page (``CompanyRecord.source_url``); method "registry"; extractor "registry:<source>";
    confidence ``CONFIDENCE[matched_by]`` (0.95 法人番号, 0.85 unique name); observed_at: when the
    record was last written (the import or lookup that read the registry).

    Raises:
        KeyError: a field the registry does not hold (not in REGISTRY_FIELDS + OPTIONAL_FIELDS),
            or ``matched_by`` is not "corporate_number" / "name".
    """
    confidence = CONFIDENCE[matched_by]
    out: list[FieldValue] = []
    for name in fields:
        if name not in REGISTRY_FIELDS and name not in OPTIONAL_FIELDS:
            raise KeyError(f"the registry holds no column {name!r}")
        value = getattr(record, name)
        evidence = (record.evidence or {}).get(name)
        if value in (None, "") or not evidence:
            continue
        source = evidence.get("source", record.source)
        found = FieldValue(
            field=name,
            value=value,
            raw=str(evidence.get("raw", value)),
            quote=str(evidence.get("quote", "")),
            source_url=record.source_url(source),
            method="registry",
            confidence=confidence,
            extractor=f"registry:{source}",
            **({"observed_at": record.updated_at} if record.updated_at else {}),
        )
        spec = SPECS.get(name)
        checked = clean_field_value(spec, found) if spec is not None else found
        if checked is not None:
            out.append(checked)
    return out
