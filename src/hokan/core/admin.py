"""Core admin: API keys and the usage page (issue 3 §3, §4), in Japanese.

- APIキー: create a key (its full text is shown once, on the page after saving; only its
  SHA-256 is stored), deactivate it, see when it was last used.
- 月間使用量: the usage page instead of a row list — for every ledger scope (app), this month's
  calls and cost against its limits and today's records against its daily limit
  (``budget.snapshots()``), then the sections apps add (the leads app: its recent runs).

core never imports an app: an app adds a section to the usage page with
``register_usage_section(template, context)`` from its own admin module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from hokan.core.api_keys import KEY_PREFIX, ApiKey, new_key_material
from hokan.core.budget import setting_names, snapshots
from hokan.core.models import UsageMonth


@dataclass(frozen=True)
class UsageSection:
    """A section an app adds below the meters of the usage page.

    template: a template name (in the app's templates/); context(request) -> its context dict.
    """

    template: str
    context: Callable[[HttpRequest], dict[str, Any]]


USAGE_SECTIONS: list[UsageSection] = []


def register_usage_section(template: str, context: Callable[[HttpRequest], dict[str, Any]]) -> None:
    """Add a section to the usage page (called from an app's admin.py; once per template)."""
    if not any(section.template == template for section in USAGE_SECTIONS):
        USAGE_SECTIONS.append(UsageSection(template, context))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "shown_prefix", "active", "created_at", "last_used_at")
    list_filter = ("active",)
    search_fields = ("name", "prefix")
    readonly_fields = ("shown_prefix", "created_at", "last_used_at")

    @admin.display(description="キー（先頭のみ）")
    def shown_prefix(self, key: ApiKey) -> str:
        return f"{KEY_PREFIX}{key.prefix}_…" if key.prefix else "保存時に発行されます"

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "active")
        return ("name", "shown_prefix", "active", "created_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            # Generate like ApiKey.generate, but on the admin's object so the admin logs it.
            obj.prefix, obj.hashed_key, raw_key = new_key_material()
            request._hokan_new_api_key = raw_key  # type: ignore[attr-defined]  # shown once by response_add
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        raw_key = getattr(request, "_hokan_new_api_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "title": "APIキーを発行しました", "key": obj,
                   "raw_key": raw_key, "opts": self.opts}
        response = TemplateResponse(request, "admin/core/apikey/created.html", context)
        response["Cache-Control"] = "no-store"  # the key must not stay in any cache
        return response


@admin.register(UsageMonth)
class UsageAdmin(admin.ModelAdmin):
    """The usage page, reached from the admin index as 「月間使用量」."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        scopes, unreadable = [], ""
        try:
            snaps = snapshots()
        except redis.exceptions.RedisError as exc:
            snaps, unreadable = [], f"Redis に接続できないため使用量を表示できません（{type(exc).__name__}）。"
        for snap in snaps:
            reserved_calls = f"（処理中 {snap.reserved_calls:,} 件）" if snap.reserved_calls else ""
            reserved_cost = f"（処理中 ${snap.reserved_cost_usd:,.2f}）" if snap.reserved_cost_usd else ""
            meters = [
                ("今月の API 呼び出し数", f"{snap.calls:,} 件{reserved_calls}", f"{snap.call_limit:,} 件",
                 f"{snap.remaining_calls:,} 件", _percent(snap.calls + snap.reserved_calls, snap.call_limit)),
                ("今月の API コスト", f"${snap.cost_usd:,.2f}{reserved_cost}", f"${snap.cost_limit_usd:,.2f}",
                 f"${snap.remaining_cost_usd:,.2f}",
                 _percent(snap.cost_usd + snap.reserved_cost_usd, snap.cost_limit_usd)),
                ("今日の処理件数", f"{snap.records_today:,} 件", f"{snap.daily_record_limit:,} 件／日",
                 f"{snap.remaining_records_today:,} 件", _percent(snap.records_today, snap.daily_record_limit)),
            ]
            names = setting_names(snap.scope)
            scopes.append({"snap": snap, "meters": meters, "closed": snap.call_limit == 0 or snap.cost_limit_usd == 0,
                           "settings": f"{names['cost']} / {names['calls']}"})
        sections = [SafeString(render_to_string(section.template, section.context(request), request))
                    for section in USAGE_SECTIONS]
        context = {
            **self.admin_site.each_context(request),
            "title": "使用量（今月・今日）",
            "opts": self.opts,
            "snap": scopes[0]["snap"] if scopes else None,
            "scopes": scopes,
            "unreadable": unreadable,
            "sections": sections,
        }
        return TemplateResponse(request, "admin/core/usage.html", context)


def _percent(used: Any, limit: Any) -> float:
    """Share of ``limit`` used, 0-100 (one decimal)."""
    if not limit:
        return 0.0
    return min(100.0, round(float(used) * 100 / float(limit), 1))
