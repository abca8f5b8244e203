"""Municipality's official domain, the catalogue seed, and draft merging: manual values stay, versions diff by value."""

from __future__ import annotations

import pytest

from hokan.core.errors import InvalidValue
from hokan.municipal import draft as drafts
from hokan.municipal.models import Draft, DraftVersion, Municipality, Service, VariableDefinition
from hokan.municipal.seed import service_variables, spec_of, sync_catalogue

pytestmark = pytest.mark.django_db


def otoineppu() -> Municipality:
    return Municipality.objects.create(lgcode="014702", slug="otoineppu", name="音威子府村", prefecture="北海道",
                                       level="village", official_url="https://www.vill.otoineppu.hokkaido.jp/")


def test_official_domain_is_its_host_plus_the_government_forms():
    m = Municipality(lgcode="182079", name="鯖江市", prefecture="福井県", level="city",
                     official_url="https://www.city.sabae.fukui.jp/")
    assert m.official_host == "city.sabae.fukui.jp" and m.site_filter() == "site:city.sabae.fukui.jp"
    for url in ("https://www.city.sabae.fukui.jp/kurashi/a.html", "https://city.sabae.fukui.jp/",
                "https://www.pref.fukui.lg.jp/doc/x.html", "https://www.vill.otoineppu.hokkaido.jp/",
                "https://www.town.kamikawa.hokkaido.jp/", "https://www.pref.iwate.jp/"):
        assert m.is_official_url(url), url
    for url in ("https://sabae-city.example.com/", "https://city.sabae.fukui.jp.evil.com/", "not a url",
                "https://www.fapscsite.com/", "https://code4fukui.github.io/opendata_env/x.pdf"):
        assert not m.is_official_url(url), url


def test_seed_creates_the_catalogue_once_and_keeps_admin_edits():
    report = sync_catalogue()
    assert report.services_created >= 40 and report.variables_created >= 200
    row = VariableDefinition.objects.get(name="kokuho_phone")
    assert row.description and row.examples and row.validation_type == "phone" and row.field == "phone"
    row.description = "編集した説明"
    row.save()
    again = sync_catalogue()
    assert (again.services_created, again.variables_created) == (0, 0)
    assert VariableDefinition.objects.get(name="kokuho_phone").description == "編集した説明"
    kokuho = Service.objects.get(key="kokuho")
    assert "kokuho_phone" in [s.name for s in service_variables(kokuho)]
    assert spec_of(VariableDefinition.objects.get(name="kokuho_phone")).description == "編集した説明"
    sync_catalogue(overwrite=True)
    assert VariableDefinition.objects.get(name="kokuho_phone").description != "編集した説明"


def value(v, url="https://www.vill.otoineppu.hokkaido.jp/kurashi/hoken_nenkin/kokuho/", method="rule"):
    return {"value": v, "raw": v, "quote": f"電話 {v}", "source_url": url, "confidence": 0.9, "method": method,
            "extracted_at": "2026-12-01T00:00:00Z", "validated": True}


def test_runs_merge_values_keep_manual_ones_and_version_only_changes():
    sync_catalogue()
    m, service = otoineppu(), Service.objects.get(key="kokuho")
    names = [s.name for s in service_variables(service)]
    first, changes = drafts.save_draft(m, service, drafts.ServiceOutcome(values={"kokuho_phone": value("01656-5-3311")}),
                                       names)
    assert first.version == 1 and changes == [{"variable": "kokuho_phone", "kind": "added", "before": None,
                                               "after": "01656-5-3311"}]
    assert "kokuho_phone" not in first.missing_variables and "kokuho_email" in first.missing_variables
    # the same values again: no new version
    same, changes = drafts.save_draft(m, service, drafts.ServiceOutcome(values={"kokuho_phone": value("01656-5-3311")}),
                                      names)
    assert same.version == 1 and changes == []
    # an editor's value is never overwritten by a run
    spec = spec_of(VariableDefinition.objects.get(name="kokuho_department"))
    drafts.edit_value(same, "kokuho_department", "住民課", spec=spec, user="editor")
    run, changes = drafts.save_draft(m, service, drafts.ServiceOutcome(values={
        "kokuho_department": value("総務課"), "kokuho_phone": value("01656-5-9999")}), names)
    assert run.variables["kokuho_department"]["value"] == "住民課"
    assert run.variables["kokuho_department"]["method"] == "manual"
    assert changes == [{"variable": "kokuho_phone", "kind": "changed", "before": "01656-5-3311",
                        "after": "01656-5-9999"}]
    versions = list(DraftVersion.objects.filter(draft=run).order_by("number").values_list("number", "reason"))
    assert versions == [(1, "run"), (2, "edit"), (3, "run")]
    # a value not found by a later run is kept
    kept, changes = drafts.save_draft(m, service, drafts.ServiceOutcome(), names)
    assert kept.variables["kokuho_phone"]["value"] == "01656-5-9999" and changes == []


def test_edits_are_validated_and_rejected_values_count_as_missing():
    sync_catalogue()
    m, service = otoineppu(), Service.objects.get(key="kokuho")
    names = [s.name for s in service_variables(service)]
    draft, _ = drafts.save_draft(m, service, drafts.ServiceOutcome(values={"kokuho_phone": value("01656-5-3311")}),
                                 names)
    with pytest.raises(InvalidValue):
        drafts.edit_value(draft, "kokuho_phone", "電話してください",
                          spec=spec_of(VariableDefinition.objects.get(name="kokuho_phone")))
    drafts.review_value(draft, "kokuho_phone", "rejected")
    draft.refresh_from_db()
    assert "kokuho_phone" in draft.missing_variables
    # the run finding the same rejected value does not bring it back
    again, changes = drafts.save_draft(m, service, drafts.ServiceOutcome(values={"kokuho_phone": value("01656-5-3311")}),
                                       names)
    assert again.variables["kokuho_phone"]["review"] == "rejected" and changes == []
    drafts.set_status(again, Draft.Status.APPROVED, user="editor")
    again.refresh_from_db()
    assert again.status == "approved" and again.reviewed_by == "editor"
    exported = again.to_export()
    assert exported["municipality_id"] == "otoineppu" and exported["service"] == "kokuho"
    assert exported["variables"]["kokuho_phone"]["source_url"].startswith("https://www.vill.otoineppu")
