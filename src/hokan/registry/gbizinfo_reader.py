"""gBizINFO-style CSVs and gBizINFO API answers (HojinInfo) as registry rows.

One column table (``COLUMNS``) maps every spelling to our column: gBizINFO's English names
(corporate_number, name, location, employee_number, company_url, capital_stock,
date_of_establishment, representative_name …), their Japanese labels (法人番号, 名称, 所在地,
従業員数, URL, 資本金 …), and the camelCase layout of ``tochigi_companies_sample10.csv``
(prefecture, city, town, block, building, presidentPosition, presidentName, capital, employees,
establishmentDate, webUrl).

Units: ``capital_stock`` / 資本金 are JPY (gBizINFO publishes 資本金 in 円). In the camelCase layout
``capital`` is in 万円: its values (1000, 900, 3000, 4500, 5000) only make sense in 万円 — e.g.
株式会社インターセック, a 株式会社 established 1992-06-01, has "1000": read as 千円 it would be
1,000,000 JPY, below the 10,000,000 JPY minimum capital of a 株式会社 under the 商法 of 1990
(平成2年改正, in force from 1991-04-01), while 1000万円 is exactly that minimum. gBizINFO
writes 0 for a capital or head count it does not know: no value.

``company_row`` is the one adapter from a HojinInfo (API v2 JSON object) to our names: it feeds
the answer through the same column table. ``store`` upserts answers into ``CompanyRecord``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hokan.core import ja
from hokan.core.errors import InputError
from hokan.registry.cells import (
    SPECS,
    CellError,
    Evidence,
    cell,
    header_key,
    optional_cell,
    parse_cell,
    put_address,
    put_address_parts,
    raw_row,
    securities_code,
    spec_in,
)
from hokan.registry.models import CompanyRecord
from hokan.registry.records import ParsedRow, upsert

# our name -> header spellings (compared by ``header_key``)
COLUMNS: dict[str, tuple[str, ...]] = {
    "corporate_number": ("corporate_number", "法人番号"),
    "name": ("name", "名称", "法人名", "商号", "企業名", "会社名"),
    "address": ("location", "所在地", "本社所在地", "住所"),
    "postal_code": ("postal_code", "郵便番号"),
    "employee_count": ("employee_number", "従業員数", "employees"),
    "website_url": ("company_url", "URL", "企業ホームページ", "ホームページ", "webUrl"),
    "capital_jpy": ("capital_stock", "資本金"),
    "capital": ("capital",),
    "established": ("date_of_establishment", "設立年月日", "establishmentDate", "設立日"),
    "representative_name": ("representative_name", "代表者名", "法人代表者名", "presidentName"),
    "representative_title": ("representative_position", "代表者役職", "presidentPosition"),
    "industry": ("industry", "業種"),
    "phone": ("phone", "電話番号", "tel"),
    "prefecture": ("prefecture", "都道府県"),
    "city": ("city", "市区町村"),
    "town": ("town",),
    "block": ("block",),
    "building": ("building",),
    "listed": ("listed", "上場区分"),
    "securities_code": ("stockCode", "証券コード"),
}
# The camelCase job-portal layout (tochigi sample): its bare ``capital`` column is in 万円.
CAMEL_LAYOUT = ("presidentname", "establishmentdate", "weburl")
# Source columns that are one of our columns as they are: (our column, source column, spec).
_PLAIN: tuple[tuple[str, str], ...] = (
    ("postal_code", "postal_code"), ("employee_count", "employee_count"), ("established_year", "established"),
    ("website_url", "website_url"), ("phone", "phone"), ("industry", "industry"),
    ("representative_name", "representative_name"), ("representative_title", "representative_title"),
)  # fmt: skip
API_SOURCE = CompanyRecord.Source.GBIZINFO_API


def column_index(headers: Sequence[str]) -> dict[str, int]:
    """{our name: position} for the headers this table knows (first spelling found wins)."""
    keys = [header_key(h) for h in headers]
    index: dict[str, int] = {}
    for name, spellings in COLUMNS.items():
        for spelling in spellings:
            key = header_key(spelling)
            if key in keys:
                index[name] = keys.index(key)
                break
    return index


def capital_unit(headers: Sequence[str]) -> str:
    """The unit of the bare ``capital`` column: "万円" in the camelCase layout, else ""."""
    keys = {header_key(h) for h in headers}
    return "万円" if any(k in keys for k in CAMEL_LAYOUT) else ""


def parse_row(row: int, headers: Sequence[str], cells: Sequence[str], index: dict[str, int], *,
              capital_unit: str = "") -> ParsedRow:
    """A gBizINFO-style row as a ParsedRow (source "gbizinfo_csv").

    capital_unit: the unit of a bare number in the ``capital`` column (``capital_unit(headers)``).

    Raises:
        CellError: a cell does not validate, or the name is empty.
    """
    get = {name: cell(cells, i) for name, i in index.items()}
    head = {name: headers[i] for name, i in index.items()}
    name = parse_cell(SPECS["name"], get.get("name", ""), head.get("name", "name"))
    if not name:
        raise CellError(head.get("name", "name"), "企業名が空です")
    values: dict[str, Any] = {"name": name}
    evidence: Evidence = {"name": (get["name"], f"{head['name']} {get['name']}")}

    def put(column: str, value: Any, key: str, quote: str | None = None) -> None:
        if value is None or value == "":
            return
        values[column] = value
        evidence[column] = (get[key], quote or f"{head[key]} {get[key]}")

    if get.get("corporate_number"):
        put("corporate_number", parse_cell(SPECS["corporate_number"], get["corporate_number"], head["corporate_number"]),
            "corporate_number")
    if get.get("address"):
        put_address(get["address"], head["address"], values, evidence)
    elif get.get("prefecture") or get.get("city"):
        put_address_parts(get, values, evidence)
    if get.get("capital_jpy"):
        put("capital", parse_cell(SPECS["capital"], get["capital_jpy"], head["capital_jpy"]), "capital_jpy")
    elif get.get("capital"):
        label = f"（{capital_unit}）" if capital_unit else ""
        put("capital", parse_cell(spec_in("capital", capital_unit), get["capital"], head["capital"]), "capital",
            f"{head['capital']} {get['capital']}{label}")
    for column, key in _PLAIN:
        if get.get(key):
            put(column, parse_cell(SPECS[column], get[key], head[key]), key)
    listed = optional_cell(SPECS["listed"], get.get("listed", ""))
    if listed is not None:
        values["listed"] = listed
    securities = securities_code(get.get("securities_code", ""))
    if securities:
        values["securities_code"] = securities
    return ParsedRow(row, CompanyRecord.Source.GBIZINFO_CSV, values, evidence, raw_row(headers, cells), (row,))


def company_row(info: dict[str, Any], *, row: int = 1) -> ParsedRow:
    """A gBizINFO HojinInfo (API v2 JSON object) as a ParsedRow with source "gbizinfo_api".

    English names map to ours through ``COLUMNS`` (corporate_number, name, location →
    address/prefecture/city/location, postal_code, capital_stock → capital (JPY),
    employee_number → employee_count, date_of_establishment → established_year, company_url →
    website_url, representative_name, industry (list joined with 「、」)). founding_year (創業年)
    is not the 設立年 and is not used; business_summary and other fields stay in ``raw`` only.

    Raises:
        InputError: a value does not validate (field = the gBizINFO name).
    """
    flat: dict[str, str] = {}
    for key, value in info.items():
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, list):
            if key != "industry" or not all(isinstance(v, str) for v in value):
                continue
            value = "、".join(value)
        text = str(value)
        if key == "date_of_establishment" and "T" in text:
            text = text.split("T", 1)[0]  # "1937-08-28T00:00:00+09:00"
        flat[key] = text
    headers = list(flat)
    try:
        parsed = parse_row(row, headers, list(flat.values()), column_index(headers))
    except CellError as exc:
        raise InputError(exc.reason, source="gBizINFO API", row=row, field=exc.header) from None
    parsed.source = API_SOURCE
    return parsed


def store(infos: list[dict[str, Any]], *, source_url: str) -> list[CompanyRecord]:
    """Upsert HojinInfo dicts into CompanyRecord (source "gbizinfo_api"); returns the records.

    Raises:
        InputError: an info does not validate (nothing of it is written; earlier ones are kept).
    """
    records = []
    for number, info in enumerate(infos, start=1):
        record, _ = upsert(company_row(info, row=number), source_file=source_url)
        records.append(record)
    return records
