"""The leads admin (issue 3 §3), in Japanese.

- 営業リスト: search (企業名, 法人番号, 電話番号, 公式サイト), filters (業種, 都道府県, 欠損項目,
  最終補完, 取得方法, 補完対象), a change page that shows each value with its provenance, and
  CSV / XLSX import and export (django-import-export).
- A hand edit marks each changed column "manual" (confidence 1.0), also when it is cleared, so
  the enrichment job never overwrites it (``hokan.leads.edit``). Values are validated with the
  same rules as the import and the API (``edit.clean_field``).
- Imports through the admin go through ``import_leads.parse_row`` / ``store_row``, exactly
  like ``hokan leads import``: same header synonyms, validation, matching and manual marks.
  CSV files are read as UTF-8 (BOM or not) or CP932 / Shift_JIS, detected per file.
- 補完の実行 (EnrichmentRun) is read-only.
"""

from __future__ import annotations

import datetime as dt
from copy import deepcopy
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export import fields as ie_fields
from import_export import resources
from import_export.admin import ImportExportModelAdmin
from import_export.formats import base_formats
from import_export.results import RowResult

from hokan.core.admin import register_usage_section
from hokan.core.errors import InputError
from hokan.core.tabular import decode_csv
from hokan.leads.columns import BY_NAME, COLUMNS, ENRICHABLE_FIELDS, VALUE_FIELDS
from hokan.leads.edit import FieldProblem, changed_fields, clean_field, mark_manual
from hokan.leads.export_leads import METHOD_LABELS
from hokan.leads.import_leads import find_existing, map_headers, parse_row, store_row
from hokan.leads.models import EnrichmentRun, Lead
from hokan.leads.refresh import AlreadyEnriching, queue_refresh
from hokan.leads.store import blank_q, is_blank, search_q

# --- import / export ---------------------------------------------------------------------------------


class CsvAnyEncoding(base_formats.CSV):
    """CSV import in UTF-8 (with or without BOM) or CP932 / Shift_JIS, detected like the CLI.

    Declared binary so django-import-export hands over the raw bytes instead of decoding them
    as UTF-8 itself (its ``from_encoding`` is one fixed encoding per admin). Exports UTF-8 with
    a BOM, which Excel opens correctly.
    """

    def get_title(self) -> str:
        return "csv（UTF-8 / Shift_JIS を自動判別）"

    def is_binary(self) -> bool:
        return True

    def get_read_mode(self) -> str:
        return "rb"

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> Any:
        import tablib

        if isinstance(in_stream, bytes):
            try:
                in_stream, _encoding = decode_csv(in_stream)
            except InputError as exc:
                raise ValueError(str(exc)) from None  # names the line and byte offset
        return tablib.import_set(in_stream, format="csv", **kwargs)

    def export_data(self, dataset: Any, **kwargs: Any) -> bytes:
        return dataset.export("csv", **kwargs).encode("utf-8-sig")


class CsvUtf8(CsvAnyEncoding):
    """CSV export in UTF-8 with a BOM (Excel recognises the encoding by it)."""

    def get_title(self) -> str:
        return "csv（UTF-8・BOM 付き）"

    def can_import(self) -> bool:
        return False


class CsvCp932(CsvAnyEncoding):
    """CSV export in CP932 for old Excel (characters CP932 lacks become 「?」)."""

    def get_title(self) -> str:
        return "csv（Shift_JIS / CP932）"

    def can_import(self) -> bool:
        return False

    def export_data(self, dataset: Any, **kwargs: Any) -> bytes:
        return dataset.export("csv", **kwargs).encode("cp932", errors="replace")


def _whole_yen(value: Any) -> Any:
    return int(value) if hasattr(value, "to_integral_value") else value


