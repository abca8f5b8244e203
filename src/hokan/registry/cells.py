"""The cells of a registry file, validated with the registry's FieldSpecs (``hokan.core.fields``).

``SPECS`` describes each ``CompanyRecord`` column once (kind, unit, length); the readers
(``edinet_reader``, ``gbizinfo_reader``) take a spec for a source column — with its unit of a
bare number where the source states one (EDINET 資本金: 百万円; the camelCase job-portal layout's
``capital``: 万円) — and call ``parse_cell``, which raises ``CellError`` naming the header for a
present but invalid value. A vague cell (非公開, "-") and, where the source uses 0 for "not
reported" (gBizINFO), a zero amount or count are no value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hokan.core import ja
from hokan.core.errors import HokanError, InvalidValue
from hokan.core.fields import FieldSpec, clean, clean_or_none, parse_prefecture

INT32_MAX = 2_147_483_647

SPECS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("corporate_number", "法人番号", "corporate_number"),
        FieldSpec("name", "企業名", "company_name", max_length=255),
        FieldSpec("address", "所在地（原文）", "address", max_length=500),
        FieldSpec("prefecture", "都道府県", "prefecture"),
        FieldSpec("city", "市区町村", max_length=100),
        FieldSpec("location", "所在地", max_length=255),
        FieldSpec("postal_code", "郵便番号", "postal_code"),
        # gBizINFO publishes 0 for a capital or head count it does not know.
        FieldSpec("capital", "資本金", "amount_jpy", unit="JPY", zero_is_missing=True),
        FieldSpec("employee_count", "従業員数", "count", unit="人", zero_is_missing=True, max_value=INT32_MAX),
        FieldSpec("established_year", "設立年", "year", unit="年"),
        FieldSpec("industry", "業種", max_length=100),
        FieldSpec("website_url", "公式サイト", "url", max_length=500),
        FieldSpec("representative_name", "代表者名", max_length=100),
        FieldSpec("representative_title", "代表者役職", max_length=100),
        FieldSpec("phone", "電話番号", "phone"),
        FieldSpec("listed", "上場", "boolean", choices=(("上場", True), ("非上場", False))),
    )
}

EDINET_CODE = re.compile(r"^E\d{5}$")
SECURITIES_CODE = re.compile(r"^[0-9A-Z]{4,5}$")

Values = dict[str, Any]
Evidence = dict[str, tuple[str, str]]  # column -> (raw cell text, quote)


class CellError(HokanError):
    """A cell does not validate: header (the file's column name, for the report) and reason
    (Japanese)."""

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(reason)
        self.header = header
        self.reason = reason


def spec_in(name: str, input_unit: str) -> FieldSpec:
    """``SPECS[name]`` for a source column whose bare numbers are in ``input_unit`` (万円, 百万円)."""
    return replace(SPECS[name], input_unit=input_unit)


def parse_cell(spec: FieldSpec, text: str, header: str) -> Any:
    """``clean(spec, text)``: the value, or None when blank or vague.

    Raises:
        CellError: the value is invalid (header = ``header``).
    """
    try:
        return clean(spec, text)
    except InvalidValue as exc:
        raise CellError(header, exc.reason) from None


def optional_cell(spec: FieldSpec, text: str) -> Any:
    """An attribute that never rejects its row (上場区分): the value, or None when invalid."""
    return clean_or_none(spec, text)


def header_key(text: str) -> str:
    """A header compared the way files spell it: folded, lower-case, no spaces or underscores."""
    return ja.fold(text or "").lower().replace(" ", "").replace("_", "")


def cell(cells: Sequence[str], index: int | None) -> str:
    """The stripped text of ``cells[index]``; "" when the row is shorter or index is None."""
    if index is None or index >= len(cells):
        return ""
    return (cells[index] or "").strip()


def raw_row(headers: Sequence[str], cells: Sequence[str]) -> dict[str, str]:
    """{header: cell} as published (kept in ``CompanyRecord.raw``)."""
    return {headers[i]: (cells[i] if i < len(cells) else "") for i in range(len(headers))}


def securities_code(text: str) -> str:
    """A 証券コード (4–5 characters, digits and capitals), or "" when blank or malformed."""
    code = ja.fold(text).upper()
    return code if SECURITIES_CODE.match(code) else ""


def put_address(text: str, header: str, values: Values, evidence: Evidence) -> None:
    """Fill the address columns from one address text (the quote is ``header text``): address
    (the text), and prefecture / city / location / postal code where ``ja.split_address``
    finds them (a prefecture inferred from a designated city, a prefectural capital or a Tokyo
    ward counts).

    Raises:
        CellError: the text is too long or not an address.
    """
    address = parse_cell(SPECS["address"], text, header)
    if not address:
        return
    quote = f"{header} {text}"
    values["address"] = address
    evidence["address"] = (text, quote)
    split = ja.split_address(address)
    if split is None:
        return
    values["prefecture"] = split.prefecture or ""
    values["city"] = parse_cell(SPECS["city"], split.city or "", header) or ""
    values["location"] = (parse_cell(SPECS["location"], split.rest, header) or "") if split.city else ""
    if split.postal_code:
        values["postal_code"] = split.postal_code
    for name in ("prefecture", "city", "location", "postal_code"):
        if values.get(name):
            evidence[name] = (text, quote)


def put_address_parts(get: dict[str, str], values: Values, evidence: Evidence) -> None:
    """The camelCase layout: prefecture, city, town, block, building in separate columns.

    Raises:
        CellError: a part is too long.
    """
    prefecture = ja.fold(get.get("prefecture", ""))
    known = parse_prefecture(prefecture)  # 「栃木県」, or 「栃木」 without its 県
    city = ja.fold(get.get("city", ""))
    rest = "".join(ja.fold(get.get(p, "")) for p in ("town", "block"))
    building = ja.fold(get.get("building", ""))
    location = f"{rest} {building}".strip() if building else rest
    text = f"{prefecture}{city}{location}"
    quote = f"所在地 {get.get('prefecture', '')}{get.get('city', '')}{get.get('town', '')}{get.get('block', '')}"
    if get.get("building"):
        quote += f" {get['building']}"
    values["address"] = parse_cell(SPECS["address"], text, "所在地")
    evidence["address"] = (text, quote)
    if known:
        values["prefecture"] = known
        evidence["prefecture"] = (get["prefecture"], quote)
        if city:
            values["city"] = parse_cell(SPECS["city"], city, "city")
            evidence["city"] = (get["city"], quote)
            if location:
                values["location"] = parse_cell(SPECS["location"], location, "town")
                evidence["location"] = (location, quote)
