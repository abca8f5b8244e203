"""Exporting the lead list as CSV (UTF-8 with BOM, or CP932 for old Excel) or XLSX.

Headers are the Japanese column labels, so an exported file imports back unchanged. With
``with_sources`` each enrichable column is followed by its provenance: 取得方法, 出典URL,
根拠, 確度.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

from hokan.core.errors import InputError
from hokan.leads.columns import COLUMNS
from hokan.leads.models import Lead

METHOD_LABELS = {"registry": "公的データ", "rule": "ルール", "ai": "AI", "manual": "手入力"}


def _cell(value: object) -> object:
    if value is None:
        return ""
    if hasattr(value, "to_integral_value"):  # Decimal amounts are whole yen
        return int(value)
    return value


def rows_for(leads: Iterable[Lead], *, with_sources: bool) -> Iterable[list[object]]:
    header: list[object] = []
    for column in COLUMNS:
        header.append(column.label)
        if with_sources and column.enrichable:
            header += [f"{column.label}_取得方法", f"{column.label}_出典URL", f"{column.label}_根拠", f"{column.label}_確度"]
    yield header
    for lead in leads:
        sources = {s.field: s for s in lead.sources.all()} if with_sources else {}
        row: list[object] = []
        for column in COLUMNS:
            row.append(_cell(getattr(lead, column.name)))
            if with_sources and column.enrichable:
                source = sources.get(column.name)
                if source is None:
                    row += ["", "", "", ""]
                else:
                    row += [METHOD_LABELS.get(source.method, source.method), source.source_url, source.quote,
                            round(source.confidence, 2)]
        yield row


def export_leads(
    path: Path,
    *,
    encoding: str = "utf-8-sig",
    with_sources: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every lead to ``path`` (.csv or .xlsx). Returns the number of leads written.

    encoding: for CSV, "utf-8-sig" (default, Excel opens it) or "cp932"; characters CP932
        cannot hold are replaced by 「?」 rather than failing the export.

    Raises:
        InputError: unknown extension.
    """
    leads = Lead.objects.order_by("pk")
    if with_sources:  # the provenance rows only when they are written (they were 0.85 s of 0.92 s)
        leads = leads.prefetch_related("sources")
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if suffix == ".xlsx":
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("営業リスト")
        for index, row in enumerate(rows_for(leads.iterator(chunk_size=500), with_sources=with_sources)):
            sheet.append(row)
            if index:
                count += 1
                if progress:
                    progress(1)
        book.save(path)
        return count
    if suffix == ".csv":
        with path.open("w", encoding=encoding, errors="replace", newline="") as handle:
            writer = csv.writer(handle)
            for index, row in enumerate(rows_for(leads.iterator(chunk_size=500), with_sources=with_sources)):
                writer.writerow(row)
                if index:
                    count += 1
                    if progress:
                        progress(1)
        return count
    raise InputError(f"対応していない形式です（.csv / .xlsx）: {suffix or '拡張子なし'}", source=str(path))
