"""The FSA's EDINET code list (金融庁 EDINET「EDINETコードリスト」, EdinetcodeDlInfo.csv).

As downloaded: CP932 (a UTF-8 copy is accepted too), a title line ``ダウンロード実行日,…,件数,…``
before the header, full-width header names (ＥＤＩＮＥＴコード). Units: 資本金 is in 百万円 (the
FSA's column; e.g. カネコ種苗 "1491" = 1,491,000,000 JPY). 所在地 often lacks the prefecture
(``前橋市古市町…``): it is inferred by ``hokan.core.ja.split_address`` where that is certain
(designated cities, prefectural capitals, unambiguous Tokyo wards), else left blank.

Rows of individuals (提出者種別 個人…) and foreign governments are not companies: skipped and
counted. 資本金 and 提出者業種 are taken for domestic submitters only (外国法人: the unit of 資本金
is not stated; 提出義務者以外: 提出者業種 holds the submitter type, not an industry). Of several
rows of one 法人番号 (renamed or merged submitters), the current 提出義務者 wins (``rank``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hokan.core import ja
from hokan.core.errors import InputError
from hokan.registry.cells import (
    EDINET_CODE,
    SECURITIES_CODE,
    SPECS,
    CellError,
    Evidence,
    cell,
    optional_cell,
    parse_cell,
    put_address,
    raw_row,
    spec_in,
)
from hokan.registry.models import CompanyRecord
from hokan.registry.records import ParsedRow

COLUMNS = {
    "edinet_code": "EDINETコード",
    "kind": "提出者種別",
    "listed": "上場区分",
    "capital": "資本金",
    "name": "提出者名",
    "address": "所在地",
    "industry": "提出者業種",
    "securities_code": "証券コード",
    "corporate_number": "提出者法人番号",
}
REQUIRED = ("EDINETコード", "提出者名")
DOMESTIC = "内国法人・組合"
NOT_COMPANIES = ("個人", "外国政府等")
NOT_A_COMPANY = "個人・外国政府等（企業ではない提出者）"
CAPITAL = spec_in("capital", "百万円")  # FSA code list: 資本金 in 百万円


def column_index(headers: Sequence[str], *, source: str) -> dict[str, int]:
    """{folded header: position}.

    Raises:
        InputError: a column the reader needs (EDINETコード, 提出者名) is missing.
    """
    index = {ja.fold(h).strip(): i for i, h in enumerate(headers)}
    missing = [label for label in REQUIRED if label not in index]
    if missing:
        raise InputError(f"必要な列がありません: {', '.join(missing)}", source=source)
    return index


def parse_row(row: int, headers: Sequence[str], cells: Sequence[str], index: dict[str, int]) -> ParsedRow | str:
    """An EDINET row as a ParsedRow, or a skip reason (str) for a submitter that is no company.

    Raises:
        CellError: a cell does not validate (EDINETコード, 提出者名, 法人番号, 資本金, 所在地, 証券コード).
    """
    get = {name: cell(cells, index.get(label)) for name, label in COLUMNS.items()}
    head = {name: headers[index[label]] if label in index else label for name, label in COLUMNS.items()}
    kind = ja.fold(get["kind"])
    if kind.startswith(NOT_COMPANIES):
        return NOT_A_COMPANY
    code = ja.fold(get["edinet_code"]).upper()
    if not EDINET_CODE.match(code):
        raise CellError(head["edinet_code"], f"EDINETコードとして正しくありません（E+5桁）: {get['edinet_code']}")
    name = parse_cell(SPECS["name"], get["name"], head["name"])
    if not name:
        raise CellError(head["name"], "提出者名が空です")
    values: dict[str, Any] = {"edinet_code": code, "name": name}
    evidence: Evidence = {"name": (get["name"], f"{head['name']} {get['name']}")}
    number = parse_cell(SPECS["corporate_number"], get["corporate_number"], head["corporate_number"])
    if number:
        values["corporate_number"] = number
        evidence["corporate_number"] = (get["corporate_number"], f"{head['corporate_number']} {get['corporate_number']}")
    if kind.startswith("内国") and get["capital"]:
        capital = parse_cell(CAPITAL, get["capital"], head["capital"])
        if capital:
            values["capital"] = capital
            evidence["capital"] = (get["capital"], f"{head['capital']} {get['capital']}（百万円）")
    industry = ja.fold(get["industry"])
    if kind == DOMESTIC and industry and not any(w in industry for w in ("法人", "個人", "政府")):
        values["industry"] = parse_cell(SPECS["industry"], industry, head["industry"])
        evidence["industry"] = (get["industry"], f"{head['industry']} {get['industry']}")
    put_address(get["address"], head["address"], values, evidence)
    listed = optional_cell(SPECS["listed"], get["listed"])
    if listed is not None:
        values["listed"] = listed
    securities = ja.fold(get["securities_code"]).upper()
    if securities:
        if not SECURITIES_CODE.match(securities):
            raise CellError(head["securities_code"], f"証券コードとして正しくありません: {get['securities_code']}")
        values["securities_code"] = securities
    # Of several codes of one 法人番号 (renamed or merged submitters), the current 提出義務者 wins.
    rank = (kind == DOMESTIC, listed is True, code)
    return ParsedRow(row, CompanyRecord.Source.EDINET, values, evidence, raw_row(headers, cells), rank)
