"""Read-only admin for estimates and sessions: operators read prices, status and the audit diff."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from hokan.estimate.models import Estimate, EstimateSession


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty(value: Any) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


@admin.register(Estimate)
class EstimateAdmin(ReadOnlyAdmin):
    list_display = ("project_name", "status", "total_standard_yen", "total_hybrid_yen", "text_source",
                    "audit_status", "created_at")
    list_filter = ("status", "text_source", "audit_status")
    search_fields = ("id", "session__id")
    fields = ("id", "session", "status", "total_standard", "total_hybrid", "provider", "text_source",
              "audit_status", "audit_diff_pretty", "audit_warnings_pretty", "followups_pretty", "estimate_pretty",
              "calculated_pretty", "error", "created_at", "started_at", "completed_at")
    readonly_fields = fields

    @admin.display(description="プロジェクト名")
    def project_name(self, obj: Estimate) -> str:
        return str((obj.raw_json or {}).get("project_name", "—"))

    @admin.display(description="標準開発（円）", ordering="total_standard")
    def total_standard_yen(self, obj: Estimate) -> str:
        return f"¥{obj.total_standard:,}" if obj.total_standard is not None else "—"

    @admin.display(description="ハイブリッド開発（円）", ordering="total_hybrid")
    def total_hybrid_yen(self, obj: Estimate) -> str:
        return f"¥{obj.total_hybrid:,}" if obj.total_hybrid is not None else "—"

    @admin.display(description="監査による変更")
    def audit_diff_pretty(self, obj: Estimate) -> str:
        return _pretty(obj.audit_diff)

    @admin.display(description="監査の警告")
    def audit_warnings_pretty(self, obj: Estimate) -> str:
        return _pretty(obj.audit_warnings)

    @admin.display(description="後続処理")
    def followups_pretty(self, obj: Estimate) -> str:
        return _pretty(obj.followups)

    @admin.display(description="見積もり結果")
    def estimate_pretty(self, obj: Estimate) -> str:
        return _pretty(obj.raw_json)

    @admin.display(description="価格計算結果")
    def calculated_pretty(self, obj: Estimate) -> str:
        return _pretty(obj.calculated_json)


@admin.register(EstimateSession)
class EstimateSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "current_step", "features_source", "created_at", "updated_at")
    list_filter = ("status", "features_source")
    search_fields = ("id",)
    fields = ("id", "status", "current_step", "answers_pretty", "step8_features_pretty", "features_source",
              "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="回答")
    def answers_pretty(self, obj: EstimateSession) -> str:
        return _pretty(obj.answers)

    @admin.display(description="AI提案機能")
    def step8_features_pretty(self, obj: EstimateSession) -> str:
        return _pretty(obj.step8_features)
