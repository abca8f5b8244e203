"""What a caller is told it paid is what the ledger committed (issue 7 §3).

When the provider reports no price and the model is missing from the price table, the
ledger commits the reservation estimate; the Completion (and LLMOutputError.usage) carry that
amount, so a run's summary agrees with the ledger. On both ledger backends, against the fake
OpenAI-compatible server on 127.0.0.1 answering without ``usage.cost``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hokan.core.errors import LLMOutputError
from hokan.core.llm import JsonRequest, OpenAICompatClient, complete_json_budgeted
from hokan.core.llm.prices import DEFAULT_PRICES
from tests.fakes.openai_server import FakeOpenAIServer, Reply

ESTIMATE = Decimal("0.05")
UNPRICED = "local-model-without-a-price"
REQUEST = JsonRequest(
    system="JSONのみで答えてください。",
    user="企業名: 株式会社テスト",
    schema={"type": "object", "properties": {"設立年": {"type": ["string", "null"]}}},
    schema_name="lead",
)


@pytest.fixture
def unpriced_server():
    """The fake server answering like OpenAI / a local server: tokens, no ``usage.cost``."""
    with FakeOpenAIServer(api_key="test-key", report_cost=False) as server:
        yield server


def unpriced_client(server: FakeOpenAIServer) -> OpenAICompatClient:
    assert UNPRICED not in DEFAULT_PRICES
    return OpenAICompatClient("openai_compatible", UNPRICED, "test-key", server.v1_url, sleep=lambda s: None,
                              timeout_s=10, max_retries=0)


def test_an_unpriced_answer_reports_the_estimate_the_ledger_committed(make_ledger, unpriced_server):
    book = make_ledger(cost="10", calls=10, scope="scoring")
    unpriced_server.enqueue(Reply.json({"設立年": "2001"}, prompt_tokens=300, completion_tokens=20))

    completion = complete_json_budgeted(unpriced_client(unpriced_server), REQUEST, ledger=book,
                                        estimate_usd=ESTIMATE, key="row:1")

    assert completion.usage.cost_source == "none"  # nobody priced it ...
    assert completion.usage.cost_usd == ESTIMATE  # ... so the estimate was committed, and said so
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (300, 20)
    snap = book.snapshot()
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (1, completion.usage.cost_usd, 0)


def test_a_reask_and_a_final_garbage_answer_report_what_was_committed(make_ledger, unpriced_server):
    book = make_ledger(cost="10", calls=10)
    client = unpriced_client(unpriced_server)
    unpriced_server.enqueue(Reply.text("不明です。"), Reply.json({"設立年": "2001"}))
    completion = complete_json_budgeted(client, REQUEST, ledger=book, estimate_usd=ESTIMATE, key="lead:1")
    assert (completion.usage.calls, completion.usage.cost_usd) == (2, 2 * ESTIMATE)

    unpriced_server.enqueue(Reply.text("不明です。"), Reply.text("やはり不明です。"))
    with pytest.raises(LLMOutputError) as caught:
        complete_json_budgeted(client, REQUEST, ledger=book, estimate_usd=ESTIMATE, key="lead:2")
    assert (caught.value.usage.calls, caught.value.usage.cost_usd) == (2, 2 * ESTIMATE)

    snap = book.snapshot()
    assert snap.calls == 4 and snap.cost_usd == completion.usage.cost_usd + caught.value.usage.cost_usd


def test_a_priced_answer_reports_its_price_rounded_as_the_ledger_keeps_it(make_ledger):
    book = make_ledger(cost="10", calls=10)
    with FakeOpenAIServer(api_key="test-key") as server:
        # A price with more decimals than the ledger's micro-dollars.
        server.enqueue(Reply.json({"設立年": "2001"}, cost_usd=Decimal("0.0012345")))
        client = OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, sleep=lambda s: None,
                                    timeout_s=10, max_retries=0)
        completion = complete_json_budgeted(client, REQUEST, ledger=book, estimate_usd=ESTIMATE, key="lead:1")
    assert completion.usage.cost_source == "provider"
    assert completion.usage.cost_usd == Decimal("0.001235") == book.snapshot().cost_usd


@pytest.mark.django_db
def test_the_leads_run_summary_agrees_with_the_ledger_when_nobody_priced_the_calls(unpriced_server, tmp_path,
                                                                                    settings):
    from hokan.core.budget import DatabaseLedger, Limits
    from hokan.core.web import SnapshotFetcher
    from hokan.leads.enrich import enrich_leads
    from hokan.leads.models import EnrichmentRun, Lead

    settings.HOKAN_ENRICH_CONCURRENCY = 1  # one worker thread: SQLite's test database is not shared with others
    (tmp_path / "snapshot.csv").write_text("url,path,content_type\n", encoding="utf-8")
    for name in ("株式会社一番", "株式会社二番"):
        Lead.objects.create(name=name)
    unpriced_server.enqueue(Reply.json({"従業員数": "120名"}), Reply.json({"従業員数": "35名"}))
    book = DatabaseLedger(Limits(cost_usd=Decimal("10"), calls=100, daily_records_setting=100))

    report = enrich_leads(client=unpriced_client(unpriced_server), ledger=book, fetcher=SnapshotFetcher(tmp_path))

    ledger_cost = book.snapshot().cost_usd
    assert report.llm_calls == 2 and ledger_cost == 2 * Decimal("0.05")  # POWERPLEXY_COST_PER_CALL_USD
    assert report.cost_usd == ledger_cost, "the summary says what the ledger committed"
    run = EnrichmentRun.objects.get()
    assert run.cost_micro_usd == 100_000
