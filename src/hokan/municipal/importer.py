"""``hokan municipal import-municipalities``: the 全国地方公共団体コード list into ``Municipality``.

Source (issue 10 §1): ``$HOKAN_SHARED_DATA/municipal/localgovjp`` — code4fukui/localgovjp (CC0):
``localgovjp-utf8.csv`` (pid,pref,cid,city,citykana,lat,lng,url,phrase,lgcode; one row per
市区町村 and 政令指定都市の区) and ``prefjp-utf8.csv`` (the 47 prefectures; its lgcode column
drops the leading zero: ``10006`` = 北海道 ``010006``).

Every row is checked before anything is written: the code must be six digits whose sixth is the
check digit (``check_digit``), and agree with ``cid``; name and prefecture must be present; the
URL must be http(s). A bad row is reported (file, row, field, reason) and skipped; the other rows
are imported. Importing again updates the rows in place (keyed by lgcode): idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from hokan.core.errors import InputError
from hokan.core.tabular import read_table
from hokan.municipal.models import Municipality

CITY_FILE = "localgovjp-utf8.csv"
PREFECTURE_FILE = "prefjp-utf8.csv"
_WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(code5: str) -> int:
    """The check digit of a five-digit 地方公共団体コード (総務省「全国地方公共団体コード」):
    each digit times 6, 5, 4, 3, 2, summed; the last digit of 11 minus the sum's remainder by 11.
    ``check_digit("01100") == 2`` (札幌市 011002). Raises ValueError for anything but 5 digits."""
    if not re.fullmatch(r"\d{5}", code5):
        raise ValueError(f"not a five-digit code: {code5!r}")
    total = sum(int(d) * w for d, w in zip(code5, _WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def valid_lgcode(code: str) -> bool:
    """True for six digits whose last is the check digit of the first five."""
    return bool(re.fullmatch(r"\d{6}", code)) and check_digit(code[:5]) == int(code[5])


def level_of(name: str, prefecture: str) -> str:
    """The ``Municipality.Level`` of a name as the list writes it ("札幌市 中央区" is a ward,
    "千代田区" in 東京都 a special ward, else by the last character 市 / 町 / 村)."""
    if " " in name.strip() or "　" in name.strip():
        return Municipality.Level.WARD
    if name.endswith("区"):
        return Municipality.Level.SPECIAL_WARD if prefecture == "東京都" else Municipality.Level.WARD
    if name.endswith("町"):
        return Municipality.Level.TOWN
    if name.endswith("村"):
        return Municipality.Level.VILLAGE
    return Municipality.Level.CITY


@dataclass
class ImportReport:
    """created / updated / unchanged: rows by outcome; errors: one InputError per skipped row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


def default_folder() -> Path:
    """``$HOKAN_SHARED_DATA/municipal/localgovjp`` (setting HOKAN_MUNICIPAL_LOCALGOV_DIR overrides)."""
    configured = getattr(settings, "HOKAN_MUNICIPAL_LOCALGOV_DIR", "")
    if configured:
        return Path(configured)
    return Path(settings.HOKAN_SHARED_DATA) / "municipal" / "localgovjp"


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    table = read_table(path)
    header: list[str] = []
    out = []
    for number, cells in table.rows:
        if not header:
            header = [str(h or "").strip().lstrip("\ufeff") for h in cells]
            continue
        values = {name: (str(cells[i]).strip() if i < len(cells) and cells[i] is not None else "")
                  for i, name in enumerate(header)}
        if any(values.values()):
            out.append((number, values))
    return out


def _parse_city(source: str, number: int, row: dict[str, str]) -> dict[str, str]:
    code = row.get("lgcode", "")
    if not valid_lgcode(code):
        raise InputError(f"全国地方公共団体コード {code!r} が6桁でないか、検査数字が合いません",
                         source=source, row=number, field="lgcode")
    cid = row.get("cid", "")
    if cid and cid.zfill(5) != code[:5]:
        raise InputError(f"cid {cid!r} と全国地方公共団体コード {code} の上5桁が一致しません",
                         source=source, row=number, field="cid")
    return _common(source, number, code, row.get("city", ""), row.get("pref", ""), row.get("citykana", ""),
                   row.get("url", ""))


def _parse_prefecture(source: str, number: int, row: dict[str, str]) -> dict[str, str]:
    raw = row.get("lgcode", "")
    code = raw.zfill(6) if raw.isdigit() else raw
    if not valid_lgcode(code) or code[2:5] != "000":
        raise InputError(f"都道府県の全国地方公共団体コード {raw!r} が正しくありません",
                         source=source, row=number, field="lgcode")
    values = _common(source, number, code, row.get("pref", ""), row.get("pref", ""), row.get("prefkana", ""),
                     row.get("url", ""))
    values["level"] = Municipality.Level.PREFECTURE
    return values


def _common(source: str, number: int, code: str, name: str, prefecture: str, kana: str, url: str) -> dict[str, str]:
    name = re.sub(r"[ 　]+", " ", name).strip()
    if not name:
        raise InputError("名称が空です", source=source, row=number, field="city")
    if not re.fullmatch(r".{2,3}[都道府県]", prefecture):
        raise InputError(f"都道府県 {prefecture!r} が正しくありません", source=source, row=number, field="pref")
    if url and not re.match(r"https?://[^/\s]+", url):
        raise InputError(f"公式サイトの URL {url!r} が http(s) ではありません", source=source, row=number, field="url")
    return {"lgcode": code, "name": name, "prefecture": prefecture, "kana": kana, "official_url": url,
            "level": level_of(name, prefecture)}


def import_municipalities(folder: Path | None = None) -> ImportReport:
    """Import (or update) every good row of the two files in ``folder`` (default
    ``default_folder()``); returns the report. A file missing raises InputError naming it; a bad
    row is reported in ``errors`` and skipped. Rows are all read and checked, then written in
    one transaction."""
    folder = Path(folder or default_folder())
    report = ImportReport()
    parsed: dict[str, dict[str, str]] = {}
    for file_name, parse in ((PREFECTURE_FILE, _parse_prefecture), (CITY_FILE, _parse_city)):
        path = folder / file_name
        if not path.is_file():
            raise InputError(f"{file_name} がありません（フォルダ {folder}）", source=str(path))
        for number, row in _rows(path):
            try:
                values = parse(str(path), number, row)
            except InputError as exc:
                report.errors.append(exc)
                continue
            if values["lgcode"] in parsed:
                report.errors.append(InputError(f"全国地方公共団体コード {values['lgcode']} が重複しています",
                                                source=str(path), row=number, field="lgcode"))
                continue
            parsed[values["lgcode"]] = values
    with transaction.atomic():
        existing = {m.lgcode: m for m in Municipality.objects.filter(lgcode__in=list(parsed))}
        fields = ("name", "prefecture", "kana", "official_url", "level")
        changed = []
        new = []
        for code, values in parsed.items():
            current = existing.get(code)
            if current is None:
                new.append(Municipality(**values))
            elif any(getattr(current, name) != values[name] for name in fields):
                for name in fields:
                    setattr(current, name, values[name])
                changed.append(current)
            else:
                report.unchanged += 1
        Municipality.objects.bulk_create(new, batch_size=500)
        Municipality.objects.bulk_update(changed, list(fields), batch_size=500)
        report.created, report.updated = len(new), len(changed)
    return report
