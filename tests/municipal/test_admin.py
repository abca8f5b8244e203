"""The municipal admin: drafts with counts, per-value review and manual edit, the diff between versions,
and the pages rendered in Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hokan.municipal import draft as drafts
from hokan.municipal.models import Draft, Municipality, Service
from hokan.municipal.seed import service_variables, sync_catalogue
from tests.leads.test_admin_screens import CHROMIUM, logged_in_server, screenshot  # noqa: F401

URL = "https://www.vill.otoineppu.hokkaido.jp/kurashi/zeikin/syoumeisyo/"


def _value(v: str) -> dict:
    return {"value": v, "raw": v, "quote": f"電話：{v}", "source_url": URL, "confidence": 0.8, "method": "rule",
            "extracted_at": "2026-12-01T00:00:00Z", "validated": True}


def _draft_with_two_versions() -> Draft:
    sync_catalogue()
    m = Municipality.objects.create(lgcode="014702", slug="otoineppu", name="音威子府村", prefecture="北海道",
                                    level="village", official_url="https://www.vill.otoineppu.hokkaido.jp/")
    service = Service.objects.get(key="juminhyo")
    names = [s.name for s in service_variables(service)]
    drafts.save_draft(m, service, drafts.ServiceOutcome(values={"juminhyo_phone": _value("01656-5-3312"),
                                                                "juminhyo_department": {**_value("住民課"),
                                                                                        "quote": "住民課住民生活室"}}),
                      names)
    draft, _ = drafts.save_draft(m, service, drafts.ServiceOutcome(values={"juminhyo_phone": _value("01656-5-3399")}),
                                 names, reason="update")
    return draft


@pytest.mark.django_db
def test_review_edit_and_diff_in_the_admin(admin_client):
    draft = _draft_with_two_versions()
    listing = admin_client.get("/admin/municipal/draft/").content.decode()
    assert "音威子府村" in listing and "取得" in listing and "未取得" in listing
    page = admin_client.get(f"/admin/municipal/draft/{draft.pk}/change/").content.decode()
    assert "電話：01656-5-3399" in page and URL in page and "第1版と第2版の差分を見る" in page
    assert "__CSRF__" not in page
    value_url = f"/admin/municipal/draft/{draft.pk}/value/"
    admin_client.post(value_url, {"name": "juminhyo_phone", "action": "approved"})
    assert Draft.objects.get().variables["juminhyo_phone"]["review"] == "approved"
    bad = admin_client.post(value_url, {"name": "juminhyo_phone", "action": "edit", "value": "お問い合わせください"},
                            follow=True)
    assert Draft.objects.get().variables["juminhyo_phone"]["value"] == "01656-5-3399"
    assert "juminhyo_phone" in bad.content.decode()
    admin_client.post(value_url, {"name": "juminhyo_phone", "action": "edit", "value": "01656-5-3311"})
    edited = Draft.objects.get()
    assert edited.variables["juminhyo_phone"]["method"] == "manual" and edited.version == 3
    diff = admin_client.get(f"/admin/municipal/draft/{draft.pk}/diff/?a=1&b=2").content.decode()
    assert 'class="changed"' in diff and "<del>01656-5-3312</del>" in diff and "01656-5-3399" in diff
    assert "第1版と第2版の差分" in diff


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-packages.txt)")
def test_the_draft_and_diff_pages_render_in_chromium(logged_in_server, tmp_path):  # noqa: F811
    from PIL import Image

    draft = _draft_with_two_versions()
    folder = Path(os.environ.get("HOKAN_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in {"admin_municipal_draft": f"/admin/municipal/draft/{draft.pk}/change/",
                       "admin_municipal_diff": f"/admin/municipal/draft/{draft.pk}/diff/?a=1&b=2"}.items():
        image = Image.open(screenshot(logged_in_server + path, folder / f"{name}.png")).convert("RGB")
        assert image.size[0] == 1400
        assert len(image.getcolors(1_000_000) or []) > 50, name  # text and tables, not a blank or error page
    highlighted = Image.open(folder / "admin_municipal_diff.png").convert("RGB")
    assert any(abs(r - 255) < 3 and abs(g - 243) < 3 and abs(b - 176) < 3 for _, (r, g, b) in
               highlighted.getcolors(1_000_000) or [])  # the changed row's yellow (#fff3b0)
