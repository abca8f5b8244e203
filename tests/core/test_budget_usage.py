"""``hokan usage`` and the admin usage page: every ledger scope against its limits, in Japanese;
a clear message (exit 2, no traceback) when Redis is down (issue 8 §3)."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hokan.core.budget import SCOPE_LABELS, SCOPES, get_ledger
from hokan.core.budget_command import usage
from tests.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(usage)
    return app


@pytest.fixture
def used(settings, db):
    """Usage in two scopes on the database ledger: leads at its call limit, estimate in use,
    scoring closed (limit 0)."""
    settings.REDIS_URL = ""
    settings.POWERPLEXY_MONTHLY_CALL_LIMIT = 2
    settings.POWERPLEXY_DAILY_RECORD_LIMIT = 10
    settings.HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT = 40
    settings.HOKAN_ESTIMATE_MONTHLY_COST_LIMIT_USD = Decimal("12.5")
    settings.HOKAN_SCORING_MONTHLY_CALL_LIMIT = 0
    leads, estimate = get_ledger("leads"), get_ledger("estimate")
    for number in range(2):
        leads.commit(leads.reserve(cost_usd=Decimal("0.05"), key=f"lead:{number}"), cost_usd=Decimal("0.04"))
        leads.claim_record(f"lead:{number}")
    estimate.commit(estimate.reserve(cost_usd=Decimal("0.05"), key="estimate:1"), cost_usd=Decimal("0.031"))
    estimate.reserve(cost_usd=Decimal("0.05"), key="estimate:2")  # in flight


def test_hokan_usage_shows_every_scope_against_its_limits(used):
    result = CliRunner().invoke(_cli(), [], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {scope: next(line for line in result.output.splitlines() if f"({scope})" in line) for scope in SCOPES}
    for scope in SCOPES:
        assert SCOPE_LABELS[scope] in lines[scope]
    leads = lines["leads"].split("│")
    assert [cell.strip() for cell in leads[2:6]] == ["2", "0", "2", "0"] and "$0.08" in lines["leads"]
    assert "2 / 10" in lines["leads"] and "上限到達" in lines["leads"]
    estimate = [cell.strip() for cell in lines["estimate"].split("│")]
    assert estimate[2:10] == ["1", "1", "40", "38", "$0.03", "$0.05", "$12.50", "$12.42"]
    assert "利用可" in lines["estimate"]
    assert "停止（上限 0）" in lines["scoring"]
    assert "API 使用量" in result.output and "POWERPLEXY_MONTHLY_CALL_LIMIT" in result.output


def test_hokan_usage_explains_a_bad_limit_setting(used, settings):
    settings.HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD = "-5"
    result = CliRunner().invoke(_cli(), [], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD" in result.output and "使えません" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_hokan_usage_with_redis_down_says_so_in_japanese_and_exits_2(tmp_path):
    dead = f"redis://:secret-password@127.0.0.1:{free_port()}/0"  # nothing listens there
    env = dict(os.environ, HOKAN_DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               REDIS_URL=dead, COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "hokan", "usage"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert "使用量を読めません" in done.stderr and "Redis" in done.stderr and "REDIS_URL" in done.stderr
    assert "secret-password" not in done.stderr  # the URL is shown without its password


def test_the_admin_usage_page_shows_every_scope(admin_client, used):
    page = admin_client.get("/admin/core/usagemonth/").content.decode()
    for scope in SCOPES:
        assert SCOPE_LABELS[scope] in page and f'id="hokan-usage-{scope}-1"' in page
    for words in ("$0.03（処理中 $0.05）", "$12.50", "38 件", "40 件",
                  "スコアリング: 上限が 0 のため", "営業リスト補完: 今月の上限に達しました",
                  "最近の補完の実行"):  # the leads app's section (registered by leads/admin.py)
        assert words in page, words


def test_the_admin_usage_page_says_when_redis_is_down(admin_client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = admin_client.get("/admin/core/usagemonth/")
    assert response.status_code == 200
    assert "Redis に接続できないため使用量を表示できません" in response.content.decode()
