"""``hokan estimate quote ANSWERS.json`` prints the engine's calculated_data; ``cleanup`` deletes old rows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from typer.testing import CliRunner

from hokan.estimate import pricing
from hokan.estimate.cleanup import delete_expired
from hokan.estimate.command import app
from hokan.estimate.models import Estimate, EstimateSession
from hokan.estimate.sanitizer import sanitize

runner = CliRunner()


def test_it_prints_the_same_calculation_as_the_api(tmp_path):
    answers = {"step_1": "corporation", "step_2": "healthcare", "step_3": "21-50", "step_4": "予約を電話で受けています",
               "step_5": "internal", "step_6": "web_app", "step_7": "new",
               "step_8": "reservation_management, ai_triage", "step_9": "asap", "step_10": "both",
               "step_11": "1m_3m", "step_12": "", "step_8_categories": {"ai_triage": "AIチャットボット"}}
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["quote", str(path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    categories = answers.pop("step_8_categories")
    assert printed == json.loads(json.dumps(pricing.calculate(sanitize(answers, categories)), ensure_ascii=False))
    assert [f["category"] for f in printed["features"]] == ["カレンダー・スケジュール", "AIチャットボット"]


def test_it_explains_an_unreadable_file_in_japanese(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{broken", encoding="utf-8")
    result = runner.invoke(app, ["quote", str(path)])
    assert result.exit_code == 2
    assert "JSONとして読めません" in result.output


@pytest.mark.parametrize(("change", "step"), [
    ({"8": 5}, "8"), ({"step_8": True}, "8"), ({"2": ["manufacturing"]}, "2"), ({"3": 21}, "3"),
    ({"4": {"text": "x"}}, "4"), ({"11": "lots"}, "11"),
])
def test_it_exits_2_naming_the_step_for_a_value_of_the_wrong_type(tmp_path, change, step):
    """Issue 9 §3: ``{"8": 5}`` crashed ``hokan estimate quote`` (``list(5)`` in the engine)."""
    answers = {"step_1": "corporation", "step_2": "retail", "step_3": "6_20", **change}
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["quote", str(path)])
    assert result.exit_code == 2, result.output
    assert f"ステップ{step}「" in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_it_exits_2_for_step_8_categories_that_are_not_an_object(tmp_path):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"step_1": "corporation", "step_8_categories": ["AIチャットボット"]}), encoding="utf-8")
    result = runner.invoke(app, ["quote", str(path)])
    assert result.exit_code == 2
    assert "step_8_categories" in result.output


@pytest.mark.django_db
def test_it_deletes_sessions_and_estimates_past_the_ttl(settings):
    old = EstimateSession.objects.create()
    Estimate.objects.create(session=old, status="completed")
    fresh = EstimateSession.objects.create()
    EstimateSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=32))
    EstimateSession.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(days=30))
    assert delete_expired() == (1, 1)
    assert list(EstimateSession.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.django_db
def test_it_shows_estimates_read_only_in_the_admin(admin_client, answers):
    from hokan.estimate.generate import generate_estimate
    from hokan.estimate.answers import clean_answers

    session = EstimateSession.objects.create(answers=clean_answers(answers))
    estimate = generate_estimate(session.pk)
    listing = admin_client.get("/admin/estimate/estimate/")
    assert listing.status_code == 200 and f"¥{estimate.total_standard:,}" in listing.content.decode()
    detail = admin_client.get(f"/admin/estimate/estimate/{estimate.pk}/change/")
    assert detail.status_code == 200 and "監査による変更" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.get("/admin/estimate/estimate/add/").status_code == 403
    assert admin_client.get(f"/admin/estimate/estimatesession/{session.pk}/change/").status_code == 200


def test_it_is_wired_into_the_hokan_command(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"step_1": "sole_proprietor", "step_2": "retail", "step_3": "1_5",
                                "step_8": ["ec_site", "inventory_management", "point_card"], "step_11": "under_500k"}),
                    encoding="utf-8")
    env = {**os.environ, "HOKAN_DATA_DIR": str(tmp_path / "data"), "DJANGO_SETTINGS_MODULE": "hokan.settings"}
    out = subprocess.run([sys.executable, "-m", "hokan", "estimate", "quote", str(path)], env=env, capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-1000:]
    printed = json.loads(out.stdout)
    assert printed["multiplier"] == 0.85
    assert printed["total_hybrid"] == sum(f["hybrid_price"] for f in printed["features"])
    assert printed["budget_status"] == "significantly_over"
