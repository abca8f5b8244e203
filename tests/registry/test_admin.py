"""The 企業台帳 admin: list with search and filters, a change page with the evidence table."""

from __future__ import annotations

import pytest

from hokan.registry.models import CompanyRecord

pytestmark = pytest.mark.django_db


def test_it_lists_searches_and_filters_records(admin_client, shared_registry):
    page = admin_client.get("/admin/registry/companyrecord/", {"q": "E00004"})
    assert page.status_code == 200
    assert "カネコ種苗株式会社" in page.content.decode()
    page = admin_client.get("/admin/registry/companyrecord/", {"source__exact": "gbizinfo_csv", "q": "インターセック"})
    assert "株式会社インターセック" in page.content.decode()
    assert "企業台帳" in page.content.decode()


def test_it_shows_the_source_of_each_value_and_has_no_add_button(admin_client, shared_registry):
    record = CompanyRecord.objects.get(corporate_number="5070001000715")
    page = admin_client.get(f"/admin/registry/companyrecord/{record.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "資本金 1491（百万円）" in html
    assert "https://disclosure2.edinet-fsa.go.jp/#E00004" in html
    assert admin_client.get("/admin/registry/companyrecord/add/").status_code == 403
