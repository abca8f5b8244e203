"""The registry admin (issue 3 §3): 企業台帳, read-mostly, in Japanese.

Records come from imports (``hokan registry import``) and the gBizINFO API, so they are not
added by hand; an operator may correct or delete one. Search: 企業名, 法人番号, EDINETコード.
Filters: 出典, 都道府県, 上場.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from hokan.registry.models import CompanyRecord


@admin.register(CompanyRecord)
class CompanyRecordAdmin(admin.ModelAdmin):
    list_display = ("name", "corporate_number", "edinet_code", "prefecture", "city", "capital_display",
                    "employee_count", "industry", "listed", "source", "updated_at")
    search_fields = ("name", "name_key", "corporate_number", "edinet_code")
    list_filter = ("source", "prefecture", "listed")
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over a full gBizINFO import is slow
    readonly_fields = ("name_key", "source", "source_file", "evidence_table", "raw", "imported_at", "updated_at")
    exclude = ("evidence",)
    fieldsets = (
        (None, {"fields": ("name", "name_key", "corporate_number", "edinet_code", "securities_code", "listed")}),
        ("所在地", {"fields": ("address", "postal_code", "prefecture", "city", "location")}),
        ("企業情報", {"fields": ("capital", "employee_count", "established_year", "industry", "website_url",
                              "representative_title", "representative_name", "phone")}),
        ("出典", {"fields": ("source", "source_file", "evidence_table", "raw", "imported_at", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="資本金", ordering="capital")
    def capital_display(self, record: CompanyRecord) -> str:
        return f"{record.capital:,}円" if record.capital is not None else "-"

    @admin.display(description="項目ごとの出典")
    def evidence_table(self, record: CompanyRecord) -> str:
        rows = [
            (name, item.get("source", ""), item.get("quote", ""), record.source_url(item.get("source", "")) or "")
            for name, item in sorted((record.evidence or {}).items())
        ]
        if not rows:
            return "-"
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html("<table><tr><th>項目</th><th>出典</th><th>根拠（原文）</th><th>URL</th></tr>{}</table>", body)
