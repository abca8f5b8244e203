"""Free-tier quotas of a municipal run (document 003 §5.3) on the usage ledger: per provider,
atomic, never passed by concurrent processes; the chain falls back when a quota is used up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from hokan.core.budget import get_ledger, local_today
from hokan.core.errors import BudgetExceeded, InputError
from hokan.core.llm import JsonRequest, OpenAICompatClient
from hokan.core.search.quota import scope_of
from hokan.municipal.quotas import FREE_TIERS, MunicipalQuotas, pages_per_service
from tests.fakes.brave_server import FakeBraveServer
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.servers import redis_available, redis_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE = "www.vill.otoineppu.hokkaido.jp"


def test_pages_per_service_and_modes(settings) -> None:
    settings.HOKAN_MUNICIPAL_PAGES_PER_SERVICE = 7
    assert (pages_per_service("default"), pages_per_service("conservative"), pages_per_service("")) == (5, 2, 7)
    assert MunicipalQuotas("conservative").pages_per_service == 2 and MunicipalQuotas().mode == ""
    with pytest.raises(InputError, match="default か conservative"):
        MunicipalQuotas("unlimited")


@pytest.mark.django_db
def test_llm_calls_per_day_stop_at_the_free_tier_and_start_again_the_next_day() -> None:
    today = local_today()
    quotas = MunicipalQuotas("conservative", today=today)
    for index in range(FREE_TIERS["conservative"].llm_per_day):
        quotas.claim_llm_call(f"call-{index}")
    quotas.claim_llm_call("call-0")  # a retried call is not counted twice
    with pytest.raises(BudgetExceeded) as caught:
        quotas.claim_llm_call("one-more")
    assert caught.value.ledger_scope == "municipal" and caught.value.scope == "daily_records"
    MunicipalQuotas("conservative", today=today + dt.timedelta(days=1)).claim_llm_call("one-more")
    MunicipalQuotas("", today=today).claim_llm_call("paid mode: the monthly budget decides")


@pytest.mark.django_db
def test_ocr_runs_are_claimed_per_document_and_given_back_on_failure() -> None:
    quotas = MunicipalQuotas("conservative")
    with quotas.ocr(key="sha256-a") as new:
        assert new
    with quotas.ocr(key="sha256-a") as new:  # the same document: counted once
        assert not new
    with pytest.raises(RuntimeError), quotas.ocr(key="sha256-b"):
        raise RuntimeError("OCR engine crashed")
    snapshot = get_ledger("municipal_ocr").snapshot()
    assert (snapshot.calls, snapshot.reserved_calls) == (1, 0)


@pytest.mark.django_db
@pytest.mark.slow
def test_a_free_tier_search_falls_back_when_brave_s_month_is_used_up(settings) -> None:
    """Brave's conservative 100/month: 99 used already, one search passes, the next goes to the
    snapshot index; Perplexity (no free tier) is never sent a request."""
    with FakeBraveServer(api_key="brave-key") as brave:
        brave.add(f"https://{SITE}/kurashi/hoken_nenkin/kokuho/", "国民健康保険について", "国民健康保険 住民課")
        settings.BRAVE_SEARCH_API_KEY, settings.SEARCH_BRAVE_BASE_URL = "brave-key", brave.base_url
        settings.PERPLEXITY_API_KEY, settings.SEARCH_PERPLEXITY_BASE_URL = "pplx-key", "http://127.0.0.1:9"
        settings.GOOGLE_CUSTOM_SEARCH_API_KEY = ""
        settings.SEARCH_RATE_LIMIT_PER_MIN = 0
        settings.SEARCH_CACHE_TTL_S = 0  # the same query twice: without the cache, both ask a provider
        quotas = MunicipalQuotas("conservative")
        ledger = quotas.search_quota().ledger("brave")
        for index in range(99):
            ledger.commit(ledger.reserve(cost_usd=Decimal("0"), key=f"earlier:{index}"), cost_usd=Decimal("0"))
        with quotas.search() as search:
            assert search.names == ["brave", "perplexity", "snapshot"]
            first = search.run("国民健康保険", site=SITE)
            second = search.run("国民健康保険", site=SITE)
    assert first.provider == "brave" and len(brave.requests) == 1
    assert second.provider == "snapshot"
    reasons = {a.provider: a.reason for a in second.attempts}
    assert "上限 100 件" in reasons["brave"] and "上限 0 件" in reasons["perplexity"]
    assert get_ledger(scope_of("brave")).snapshot().calls == 100


@pytest.mark.django_db
def test_the_free_tier_llm_wrapper_claims_before_each_call() -> None:
    with FakeOpenAIServer(api_key="test-key") as server:
        server.enqueue(*[Reply.json({"ok": True})] * 3)
        client = OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, timeout_s=5,
                                    sleep=lambda s: None)
        quotas = MunicipalQuotas("conservative")
        limited = quotas.limit_llm(client)
        request = JsonRequest(system="s", user="u", schema={"type": "object", "properties": {}}, schema_name="t")
        limit = FREE_TIERS["conservative"].llm_per_day
        for index in range(limit - 2):
            quotas.claim_llm_call(f"earlier-{index}")
        limited.complete_json(request)
        limited.complete_json(request)
        with pytest.raises(BudgetExceeded):
            limited.complete_json(request)
        assert len(server.requests) == 2  # the refused call was never sent
    assert MunicipalQuotas("").limit_llm(client) is client


@pytest.mark.slow
def test_concurrent_processes_never_pass_a_free_tier_quota(tmp_path: Path) -> None:
    _check_concurrent_workers(dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", REDIS_URL="",
                                   DATABASE_URL=f"sqlite:///{tmp_path / 'quotas.sqlite3'}"))


@pytest.mark.slow
@pytest.mark.skipif(not redis_available(), reason="redis-server is not installed (apt-packages.txt)")
def test_concurrent_processes_never_pass_a_free_tier_quota_in_redis(tmp_path: Path) -> None:
    with redis_server() as url:
        # every quota lives in Redis (Lua scripts): the workers never touch the database
        _check_concurrent_workers(dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", REDIS_URL=url,
                                       DATABASE_URL=f"sqlite:///{tmp_path / 'absent.sqlite3'}"), migrate=False)


def _check_concurrent_workers(env: dict[str, str], *, migrate: bool = True) -> None:
    if migrate:
        subprocess.run([sys.executable, "-m", "django", "migrate", "--verbosity", "0"], cwd=REPO_ROOT, env=env,
                       check=True)
    workers, attempts = 3, 40
    procs = [subprocess.Popen([sys.executable, "-m", "tests.municipal.quota_worker", str(w), str(attempts),
                               "conservative"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(workers)]
    granted = {"brave": 0, "google": 0, "llm": 0, "ocr": 0}
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        for kind, count in json.loads(out.strip().splitlines()[-1]).items():
            granted[kind] += count
    tier = FREE_TIERS["conservative"]
    # every quota was asked for more than it holds (3 × 40 = 120) and granted exactly its size
    assert granted == {"brave": tier.brave_per_month, "google": tier.google_per_day, "llm": tier.llm_per_day,
                       "ocr": tier.ocr_per_month}
    probe = subprocess.run(
        [sys.executable, "-c",
         "import django, json; django.setup();"
         "from hokan.core.budget import get_ledger;"
         "s = {x: get_ledger(x).snapshot() for x in ('search_brave', 'search_google', 'municipal_ocr', 'municipal')};"
         "print(json.dumps({x: [v.calls, v.reserved_calls, v.records_today] for x, v in s.items()}))"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True)
    usage = json.loads(probe.stdout.strip().splitlines()[-1])
    assert usage["search_brave"][:2] == [tier.brave_per_month, 0]
    assert usage["search_google"] == [tier.google_per_day, 0, tier.google_per_day]
    assert usage["municipal_ocr"][:2] == [tier.ocr_per_month, 0]
    assert usage["municipal"][2] == tier.llm_per_day


@pytest.mark.django_db
def test_a_cache_hit_claims_no_free_tier_call(settings) -> None:
    # The free-tier claim sits under the LLM cache (flow.llm_client(quotas)): the second, identical
    # request is answered from the cache, reaches no provider and costs none of the day's calls.
    from hokan.municipal import flow

    with FakeOpenAIServer(api_key="test-key") as server:
        server.enqueue(Reply.json({"ok": True}))
        settings.REDIS_URL = ""
        settings.HOKAN_LLM_CACHE_ENABLED = True
        settings.HOKAN_LLM_PROVIDER, settings.OPENAI_API_KEY = "openai", "test-key"
        settings.HOKAN_LLM_BASE_URL, settings.HOKAN_LLM_MODEL = server.base_url, "gpt-4o-mini"
        quotas = MunicipalQuotas("conservative")
        limit = FREE_TIERS["conservative"].llm_per_day
        for index in range(limit - 1):  # one call of the day left
            quotas.claim_llm_call(f"earlier-{index}")
        client = flow.llm_client(quotas)
        request = JsonRequest(system="s", user="同じ質問", schema={"type": "object", "properties": {}},
                              schema_name="t", idempotency_key="municipal:test:1")
        first = client.complete_json(request)
        # the same question in a later run (a new idempotency key), answered from the cache: the
        # day's quota is not asked (it was, before: the claim sat above the cache)
        second = client.complete_json(dataclasses.replace(request, idempotency_key="municipal:test:rerun"))
        assert first.data == second.data == {"ok": True} and len(server.requests) == 1
        with pytest.raises(BudgetExceeded):  # a new question would need a call, and none is left
            client.complete_json(JsonRequest(system="s", user="別の質問", schema={"type": "object", "properties": {}},
                                             schema_name="t", idempotency_key="municipal:test:2"))
        assert len(server.requests) == 1
