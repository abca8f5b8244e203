"""complete_json_budgeted: reserve → call → commit / release, and the one re-ask."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from hokan.core.errors import BudgetExceeded, LLMOutputError, LLMRequestError, LLMTransientError
from hokan.core.llm import REASK_INSTRUCTION, JsonRequest, OfflineClient, OpenAICompatClient, complete_json_budgeted
from tests.fakes.openai_server import FakeOpenAIServer, Reply

ESTIMATE = Decimal("0.05")
REQUEST = JsonRequest(
    system="JSONのみで答えてください。",
    user="企業名: 株式会社Lis",
    schema={"type": "object", "properties": {"設立年": {"type": ["string", "null"]}}},
    schema_name="lead",
)


@dataclass
class Reservation:
    key: str
    cost_usd: Decimal
    state: str = "reserved"
    committed_usd: Decimal | None = None


class MemoryLedger:
    """The ledger interface of hokan.core.budget, in memory, for these tests only."""

    def __init__(self, limit_usd: Decimal = Decimal("100")) -> None:
        self.limit_usd = limit_usd
        self.reservations: list[Reservation] = []

    def reserve(self, *, cost_usd: Decimal, calls: int = 1, key: str) -> Reservation:
        if self.spent() + cost_usd > self.limit_usd:
            raise BudgetExceeded("月額上限に達しました", scope="monthly_cost", limit=self.limit_usd, spent=self.spent())
        r = Reservation(key, cost_usd)
        self.reservations.append(r)
        return r

    def commit(self, reservation: Reservation, *, cost_usd: Decimal) -> None:
        assert reservation.state == "reserved"
        reservation.state, reservation.committed_usd = "committed", cost_usd

    def release(self, reservation: Reservation) -> None:
        assert reservation.state == "reserved"
        reservation.state = "released"

    def spent(self) -> Decimal:
        return sum(
            (r.committed_usd if r.state == "committed" else r.cost_usd if r.state == "reserved" else Decimal(0))
            for r in self.reservations
        ) or Decimal(0)

    def committed_total(self) -> Decimal:
        return sum((r.committed_usd for r in self.reservations if r.state == "committed"), Decimal(0))


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


def client_for(server: FakeOpenAIServer, **kwargs) -> OpenAICompatClient:
    kwargs.setdefault("sleep", lambda s: None)
    return OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, timeout_s=5, **kwargs)


def test_it_commits_the_reported_cost_of_a_good_answer(fake_openai_server, ledger):
    reply = Reply.json({"設立年": "2001"}, prompt_tokens=300, completion_tokens=20)
    fake_openai_server.enqueue(reply)

    completion = complete_json_budgeted(
        client_for(fake_openai_server), REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="lead:42:2026-11-21"
    )

    assert completion.data == {"設立年": "2001"}
    [r] = ledger.reservations
    assert r.key == "lead:42:2026-11-21:1"
    assert r.cost_usd == ESTIMATE
    assert r.state == "committed"
    assert r.committed_usd == FakeOpenAIServer.expected_cost(reply) == Decimal("0.00532")


def test_it_reasks_once_after_garbage_and_commits_both_costs(fake_openai_server, ledger):
    garbage = Reply.text("該当する情報はありません。", prompt_tokens=100, completion_tokens=10)
    good = Reply.json({"設立年": "2001"}, prompt_tokens=150, completion_tokens=12)
    fake_openai_server.enqueue(garbage, good)

    completion = complete_json_budgeted(
        client_for(fake_openai_server), REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="lead:7"
    )

    assert completion.data == {"設立年": "2001"}
    assert [r.key for r in ledger.reservations] == ["lead:7:1", "lead:7:2"]
    assert [r.state for r in ledger.reservations] == ["committed", "committed"]
    expected = FakeOpenAIServer.expected_cost(garbage) + FakeOpenAIServer.expected_cost(good)
    assert ledger.committed_total() == expected
    assert completion.usage.cost_usd == expected
    assert completion.usage.calls == 2
    first, second = fake_openai_server.requests
    assert second.json["messages"][1]["content"] == REQUEST.user + REASK_INSTRUCTION
    assert "JSONオブジェクトのみを出力してください。" in second.json["messages"][1]["content"]
    assert second.roles == ["system", "user"]


def test_it_raises_output_error_when_the_reask_is_garbage_too(fake_openai_server, ledger):
    first = Reply.text("不明です。")
    second = Reply.text("やはり不明です。", prompt_tokens=200)
    fake_openai_server.enqueue(first, second)

    with pytest.raises(LLMOutputError) as caught:
        complete_json_budgeted(client_for(fake_openai_server), REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="k")

    expected = FakeOpenAIServer.expected_cost(first) + FakeOpenAIServer.expected_cost(second)
    assert [r.state for r in ledger.reservations] == ["committed", "committed"]
    assert ledger.committed_total() == expected
    assert caught.value.usage.cost_usd == expected
    assert len(fake_openai_server.requests) == 2


def test_it_does_not_reask_when_told_not_to(fake_openai_server, ledger):
    fake_openai_server.enqueue(Reply.text("不明です。"), Reply.json({"設立年": "2001"}))

    with pytest.raises(LLMOutputError):
        complete_json_budgeted(
            client_for(fake_openai_server), REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="k", reask=False
        )
    assert len(ledger.reservations) == 1
    assert len(fake_openai_server.requests) == 1


def test_it_releases_the_reservation_on_transient_and_request_errors(fake_openai_server, ledger):
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="1"), Reply.error(400))
    client = client_for(fake_openai_server, max_retries=0)

    with pytest.raises(LLMTransientError):
        complete_json_budgeted(client, REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="a")
    with pytest.raises(LLMRequestError):
        complete_json_budgeted(client, REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="b")

    assert [r.state for r in ledger.reservations] == ["released", "released"]
    assert ledger.committed_total() == 0


def test_it_commits_the_estimate_when_the_price_is_unknown(ledger):
    with FakeOpenAIServer(report_cost=False) as server:
        client = OpenAICompatClient(
            "openai_compatible", "local-model", "test-key", server.v1_url, sleep=lambda s: None, timeout_s=5
        )
        complete_json_budgeted(client, REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="x")
    assert ledger.reservations[0].committed_usd == ESTIMATE


def test_it_makes_no_call_when_the_budget_is_exhausted(fake_openai_server):
    ledger = MemoryLedger(limit_usd=Decimal("0.01"))

    with pytest.raises(BudgetExceeded):
        complete_json_budgeted(
            client_for(fake_openai_server), REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="k"
        )
    assert fake_openai_server.requests == []


def test_it_releases_the_reservation_for_the_offline_client(ledger):
    from hokan.core.errors import LLMConfigError

    with pytest.raises(LLMConfigError):
        complete_json_budgeted(OfflineClient(), REQUEST, ledger=ledger, estimate_usd=ESTIMATE, key="k")
    assert [r.state for r in ledger.reservations] == ["released"]