class LeadResource(resources.ModelResource):
    """Lead rows with the Japanese column labels as headers (as ``hokan leads export`` writes them).

    Import does not use django-import-export's field-by-field loading: each row goes through
    ``parse_row`` (header synonyms, ``clean_value``, address splitting) and ``store_row``
    (match by 法人番号 or name, values marked manual), the functions of ``hokan leads import``.
    An invalid row is reported with its Excel row number and column; with any invalid row
    the admin offers no confirmation, so nothing is written.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, field in self.fields.items():
            if name in BY_NAME:
                field.column_name = BY_NAME[name].label  # headers as `hokan leads export` writes them
        self._mapping: dict[int, str] = {}
        self._source = "admin"

    class Meta:
        model = Lead
        fields = VALUE_FIELDS
        export_order = VALUE_FIELDS
        use_transactions = True
        skip_unchanged = True
        report_skipped = True

    def export_field(self, field: ie_fields.Field, instance: Lead, **kwargs: Any) -> Any:
        value = getattr(instance, field.attribute, None) if field.attribute else None
        if value is None:
            return ""
        return _whole_yen(value)

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        headers = [str(h or "") for h in (dataset.headers or [])]
        self._mapping, _ignored = map_headers(headers)
        # Rows reach import_row as {header: cell}; make the headers unique so that blank or
        # repeated header cells do not merge columns and shift the cells.
        seen: set[str] = set()
        unique = []
        for index, header in enumerate(headers):
            key = header if header and header not in seen else f"{header}#{index}"
            seen.add(key)
            unique.append(key)
        if dataset.headers:
            dataset.headers = unique
        self._source = f"admin:{kwargs.get('file_name') or 'upload'}"[:40]
        if "name" not in self._mapping.values():
            raise ValueError("見出し行に「企業名」（会社名・社名・name でも可）の列がありません: " + ", ".join(h for h in headers if h))

    def import_row(self, row: Any, instance_loader: Any, **kwargs: Any) -> RowResult:
        result = self.get_row_result_class()()
        cells = list(row.values())
        number = int(kwargs.get("row_number", 0)) + 1  # as Excel shows it: the header is row 1
        try:
            values = parse_row(cells, self._mapping, source=self._source, row=number)
        except InputError as exc:
            result.import_type = RowResult.IMPORT_TYPE_INVALID
            result.validation_error = ValidationError({exc.field or "企業名": [f"{number}行目: {exc.reason}"]})
            return result
        before = find_existing(values)
        diff = self.get_diff_class()(self, deepcopy(before) if before else None, before is None)
        lead, outcome = store_row(values, source=self._source)
        result.import_type = {"created": RowResult.IMPORT_TYPE_NEW, "updated": RowResult.IMPORT_TYPE_UPDATE,
                              "unchanged": RowResult.IMPORT_TYPE_SKIP}[outcome]
        result.add_instance_info(lead)
        result.instance = lead  # the admin's log entries need it
        diff.compare_with(self, lead)
        result.diff = diff.as_html()
        return result


# --- forms -------------------------------------------------------------------------------------------
_NUMBER_KINDS = ("count", "amount_jpy", "year")  # hokan.core.fields kinds
_NUMBER_HELP = {"count": "人数（「3,499名」「約1200人」も可）", "amount_jpy": "円（「1億円」「500万円」も可）",
                "year": "西暦（「令和6年」「1960年」も可）"}


class LeadForm(forms.ModelForm):
    """Every value column is validated by ``edit.clean_field`` (the import's and the API's rules).

    Count, amount and year columns are text boxes so that 「3,499名」「1億円」「令和6年」 work.
    """

    class Meta:
        model = Lead
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for column in COLUMNS:
            if column.kind in _NUMBER_KINDS and column.name in self.fields:
                old = self.fields[column.name]
                self.fields[column.name] = forms.CharField(
                    label=old.label, required=False, help_text=_NUMBER_HELP[column.kind],
                )
                if self.instance.pk and getattr(self.instance, column.name) is not None:
                    self.initial[column.name] = str(_whole_yen(getattr(self.instance, column.name)))
        if self.instance.pk:
            # Each input says where its value came from (details in the 取得根拠 table).
            for source in self.instance.sources.all():
                field = self.fields.get(source.field)
                if field is None:
                    continue
                method = METHOD_LABELS.get(source.method, source.method)
                note = f"取得方法: {method}（確度 {_confidence(source.confidence)}）"
                field.help_text = f"{field.help_text}　{note}" if field.help_text else note

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for column in COLUMNS:
            if column.kind in _NUMBER_KINDS and cleaned.get(column.name) == "":
                cleaned[column.name] = None  # the text box's blank is the number column's NULL
        for name in self.changed_data:
            if name not in BY_NAME or name not in cleaned:
                continue
            try:
                value = clean_field(name, cleaned[name])
            except FieldProblem as problem:
                self.add_error(name, problem.message)
                continue
            if value is None:
                value = None if Lead._meta.get_field(name).null else ""
            cleaned[name] = value
        return cleaned


# --- filters -----------------------------------------------------------------------------------------
class MissingFieldFilter(admin.SimpleListFilter):
    """Leads where the chosen column is blank."""

    title = "欠損項目"
    parameter_name = "missing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(column.name, column.label) for column in COLUMNS if column.name != "name"]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        name = self.value()
        if name not in BY_NAME:
            return queryset
        return queryset.filter(blank_q(name))


class LastEnrichmentFilter(admin.SimpleListFilter):
    """When the enrichment job last processed the lead (Asia/Tokyo days)."""

    title = "最終補完"
    parameter_name = "enriched"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("never", "未実施"), ("today", "今日"), ("7days", "7日以内"), ("older", "7日より前")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        week = timezone.now() - dt.timedelta(days=7)
        value = self.value()
        if value == "never":
            return queryset.filter(ai_last_enriched_at__isnull=True)
        if value == "today":
            return queryset.filter(ai_last_enriched_at__gte=today)
        if value == "7days":
            return queryset.filter(ai_last_enriched_at__gte=week)
        if value == "older":
            return queryset.filter(ai_last_enriched_at__lt=week)
        return queryset


class MethodFilter(admin.SimpleListFilter):
    """Leads having at least one value obtained by the chosen method."""

    title = "取得方法"
    parameter_name = "method"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(METHOD_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        if self.value() in METHOD_LABELS:
            return queryset.filter(sources__method=self.value()).distinct()
        return queryset


# --- admins ------------------------------------------------------------------------------------------
def _short_url(url: str) -> str:
    text = url.split("://", 1)[-1]
    return text if len(text) <= 45 else text[:44] + "…"


def _confidence(value: float) -> str:
    return f"{value * 100:.0f}%"


@admin.register(Lead)
class LeadAdmin(ImportExportModelAdmin):
    form = LeadForm
    resource_classes = [LeadResource]
    import_formats = [CsvAnyEncoding, base_formats.XLSX]
    export_formats = [CsvUtf8, CsvCp932, base_formats.XLSX]
    list_display = ("name", "corporate_number", "industry", "prefecture", "phone", "missing_count",
                    "needs_ai_update", "last_enriched")
    list_display_links = ("name",)
    list_filter = ("industry", "prefecture", MissingFieldFilter, LastEnrichmentFilter, MethodFilter, "needs_ai_update")
    search_fields = ("name", "corporate_number", "phone", "website_url")
    search_help_text = "企業名・法人番号・電話番号・公式サイトの一部で検索します"
    list_per_page = 50
    actions = ["mark_for_enrichment", "refresh_now"]
    readonly_fields = ("provenance_table", "public_id", "ai_last_updated", "ai_last_enriched_at", "ai_source",
                       "created_at", "updated_at")
    fieldsets = (
        ("基本情報", {"fields": ("name", "corporate_number", "industry", "tob_toc_type", "business_description")}),
        ("所在地・連絡先", {"fields": ("postal_code", "prefecture", "city", "location", "phone", "contact_email",
                                 "website_url", "facebook_url")}),
        ("規模", {"fields": ("capital", "revenue", "employee_count", "established_year")}),
        ("人物", {"fields": ("representative_name", "representative_title", "contact_person_name",
                           "contact_person_position")}),
        ("備考・補完", {"fields": ("notes", "needs_ai_update", "ai_last_enriched_at", "ai_last_updated", "ai_source")}),
        ("取得根拠（項目ごとの方法・出典・根拠・確度）", {"classes": ("wide",), "fields": ("provenance_table",)}),
        ("管理情報", {"classes": ("collapse",), "fields": ("public_id", "created_at", "updated_at")}),
    )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Lead], search_term: str) -> Any:
        # The same search as the API's ``q`` (a phone typed without hyphens finds the lead too).
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search_q(search_term)), False

    @admin.display(description="最終補完", ordering="ai_last_enriched_at")
    def last_enriched(self, lead: Lead) -> str:
        if lead.ai_last_enriched_at is None:
            return "未実施"
        return timezone.localtime(lead.ai_last_enriched_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="欠損")
    def missing_count(self, lead: Lead) -> int:
        return sum(1 for name in ENRICHABLE_FIELDS if is_blank(getattr(lead, name)))

    @admin.display(description="取得根拠")
    def provenance_table(self, lead: Lead) -> str:
        if not lead.pk:
            return "保存後に表示されます"
        sources = {s.field: s for s in lead.sources.all()}
        rows = []
        for column in COLUMNS:
            source = sources.get(column.name)
            value = getattr(lead, column.name)
            if source is None and is_blank(value):
                continue
            if is_blank(value):
                shown = "（空欄）"
            elif column.kind == "amount_jpy":
                shown = f"{int(value):,} 円"
            else:
                shown = str(value)
            if source is None:
                rows.append((column.label, shown, "記録なし", "", "", "", ""))
                continue
            link = format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', source.source_url,
                               _short_url(source.source_url)) if source.source_url else "—"
            rows.append((column.label, shown, METHOD_LABELS.get(source.method, source.method), link,
                         source.quote[:300] or "—", _confidence(source.confidence),
                         timezone.localtime(source.updated_at).strftime("%Y-%m-%d")))
        if not rows:
            return "まだ値がありません"
        nowrap = 'style="white-space: nowrap"'
        body = format_html_join(
            "",
            "<tr><th " + nowrap + ">{}</th><td>{}</td><td " + nowrap + ">{}</td>"
            '<td style="word-break: break-all; min-width: 14em">{}</td>'
            '<td style="min-width: 16em">{}</td>'
            '<td style="text-align: right">{}</td><td ' + nowrap + ">{}</td></tr>",
            rows,
        )
        return format_html(
            '<table class="hokan-provenance" style="width: 100%"><thead><tr><th>項目</th><th>値</th><th>取得方法</th>'
            "<th>出典</th><th>根拠（原文）</th><th>確度</th><th>更新</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def save_model(self, request: HttpRequest, obj: Lead, form: forms.ModelForm, change: bool) -> None:
        edited = {name: form.cleaned_data.get(name) for name in form.changed_data if name in BY_NAME}
        original = Lead.objects.get(pk=obj.pk) if change else Lead()
        changed = changed_fields(original, edited)
        super().save_model(request, obj, form, change)
        mark_manual(obj, changed, editor=f"admin:{request.user.get_username()}")

    @admin.action(description="補完対象にする")
    def mark_for_enrichment(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        count = queryset.update(needs_ai_update=True)
        self.message_user(request, f"{count} 件を補完対象にしました。次回の定期実行で補完されます。", messages.SUCCESS)

    @admin.action(description="今すぐ再取得")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        queued, busy = 0, 0
        for lead in queryset[:100]:
            try:
                queue_refresh(lead, trigger="admin")
                queued += 1
            except AlreadyEnriching:
                busy += 1
        text = f"{queued} 件の再取得を登録しました（状態は「補完の実行」で確認できます）。"
        if busy:
            text += f" {busy} 件は補完中のため登録しませんでした。"
        if queryset.count() > 100:
            text += " 一度に登録できるのは 100 件までです。"
        self.message_user(request, text, messages.SUCCESS if queued else messages.WARNING)


TRIGGER_LABELS = {"cli": "コマンド", "schedule": "定期実行", "api": "API", "admin": "管理画面"}


@admin.register(EnrichmentRun)
class EnrichmentRunAdmin(admin.ModelAdmin):
    """Read-only: runs are written by the job, never by hand."""

    list_display = ("started_at", "status", "trigger_label", "lead", "leads_selected", "leads_done", "leads_failed",
                    "llm_calls", "cost_usd", "finished_at")
    list_filter = ("status", "trigger", "dry_run")
    search_fields = ("lead__name", "message")
    date_hierarchy = "started_at"
    list_select_related = ("lead",)

    @admin.display(description="起動元", ordering="trigger")
    def trigger_label(self, run: EnrichmentRun) -> str:
        return TRIGGER_LABELS.get(run.trigger, run.trigger)

    @admin.display(description="コスト (USD)")
    def cost_usd(self, run: EnrichmentRun) -> str:
        return f"${run.cost_micro_usd / 1_000_000:,.4f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- the leads section of the usage page (hokan.core.admin: core does not import this app) -------
RECENT_RUNS = 20


def _usage_runs(request: HttpRequest) -> dict[str, Any]:
    """The recent enrichment runs with their outcome, below the usage meters."""
    runs = EnrichmentRun.objects.select_related("lead").order_by("-started_at")[:RECENT_RUNS]
    return {"runs": [(run, TRIGGER_LABELS.get(run.trigger, run.trigger), f"${run.cost_micro_usd / 1_000_000:,.4f}")
                     for run in runs]}


register_usage_section("admin/leads/usage_runs.html", _usage_runs)
