"""The municipal admin (issue 10 §6), in Japanese: municipalities, services and variables (editable),
drafts with filled / missing counts, per value the quote with its source link and approve / reject /
edit (an edit is manual and never overwritten by a run), approve or reject the whole draft, and a
diff between two versions (``<draft>/diff/?a=1&b=2``, changed values highlighted)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from hokan.core.errors import InvalidValue
from hokan.municipal import draft as drafts
from hokan.municipal.models import Draft, DraftVersion, MunicipalRun, Municipality, Service, VariableDefinition
from hokan.municipal.seed import spec_of


@admin.register(Municipality)
class MunicipalityAdmin(admin.ModelAdmin):
    list_display = ("lgcode", "name", "prefecture", "level", "official_url", "last_fetched_at")
    list_filter = ("level", "prefecture")
    search_fields = ("lgcode", "name", "kana", "slug")


@admin.register(VariableDefinition)
class VariableDefinitionAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "validation_type", "category")
    list_filter = ("validation_type", "category")
    search_fields = ("name", "label", "description")


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "category")
    search_fields = ("key", "name")
    filter_horizontal = ("variables",)


@admin.register(MunicipalRun)
class MunicipalRunAdmin(admin.ModelAdmin):
    list_display = ("municipality", "job", "trigger", "created_at")
    readonly_fields = ("municipality", "job", "trigger", "created_at")


class VersionInline(admin.TabularInline):
    model = DraftVersion
    extra = 0
    can_delete = False
    fields = ("number", "reason", "created_by", "created_at", "change_count")
    readonly_fields = fields

    @admin.display(description="変更数")
    def change_count(self, obj: DraftVersion) -> int:
        return len(obj.changes)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


_REVIEW = {"approved": "承認", "rejected": "却下", "": "未確認"}
_METHOD = {"rule": "ルール", "ai": "AI", "manual": "手入力"}


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ("municipality", "service", "status", "filled", "missing", "version", "updated_at")
    list_filter = ("status", "service__category")
    search_fields = ("municipality__name", "municipality__lgcode", "service__name", "service__key")
    readonly_fields = ("municipality", "service", "values_table", "missing_list", "errors_list", "search_attempts",
                       "version", "diff_link", "reviewed_by", "reviewed_at")
    fields = ("municipality", "service", "status", "values_table", "missing_list", "errors_list", "search_attempts",
              "version", "diff_link", "reviewed_by", "reviewed_at")
    inlines = [VersionInline]
    actions = ["approve", "reject"]

    @admin.display(description="取得")
    def filled(self, obj: Draft) -> int:
        return obj.filled_count

    @admin.display(description="未取得")
    def missing(self, obj: Draft) -> int:
        return obj.missing_count

    @admin.action(description="選択した下書きを承認")
    def approve(self, request: HttpRequest, queryset: Any) -> None:
        for item in queryset:
            drafts.set_status(item, Draft.Status.APPROVED, user=request.user.get_username())
        self.message_user(request, f"{queryset.count()} 件を承認しました")

    @admin.action(description="選択した下書きを却下")
    def reject(self, request: HttpRequest, queryset: Any) -> None:
        for item in queryset:
            drafts.set_status(item, Draft.Status.REJECTED, user=request.user.get_username())
        self.message_user(request, f"{queryset.count()} 件を却下しました")

    # --- the values, with their evidence and the review buttons ---------------------------------
    @admin.display(description="値と根拠")
    def values_table(self, obj: Draft) -> SafeString:
        if not obj.pk:
            return mark_safe("")
        action = reverse("admin:municipal_draft_value", args=[obj.pk])
        rows = []
        for name, item in sorted(obj.variables.items()):
            source = item.get("source_url")
            link = format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', source, source) if source else "—"
            rows.append(format_html(
                "<tr><td><b>{}</b></td><td>{}</td><td>「{}」<br><small>{}</small></td><td>{}</td><td>{}</td>"
                "<td>{}</td><td>"
                '<button form="v-{}" name="action" value="approved">承認</button> '
                '<button form="v-{}" name="action" value="rejected">却下</button> '
                '<input form="v-{}" name="value" placeholder="修正する値" size="16"> '
                '<button form="v-{}" name="action" value="edit">修正</button>'
                "</td></tr>",
                name, item.get("value"), item.get("quote") or "", link, item.get("confidence"),
                _METHOD.get(item.get("method", ""), item.get("method")), _REVIEW.get(item.get("review", ""), ""),
                name, name, name, name))
        forms = format_html_join("", '<form id="v-{}" method="post" action="{}"><input type="hidden" name="name" '
                                 'value="{}"><input type="hidden" name="csrfmiddlewaretoken" value="__CSRF__"></form>',
                                 ((name, action, name) for name in sorted(obj.variables)))
        head = ("<table><thead><tr><th>変数</th><th>値</th><th>引用と出典</th><th>信頼度</th><th>方法</th>"
                "<th>確認</th><th>操作</th></tr></thead><tbody>")
        return mark_safe(head + "".join(rows) + "</tbody></table>" + forms)

    @admin.display(description="未取得の変数")
    def missing_list(self, obj: Draft) -> str:
        return "、".join(obj.missing_variables) or "なし"

    @admin.display(description="記録されたエラー")
    def errors_list(self, obj: Draft) -> SafeString:
        return format_html_join(mark_safe("<br>"), "[{}] {} {}", ((e.get("step"), e.get("url"), e.get("message"))
                                                                 for e in obj.errors)) or mark_safe("なし")

    @admin.display(description="版の比較")
    def diff_link(self, obj: Draft) -> SafeString:
        if not obj.pk or obj.version < 2:
            return mark_safe("（比較できる版はまだありません）")
        url = reverse("admin:municipal_draft_diff", args=[obj.pk])
        return format_html('<a href="{}?a={}&b={}">第{}版と第{}版の差分を見る</a>', url, obj.version - 1, obj.version,
                           obj.version - 1, obj.version)

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        response = super().render_change_form(request, context, *args, **kwargs)
        response.render()
        from django.middleware.csrf import get_token

        response.content = response.content.replace(b"__CSRF__", get_token(request).encode())
        return response

    # --- extra views ----------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        extra = [
            path("<int:pk>/value/", self.admin_site.admin_view(self.value_view), name="municipal_draft_value"),
            path("<int:pk>/diff/", self.admin_site.admin_view(self.diff_view), name="municipal_draft_diff"),
        ]
        return extra + super().get_urls()

    def value_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST name + action (approved | rejected | edit, with value): review or edit one value."""
        item = get_object_or_404(Draft, pk=pk)
        back = HttpResponseRedirect(reverse("admin:municipal_draft_change", args=[pk]))
        if request.method != "POST" or not self.has_change_permission(request, item):
            return back
        name, action = request.POST.get("name", ""), request.POST.get("action", "")
        user = request.user.get_username()
        try:
            if action in ("approved", "rejected"):
                drafts.review_value(item, name, action, user=user)
                messages.success(request, f"{name} を{_REVIEW[action]}にしました")
            elif action == "edit":
                row = VariableDefinition.objects.filter(name=name).first()
                drafts.edit_value(item, name, request.POST.get("value", ""), spec=spec_of(row) if row else None,
                                  user=user)
                messages.success(request, f"{name} を手入力の値にしました（今後の取得で上書きされません）")
        except InvalidValue as exc:
            messages.error(request, f"{name}: {exc}")
        except KeyError:
            messages.error(request, f"{name} という変数はこの下書きにありません")
        return back

    def diff_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The values of two versions side by side, changed rows highlighted."""
        from django.template.response import TemplateResponse

        item = get_object_or_404(Draft, pk=pk)
        try:
            a, b = int(request.GET.get("a", item.version - 1)), int(request.GET.get("b", item.version))
        except ValueError:
            a, b = item.version - 1, item.version
        old = DraftVersion.objects.filter(draft=item, number=a).first()
        new = DraftVersion.objects.filter(draft=item, number=b).first()
        before, after = (old.variables if old else {}), (new.variables if new else {})
        changed = {c["variable"]: c["kind"] for c in drafts.diff(before, after)}
        labels = {"added": "追加", "changed": "変更", "removed": "削除"}
        rows = []
        for name in sorted(set(before) | set(after)):
            old_item, new_item = before.get(name) or {}, after.get(name) or {}
            rows.append({"name": name, "before": old_item.get("value"), "after": new_item.get("value"),
                         "quote": new_item.get("quote") or old_item.get("quote") or "",
                         "source": new_item.get("source_url") or old_item.get("source_url") or "",
                         "kind": labels.get(changed.get(name, ""), ""), "changed": name in changed})
        context = {**self.admin_site.each_context(request), "title": f"{item} — 第{a}版と第{b}版の差分",
                   "draft": item, "rows": rows, "a": a, "b": b, "opts": self.model._meta,
                   "back": reverse("admin:municipal_draft_change", args=[pk])}
        return TemplateResponse(request, "admin/municipal/draft_diff.html", context)
