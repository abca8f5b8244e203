"""The Lead columns: one FieldSpec each, plus import header synonyms and what may be enriched.

One table drives import, export, validation (``hokan.core.fields.clean``), missing-field
detection, the LLM prompt and the admin, so a column is described once. Column names are those
of design document 000 §5, plus ``postal_code``, ``representative_name`` and
``representative_title``. Kinds are ``hokan.core.fields`` kinds: company_name,
corporate_number, text, url, choice (toB/toC), prefecture, address, postal_code, count
(employee_count), amount_jpy (revenue, capital: int JPY), year (a western year; 和暦 accepted),
email, phone (stored in national format, 03-1234-5678), person_name. Text lengths and number
bounds are the model fields' own (``Lead``), so a value that passes ``clean`` can be stored on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from hokan.core.fields import FieldSpec, Kind
from hokan.leads.models import Lead

INT32_MAX = 2_147_483_647  # IntegerField on PostgreSQL
MAX_JPY = 10**18 - 1  # DecimalField(max_digits=18, decimal_places=0)
TOB_TOC_CHOICES: tuple[tuple[str, object], ...] = (
    ("toB", "toB"), ("toC", "toC"), ("toB/toC", "toB/toC"), ("toC/toB", "toB/toC"), ("B2B", "toB"), ("B2C", "toC"),
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One Lead column.

    spec: its FieldSpec (name = model field name, label = Japanese header used in exports and the
        admin, kind, unit, prompt_label = the item name of the LLM prompt (§7) or "" when the
        column is never asked of an LLM — personal data such as a contact person, our own notes).
    aliases: other headers accepted on import (compared after NFKC folding, case-insensitive,
        spaces removed). enrichable: whether the enrichment job tries to fill it.
    """

    spec: FieldSpec
    aliases: tuple[str, ...] = ()
    enrichable: bool = True

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def prompt_label(self) -> str:
        return self.spec.prompt_label


def _column(name: str, label: str, kind: Kind = "text", *, aliases: tuple[str, ...] = (), prompt_label: str = "",
            enrichable: bool = True, unit: str = "", **validation: object) -> Column:
    model_field = Lead._meta.get_field(name)
    max_length = getattr(model_field, "max_length", None) if kind not in ("amount_jpy", "count", "year") else None
    spec = FieldSpec(name, label, kind, unit=unit, prompt_label=prompt_label, max_length=max_length,
                     **validation)  # type: ignore[arg-type]
    return Column(spec, aliases=aliases, enrichable=enrichable)


COLUMNS: tuple[Column, ...] = (
    _column("name", "企業名", "company_name", aliases=("会社名", "社名", "法人名", "商号", "company", "company_name", "name"),
            enrichable=False),
    _column("corporate_number", "法人番号", "corporate_number", aliases=("corporate number", "法人番号(13桁)"),
            prompt_label="法人番号"),
    _column("industry", "業種", aliases=("industry", "業界"), prompt_label="業種"),
    _column("contact_person_name", "担当者名", aliases=("担当者", "contact", "contact_person"), enrichable=False),
    _column("contact_person_position", "役職", aliases=("担当者役職", "position"), enrichable=False),
    _column("facebook_url", "SNS URL", "url", aliases=("facebook", "facebook_url", "sns", "snsurl")),
    _column("tob_toc_type", "toB/toC", "choice", aliases=("tob_toc_type", "tob/toc区分", "取引形態"), enrichable=False,
            choices=TOB_TOC_CHOICES),
    _column("business_description", "事業概要", aliases=("事業内容", "business_description", "業務内容"),
            prompt_label="事業概要"),
    _column("prefecture", "都道府県", "prefecture", aliases=("prefecture", "県")),
    _column("city", "市区町村", aliases=("city", "市町村")),
    _column("location", "所在地", "address", aliases=("住所", "本社所在地", "location", "address", "番地"),
            prompt_label="所在地"),
    _column("postal_code", "郵便番号", "postal_code", aliases=("〒", "postal_code", "zip")),
    _column("employee_count", "従業員数", "count", aliases=("社員数", "employees", "employee_count"),
            prompt_label="従業員数", unit="人", max_value=INT32_MAX),
    _column("revenue", "売上高", "amount_jpy", aliases=("売上", "年商", "revenue"), prompt_label="売上高", unit="JPY",
            max_value=MAX_JPY),
    _column("capital", "資本金", "amount_jpy", aliases=("capital",), prompt_label="資本金", unit="JPY", max_value=MAX_JPY),
    _column("established_year", "設立年", "year", aliases=("設立", "設立年月日", "established_year", "established"),
            prompt_label="設立年", unit="年"),
    _column("website_url", "公式サイト", "url",
            aliases=("url", "website", "website_url", "ホームページ", "hp", "webサイト", "サイトurl", "企業url"),
            prompt_label="公式サイト"),
    _column("contact_email", "連絡先", "email", aliases=("メール", "メールアドレス", "email", "e-mail", "contact_email")),
    _column("phone", "電話番号", "phone", aliases=("電話", "tel", "phone", "代表電話"), prompt_label="電話番号"),
    _column("representative_name", "代表者名", "person_name", aliases=("代表者", "representative", "representative_name"),
            prompt_label="代表者名"),
    _column("representative_title", "代表者役職", aliases=("representative_title",)),
    _column("notes", "備考", aliases=("メモ", "notes", "note"), enrichable=False),
)

BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}
SPECS: dict[str, FieldSpec] = {column.name: column.spec for column in COLUMNS}
VALUE_FIELDS: tuple[str, ...] = tuple(column.name for column in COLUMNS)
ENRICHABLE_FIELDS: tuple[str, ...] = tuple(column.name for column in COLUMNS if column.enrichable)
