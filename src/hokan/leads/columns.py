"""The Lead columns: Japanese labels, import header synonyms, value kinds, what may be asked.

One table drives import, export, missing-field detection, the LLM prompt and the admin, so a
column is described once. Column names are those of design document 000 §5, plus
``postal_code``, ``representative_name`` and ``representative_title``.

kind:
    "text"     free text (folded, stripped)
    "company_name"  a company name, legal form normalised ((株) → 株式会社)
    "corporate_number"  13 digits with a valid check digit (core.ja)
    "int"      a count (employee_count): 名/人, 約, commas
    "yen"      an amount in JPY (capital, revenue): 円, 千円, 万円, 億円, ...
    "year"     a western year; 和暦 accepted (established_year)
    "phone"    stored in national format (03-1234-5678)
    "postal"   123-4567
    "prefecture"  one of the 47
    "email", "url"  validated with Django's validators
    "tob_toc"  "toB" | "toC" | "toB/toC"
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One Lead column.

    name: model field name. label: Japanese header used in exports and the admin.
    aliases: other headers accepted on import (compared after NFKC folding, case-insensitive,
        spaces removed). kind: value kind (see module docstring).
    prompt_label: the Japanese item name used in the LLM prompt (§7), or "" when the column
        is never asked of an LLM (personal data such as a contact person, or our own notes).
    enrichable: whether the enrichment job tries to fill it.
    """

    name: str
    label: str
    kind: str = "text"
    aliases: tuple[str, ...] = ()
    prompt_label: str = ""
    enrichable: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("name", "企業名", "company_name", aliases=("会社名", "社名", "法人名", "商号", "company", "company_name", "name"),
           enrichable=False),
    Column("corporate_number", "法人番号", "corporate_number", aliases=("corporate number", "法人番号(13桁)"),
           prompt_label="法人番号"),
    Column("industry", "業種", aliases=("industry", "業界"), prompt_label="業種"),
    Column("contact_person_name", "担当者名", aliases=("担当者", "contact", "contact_person"), enrichable=False),
    Column("contact_person_position", "役職", aliases=("担当者役職", "position"), enrichable=False),
    Column("facebook_url", "SNS URL", "url", aliases=("facebook", "facebook_url", "sns", "snsurl")),
    Column("tob_toc_type", "toB/toC", "tob_toc", aliases=("tob_toc_type", "tob/toc区分", "取引形態"), enrichable=False),
    Column("business_description", "事業概要", aliases=("事業内容", "business_description", "業務内容"),
           prompt_label="事業概要"),
    Column("prefecture", "都道府県", "prefecture", aliases=("prefecture", "県"), prompt_label=""),
    Column("city", "市区町村", aliases=("city", "市町村"), prompt_label=""),
    Column("location", "所在地", aliases=("住所", "本社所在地", "location", "address", "番地"), prompt_label="所在地"),
    Column("postal_code", "郵便番号", "postal", aliases=("〒", "postal_code", "zip")),
    Column("employee_count", "従業員数", "int", aliases=("社員数", "employees", "employee_count"),
           prompt_label="従業員数"),
    Column("revenue", "売上高", "yen", aliases=("売上", "年商", "revenue"), prompt_label="売上高"),
    Column("capital", "資本金", "yen", aliases=("capital",), prompt_label="資本金"),
    Column("established_year", "設立年", "year", aliases=("設立", "設立年月日", "established_year", "established"),
           prompt_label="設立年"),
    Column("website_url", "公式サイト", "url",
           aliases=("url", "website", "website_url", "ホームページ", "hp", "webサイト", "サイトurl", "企業url"),
           prompt_label="公式サイト"),
    Column("contact_email", "連絡先", "email", aliases=("メール", "メールアドレス", "email", "e-mail", "contact_email")),
    Column("phone", "電話番号", "phone", aliases=("電話", "tel", "phone", "代表電話"), prompt_label="電話番号"),
    Column("representative_name", "代表者名", aliases=("代表者", "representative", "representative_name"),
           prompt_label="代表者名"),
    Column("representative_title", "代表者役職", aliases=("representative_title",)),
    Column("notes", "備考", aliases=("メモ", "notes", "note"), enrichable=False),
)

BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}
VALUE_FIELDS: tuple[str, ...] = tuple(column.name for column in COLUMNS)
ENRICHABLE_FIELDS: tuple[str, ...] = tuple(column.name for column in COLUMNS if column.enrichable)
