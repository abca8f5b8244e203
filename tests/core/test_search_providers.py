"""The web search APIs (hokan.core.search) against local fakes speaking each wire format:
parsing, the auth header, 429 with Retry-After, 5xx, hangs, broken JSON, the fallback chain,
the ledger quota and Google CSE's end on 2027-01-01."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hokan.core.budget import get_ledger
from hokan.core.errors import (
    BudgetExceeded,
    SearchConfigError,
    SearchFailed,
    SearchRequestError,
    SearchUnavailable,
)
from hokan.core.search import (
    GOOGLE_CSE_END,
    BraveSearch,
    FallbackSearch,
    GoogleCustomSearch,
    LedgerQuota,
    PerplexitySearch,
    ProviderQuota,
    search_from_settings,
)
from tests.fakes.brave_server import FakeBraveServer
from tests.fakes.google_cse_server import FakeGoogleCSEServer, google_error
from tests.fakes.perplexity_search_server import FakePerplexitySearchServer

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SITE = "www.town.example.lg.jp"
GOMI = f"https://{SITE}/kurashi/gomi/sodai.html"
KOKUHO = f"https://{SITE}/kurashi/kokuho/index.html"
ELSEWHERE = "https://www.example.com/matome/gomi.html"


def _fill(server) -> None:
    server.add(GOMI, "粗大ごみの出し方｜例町", "粗大ごみは1点300円の処理券を貼って出してください")
    server.add(KOKUHO, "国民健康保険｜例町", "国民健康保険の加入・脱退は住民課で")
    server.add(ELSEWHERE, "粗大ごみまとめ", "粗大ごみの料金比較")


@pytest.fixture
def brave():
    with FakeBraveServer(api_key="brave-key") as server:
        _fill(server)
        yield server


@pytest.fixture
def perplexity():
    with FakePerplexitySearchServer(api_key="pplx-key") as server:
        _fill(server)
        yield server


@pytest.fixture
def google():
    with FakeGoogleCSEServer(api_key="g-key", engine_id="g-cx") as server:
        _fill(server)
        yield server


def _brave(server, **kwargs) -> BraveSearch:
    kwargs.setdefault("max_wait_s", 5)
    return BraveSearch(api_key=kwargs.pop("api_key", "brave-key"), base_url=server.base_url, rate_per_min=0, **kwargs)


def _perplexity(server, **kwargs) -> PerplexitySearch:
    return PerplexitySearch(api_key=kwargs.pop("api_key", "pplx-key"), base_url=server.base_url, rate_per_min=0,
                            **kwargs)


def _google(server, *, today=GOOGLE_CSE_END - dt.timedelta(days=30), **kwargs) -> GoogleCustomSearch:
    return GoogleCustomSearch(api_key=kwargs.pop("api_key", "g-key"), engine_id="g-cx", base_url=server.base_url,
                              rate_per_min=0, today=lambda: today, **kwargs)


# --- parsing and the request each API expects ---------------------------------------------------
def test_brave_sends_japan_parameters_and_the_token_and_parses_web_results(brave) -> None:
    with _brave(brave) as provider:
        results = provider.search("粗大ごみ 出し方", site=SITE, count=5)
    assert [(r.url, r.title, r.provider, r.rank) for r in results] == [(GOMI, "粗大ごみの出し方｜例町", "brave", 1)]
    assert results[0].snippet == "粗大ごみは1点300円の処理券を貼って出してください"  # <strong> removed
    request = brave.requests[0]
    assert request.path == "/res/v1/web/search" and request.headers["x-subscription-token"] == "brave-key"
    assert request.query["q"] == [f"粗大ごみ 出し方 site:{SITE}"]
    assert (request.query["country"], request.query["search_lang"], request.query["ui_lang"]) == (["JP"], ["jp"], ["ja-JP"])
    assert request.query["count"] == ["5"]


def test_perplexity_posts_the_domain_and_language_filters_and_parses_results(perplexity) -> None:
    with _perplexity(perplexity) as provider:
        results = provider.search(f"国民健康保険 site:{SITE}", count=30)
    assert [(r.url, r.provider) for r in results] == [(KOKUHO, "perplexity")]
    body = perplexity.requests[0].body
    assert perplexity.requests[0].headers["authorization"] == "Bearer pplx-key"
    assert body == {"query": "国民健康保険", "max_results": 20, "country": "JP", "search_language_filter": ["ja"],
                    "search_domain_filter": [SITE]}


def test_google_sends_key_cx_lang_and_site_and_parses_items(google) -> None:
    with _google(google) as provider:
        results = provider.search("粗大ごみ", site=SITE)
        assert provider.search("存在しない言葉") == []  # no "items" key: 0 results
    assert [(r.url, r.provider) for r in results] == [(GOMI, "google")]
    query = google.requests[0].query
    assert (query["key"], query["cx"], query["lr"], query["gl"]) == (["g-key"], ["g-cx"], ["lang_ja"], ["jp"])
    assert (query["siteSearch"], query["siteSearchFilter"], query["num"]) == ([SITE], ["i"], ["10"])


def test_results_off_the_site_or_with_bad_urls_are_dropped(brave) -> None:
    brave.add("javascript:alert(1)", "粗大ごみ", "x")
    brave.add(f"https://evil.example/{SITE}/", "粗大ごみ", "x")
    with _brave(brave) as provider:
        everywhere = provider.search("粗大ごみ")
        official = provider.search("粗大ごみ", site=SITE)
    assert [r.url for r in everywhere] == [GOMI, ELSEWHERE, f"https://evil.example/{SITE}/"]
    assert [r.url for r in official] == [GOMI]


# --- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("make,fake_fixture", [("_brave", "brave"), ("_perplexity", "perplexity"),
                                                ("_google", "google")])
def test_a_wrong_key_is_a_request_error_naming_the_key(make, fake_fixture, request) -> None:
    server = request.getfixturevalue(fake_fixture)
    with globals()[make](server, api_key="wrong") as provider:
        with pytest.raises(SearchRequestError, match="API キーを拒否しました") as caught:
            provider.search("粗大ごみ")
    assert len(server.requests) == 1 and caught.value.provider == provider.name


def test_a_missing_key_is_a_config_error_before_any_request() -> None:
    with pytest.raises(SearchConfigError, match="BRAVE_SEARCH_API_KEY"):
        BraveSearch(api_key="", base_url="http://127.0.0.1:9")
    with pytest.raises(SearchConfigError, match="GOOGLE_CUSTOM_SEARCH_ENGINE_ID"):
        GoogleCustomSearch(api_key="k", engine_id="", base_url="http://127.0.0.1:9")


# --- 429 / 5xx / hang / broken JSON ---------------------------------------------------------------
def test_a_429_within_the_wait_is_retried_after_its_retry_after(brave) -> None:
    brave.fail_next(1, status=429, retry_after="0")
    with _brave(brave) as provider:
        assert [r.url for r in provider.search("粗大ごみ", site=SITE)] == [GOMI]
    assert len(brave.requests) == 2


def test_a_long_retry_after_blocks_the_provider_for_every_caller(brave) -> None:
    brave.fail_next(1, status=429, retry_after="120")
    with _brave(brave) as first, _brave(brave) as second:
        with pytest.raises(SearchUnavailable) as caught:
            first.search("粗大ごみ")
        assert caught.value.retry_after_s == 120 and caught.value.status_code == 429
        with pytest.raises(SearchUnavailable, match="利用制限中") as blocked:  # the shared block: nothing sent
            second.search("粗大ごみ")
    assert blocked.value.retry_after_s is not None and blocked.value.retry_after_s > 100
    assert len(brave.requests) == 1


def test_google_quota_403_is_transient_and_5xx_is_retried(google) -> None:
    google.fail_next(1, status=403, retry_after="0", body=google_error(403, "dailyLimitExceeded"))
    google.fail_next(1, status=503)
    with _google(google) as provider:
        assert [r.url for r in provider.search("粗大ごみ", site=SITE)] == [GOMI]
    google.fail_next(3, status=500)
    with _google(google, max_retries=2) as provider, pytest.raises(SearchUnavailable, match="サーバーエラー"):
        provider.search("粗大ごみ")
    assert len(google.requests) == 6


def test_a_hung_provider_times_out_and_broken_json_is_unavailable(perplexity) -> None:
    perplexity.hang_next(1)
    with _perplexity(perplexity, timeout_s=0.5) as provider:
        with pytest.raises(SearchUnavailable, match="タイムアウト"):
            provider.search("粗大ごみ")
    perplexity.broken_next(1)
    with _perplexity(perplexity) as provider, pytest.raises(SearchUnavailable, match="JSON ではありません"):
        provider.search("粗大ごみ")


# --- the chain ----------------------------------------------------------------------------------
def test_the_chain_falls_back_on_zero_results_and_on_errors(brave, perplexity, google) -> None:
    brave.empty()
    perplexity.fail_next(1, status=500, retry_after=None)
    chain = FallbackSearch([_brave(brave), _perplexity(perplexity, max_retries=0), _google(google)])
    with chain:
        outcome = chain.run("粗大ごみ", site=SITE)
    assert [r.url for r in outcome.results] == [GOMI] and outcome.provider == "google"
    assert [(a.provider, a.outcome) for a in outcome.attempts] == [("brave", "empty"), ("perplexity", "error"),
                                                                    ("google", "ok")]
    assert "HTTP 500" in outcome.attempts[1].reason


def test_every_provider_failing_is_one_error_listing_each_reason(brave, perplexity, google) -> None:
    brave.fail_next(1, status=429, retry_after="600")
    perplexity.empty()
    chain = FallbackSearch([_brave(brave), _perplexity(perplexity), _google(google, api_key="wrong")])
    with chain, pytest.raises(SearchFailed) as caught:
        chain.run("粗大ごみ")
    failures = dict(caught.value.failures)
    assert list(failures) == ["brave", "perplexity", "google"]
    assert "HTTP 429" in failures["brave"] and failures["perplexity"] == "0件" and "API キー" in failures["google"]
    assert all(reason in str(caught.value) for reason in failures.values())


# --- the ledger quota ---------------------------------------------------------------------------
def test_the_quota_is_claimed_before_sending_and_only_answered_calls_count(brave, perplexity) -> None:
    quota = LedgerQuota({"brave": ProviderQuota(monthly_calls=2)})
    brave.fail_next(1, status=429, retry_after="0")  # not billed: the claim is given back
    with _brave(brave, quota=quota) as provider:
        provider.search("粗大ごみ")
        provider.search("国民健康保険")
        with pytest.raises(BudgetExceeded) as caught:
            provider.search("粗大ごみ")
    assert caught.value.ledger_scope == "search_brave" and caught.value.scope == "monthly_calls"
    assert len(brave.requests) == 3  # the 429, then two answered; the third search sent nothing
    snapshot = get_ledger("search_brave").snapshot()
    assert (snapshot.calls, snapshot.reserved_calls) == (2, 0)
    # the chain treats a used-up quota like any failure: the next provider answers
    chain = FallbackSearch([_brave(brave, quota=quota), _perplexity(perplexity, quota=LedgerQuota())])
    with chain:
        outcome = chain.run("粗大ごみ", site=SITE)
    assert outcome.provider == "perplexity" and "上限" in outcome.attempts[0].reason
    paid = get_ledger("search_perplexity").snapshot()
    assert (paid.calls, paid.cost_usd) == (1, Decimal("0.005000"))  # the paid mode: settings' price


# --- SEARCH_PROVIDER and Google's end date -----------------------------------------------------------
def test_google_stops_on_its_end_date(google) -> None:
    with _google(google, today=GOOGLE_CSE_END - dt.timedelta(days=1)) as provider:
        assert provider.search("粗大ごみ", site=SITE)
    for day in (GOOGLE_CSE_END, GOOGLE_CSE_END + dt.timedelta(days=400)):
        with _google(google, today=day) as provider, pytest.raises(SearchConfigError, match="2027-01-01"):
            provider.search("粗大ごみ")
    assert len(google.requests) == 1


def test_search_provider_setting_orders_the_chain(settings, brave, perplexity, google) -> None:
    settings.BRAVE_SEARCH_API_KEY, settings.SEARCH_BRAVE_BASE_URL = "brave-key", brave.base_url
    settings.PERPLEXITY_API_KEY, settings.SEARCH_PERPLEXITY_BASE_URL = "pplx-key", perplexity.base_url
    settings.GOOGLE_CUSTOM_SEARCH_API_KEY, settings.GOOGLE_CUSTOM_SEARCH_ENGINE_ID = "g-key", "g-cx"
    settings.SEARCH_GOOGLE_BASE_URL = google.base_url
    before, after = (lambda: GOOGLE_CSE_END - dt.timedelta(days=1)), (lambda: GOOGLE_CSE_END)
    assert search_from_settings(provider="auto", today=before).names == ["brave", "perplexity", "google", "snapshot"]
    assert search_from_settings(provider="auto", today=after).names == ["brave", "perplexity", "snapshot"]
    assert search_from_settings(provider="google", today=before).names == ["google", "brave", "perplexity", "snapshot"]
    assert search_from_settings(provider="snapshot").names == ["snapshot"]
    with pytest.raises(SearchConfigError, match="2027-01-01"):
        search_from_settings(provider="google", today=after)
    with pytest.raises(SearchConfigError, match="bing"):
        search_from_settings(provider="bing")
    settings.BRAVE_SEARCH_API_KEY = ""
    with pytest.raises(SearchConfigError, match="BRAVE_SEARCH_API_KEY"):
        search_from_settings(provider="brave")
    settings.PERPLEXITY_API_KEY = settings.GOOGLE_CUSTOM_SEARCH_API_KEY = ""
    assert search_from_settings(provider="auto", today=before).names == ["snapshot"]  # no key: the embedded default
    settings.SEARCH_SNAPSHOT_DIRS = []
    with pytest.raises(SearchConfigError, match="検索プロバイダがありません"):
        search_from_settings(provider="auto")


def test_an_identical_search_is_answered_from_the_cache_without_a_claim_or_request(brave) -> None:
    from hokan.core.cache import get_cache

    quota = LedgerQuota({"brave": ProviderQuota(monthly_calls=1)})
    with _brave(brave, quota=quota, cache=get_cache(ttl_s=3600)) as provider:
        first = provider.search("粗大ごみ", site=SITE)
        again = provider.search(f"粗大ごみ site:{SITE}")  # the same question, written with the operator
        with pytest.raises(BudgetExceeded):  # a different question is a new (paid) search
            provider.search("国民健康保険", site=SITE)
    assert again == first and [r.url for r in first] == [GOMI]
    assert len(brave.requests) == 1 and get_ledger("search_brave").snapshot().calls == 1
    assert get_cache(ttl_s=3600).stats("search_brave").hits == 1


def test_a_refused_address_says_so_without_the_url_or_the_key(google) -> None:
    with _google(google, api_key="secret-key", allow_hosts=[]) as provider:  # 127.0.0.1 not allowed
        with pytest.raises(SearchUnavailable, match="SSRF ガードが拒否しました（loopback）") as caught:
            provider.search("粗大ごみ")
    assert "secret-key" not in str(caught.value) and google.requests == []
