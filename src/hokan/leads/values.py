"""Turning a cell or an extracted value into the value a Lead column stores.

``clean_value(column_name, raw)`` is used by the import (a user's cell) and by the LLM step
(a model's answer): both are validated the same way with ``hokan.core.ja``. A vague value
(「非公開」, 「要確認」, 「詳細はお問い合わせください」, …) is no value. A value that does not
validate raises ``ValueError`` with a Japanese reason naming what was expected.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from hokan.core import ja
from hokan.leads.columns import BY_NAME

_url = URLValidator(schemes=["http", "https"])
_email = EmailValidator()


def clean_value(field: str, raw: Any) -> Any:
    """Validate and normalise ``raw`` for the Lead column ``field``.

    Returns the normalised value (str, int for counts and years, int JPY for amounts,
    national-format phone), or None when ``raw`` is empty or vague.

    Raises:
        ValueError: the value is present but invalid (message in Japanese).
        KeyError: ``field`` is not a Lead column.
    """
    column = BY_NAME[field]
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError("真偽値は値として使えません")
    if isinstance(raw, (int, Decimal)) and column.kind in ("int", "yen", "year"):
        text = str(int(raw))
    elif isinstance(raw, float) and column.kind in ("int", "yen", "year"):
        if raw != int(raw):
            raise ValueError(f"整数ではありません: {raw}")
        text = str(int(raw))
    else:
        text = ja.fold(str(raw))
    if not text or ja.is_vague(text):
        return None
    kind = column.kind
    if kind == "text":
        return text
    if kind == "company_name":
        return ja.normalize_company_name(text)
    if kind == "corporate_number":
        number = ja.parse_corporate_number(text)
        if number is None:
            raise ValueError(f"法人番号として正しくありません（13桁・チェックデジット）: {text}")
        return number
    if kind == "int":
        count = ja.parse_employee_count(text) if not text.isdigit() else ja.parse_employee_count(text + "名")
        if count is None or count.count <= 0:
            raise ValueError(f"人数として読めません: {text}")
        return count.count
    if kind == "yen":
        amount = ja.parse_yen(text if not text.replace(",", "").isdigit() else text + "円")
        if amount is None or amount <= 0:
            raise ValueError(f"金額として読めません: {text}")
        return amount
    if kind == "year":
        year = ja.parse_year(text if not text.isdigit() else text + "年")
        if year is None:
            raise ValueError(f"年として読めません: {text}")
        return year
    if kind == "phone":
        phone = ja.parse_phone(text)
        if phone is None:
            raise ValueError(f"電話番号として正しくありません: {text}")
        return phone.national
    if kind == "postal":
        code = ja.parse_postal_code(text if "〒" in text else "〒" + text)
        if code is None:
            raise ValueError(f"郵便番号として正しくありません: {text}")
        return code
    if kind == "prefecture":
        if text in ja.PREFECTURES:
            return text
        # 「東京」「大阪」: the name without its 都/府/県 suffix (北海道 has none to drop).
        matches = [p for p in ja.PREFECTURES if p[-1] in "都府県" and p[:-1] == text]
        if len(matches) == 1:
            return matches[0]
        raise ValueError(f"都道府県名として正しくありません: {text}")
    if kind == "email":
        try:
            _email(text)
        except ValidationError:
            raise ValueError(f"メールアドレスとして正しくありません: {text}") from None
        return text
    if kind == "url":
        if "://" not in text:
            text = "https://" + text
        try:
            _url(text)
        except ValidationError:
            raise ValueError(f"URL として正しくありません: {text}") from None
        return text
    if kind == "tob_toc":
        compact = text.replace(" ", "").lower()
        mapping = {"tob": "toB", "toc": "toC", "tob/toc": "toB/toC", "toc/tob": "toB/toC", "b2b": "toB", "b2c": "toC"}
        if compact in mapping:
            return mapping[compact]
        raise ValueError(f"toB / toC / toB/toC のいずれかを指定してください: {text}")
    raise AssertionError(f"unknown column kind {kind!r}")  # a programming error, not input
