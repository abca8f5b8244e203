"""URL configuration: the admin for now; each app adds its API router here."""

from django.contrib import admin
from django.urls import path

admin.site.site_header = "hokan 管理画面"
admin.site.site_title = "hokan"
admin.site.index_title = "データ補完の管理"

from hokan.estimate.api import api as estimate_api  # noqa: E402
from hokan.leads.api import api as leads_api  # noqa: E402

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/scoring/", __import__("hokan.scoring.api", fromlist=["api"]).api.urls),  # scoring (S1): jobs create/status/resume/cancel/results
    # /api/leads, /api/runs/{id}, /api/usage, /api/docs (issue 3 §4); namespace "leads-api".
    path("api/", leads_api.urls),
    path("api/", __import__("hokan.municipal.api", fromlist=["api"]).api.urls),  # municipal (M1): /api/municipal/..., /api/admin/pdf/ocr
    path("api/v1/external/", __import__("hokan.knowledge.api", fromlist=["api"]).api.urls),  # knowledge (K2): analysis/store, sales/screenshot, retrieve, stats, livers, feedback
    # /api/v1/estimate/... and /health (design document 004 §3); its own Ninja namespace.
    path("", estimate_api.urls),
]
