"""URL configuration: the admin for now; each app adds its API router here."""

from django.contrib import admin
from django.urls import path

admin.site.site_header = "hokan 管理画面"
admin.site.site_title = "hokan"
admin.site.index_title = "データ補完の管理"

urlpatterns = [
    path("admin/", admin.site.urls),
]
