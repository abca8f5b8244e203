"""The gBizINFO REST API v2 client against a local fake server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import time

import pytest

from hokan.core.errors import FetchBlocked, InputError
from hokan.registry.errors import RegistryAuthError, RegistryConfigError, RegistryRateLimited
from hokan.registry.gbizinfo import GbizinfoClient, prefecture_code
from hokan.registry.gbizinfo_reader import company_row
from hokan.registry.lookup import fetch_company
from hokan.registry.match import match_lead
from hokan.registry.models import CompanyRecord
from tests.fakes.gbizinfo_server import FakeGbizinfoServer

# A HojinInfo in the shape of the v2 OpenAPI document (HojinInfoV2): capital_stock and
# employee_number are integers, date_of_establishment an ISO date-time.
KANEKO = {
    "corporate_number": "5070001000715",
    "name": "カネコ種苗株式会社",
    "kana": "カネコシュビョウ",
    "name_en": "KANEKO SEEDS CO., LTD.",
    "postal_code": "3710853",
    "location": "群馬県前橋市古市町1丁目50-12",
    "status": "-",
    "capital_stock": 1491000000,
    "employee_number": 640,
    "representative_name": "金子 昌彦",
    "date_of_establishment": "1947-07-18T00:00:00+09:00",
    "founding_year": 1895,
    "company_url": "https://www.kanekoseeds.jp/",
    "business_summary": "種苗の生産・販売",
    "industry": ["卸売業，小売業"],
    "update_date": "2026-08-01T00:00:00+09:00",
    "certification": [],
    "subsidy": [],
    "finance": None,
}


@pytest.fixture
def server():
    with FakeGbizinfoServer(token="test-token") as fake:
        fake.add(KANEKO)
        yield fake


def client_for(server: FakeGbizinfoServer, **kwargs) -> GbizinfoClient:
    kwargs.setdefault("token", "test-token")
    kwargs.setdefault("min_interval_s", 0.0)
    return GbizinfoClient(base_url=server.base_url, allow_hosts=["127.0.0.1"], **kwargs)


def test_it_looks_up_a_corporate_number_with_the_token_header(server):
    with client_for(server) as client:
        info = client.get("5070001000715")
        assert info["name"] == "カネコ種苗株式会社"
        assert client.get("6010001135680") is None  # valid, but unknown to the server
    request = server.requests[0]
    assert request.path == "/hojin/v2/hojin/5070001000715"
    assert request.headers["X-hojinInfo-api-token"] == "test-token"


def test_it_searches_by_name_and_prefecture_code(server):
    with client_for(server) as client:
        found = client.search(name="カネコ種苗", prefecture="群馬県", limit=5)
        assert [i["corporate_number"] for i in found] == ["5070001000715"]
        assert client.search(name="カネコ種苗", prefecture="東京都") == []
    assert server.requests[0].query == {"name": ["カネコ種苗"], "page": ["1"], "limit": ["5"], "prefecture": ["10"]}
    assert prefecture_code("沖縄県") == "47"


def test_it_raises_rate_limited_with_the_retry_after_of_a_429(server):
    server.rate_limit_next(1, retry_after="7")
    with client_for(server) as client:
        with pytest.raises(RegistryRateLimited) as caught:
            client.get("5070001000715")
        assert caught.value.retry_after_s == 7.0
        assert client.get("5070001000715") is not None  # the next request passes


def test_it_raises_an_auth_error_for_a_wrong_token(server):
    with client_for(server, token="wrong") as client, pytest.raises(RegistryAuthError) as caught:
        client.get("5070001000715")
    assert caught.value.status_code == 401
    assert "GBIZINFO_API_TOKEN" in str(caught.value)


def test_it_requires_a_token():
    with pytest.raises(RegistryConfigError):
        GbizinfoClient(token="")


def test_it_refuses_private_addresses_unless_allowed(server):
    with GbizinfoClient(token="test-token", base_url=server.base_url) as client, pytest.raises(FetchBlocked):
        client.get("5070001000715")
    assert server.requests == []


@pytest.mark.django_db  # the pace is shared by all processes: kept in the database without Redis
def test_it_waits_the_minimum_interval_between_requests(server):
    now = [time.time()]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with client_for(server, min_interval_s=1.5, sleep=sleep, clock=lambda: now[0]) as client:
        client.get("5070001000715")
        client.get("5070001000715")
    assert sleeps == [1.5]


def test_it_maps_english_field_names_in_one_adapter():
    parsed = company_row(KANEKO)
    assert parsed.source == "gbizinfo_api"
    values = parsed.values
    assert values["corporate_number"] == "5070001000715"
    assert values["capital"] == 1_491_000_000
    assert values["employee_count"] == 640
    assert values["established_year"] == 1947  # date_of_establishment, not founding_year 1895
    assert values["website_url"] == "https://www.kanekoseeds.jp/"
    assert values["representative_name"] == "金子 昌彦"
    assert values["industry"] == "卸売業,小売業"
    assert (values["prefecture"], values["city"], values["postal_code"]) == ("群馬県", "前橋市", "371-0853")
    assert parsed.evidence["capital"] == ("1491000000", "capital_stock 1491000000")
    with pytest.raises(InputError) as caught:
        company_row({**KANEKO, "corporate_number": "5070001000716"})
    assert caught.value.field == "corporate_number"


@pytest.mark.django_db
def test_it_stores_an_api_answer_as_a_registry_record(server, settings):
    settings.GBIZINFO_API_TOKEN = "test-token"
    settings.GBIZINFO_API_BASE_URL = server.base_url
    settings.GBIZINFO_API_MIN_INTERVAL_S = 0.0
    settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    record = fetch_company("5070001000715")
    assert record.source == "gbizinfo_api"
    assert record.source_file == f"{server.base_url}/v2/hojin/5070001000715"
    assert (record.capital, record.employee_count) == (1_491_000_000, 640)
    assert CompanyRecord.objects.filter(corporate_number="5070001000715").count() == 1
    values = {v.field: v for v in match_lead(corporate_number="5070001000715").values()}
    assert values["employee_count"].source_url == "https://info.gbiz.go.jp/hojin/ichiran?hojinBango=5070001000715"
    assert values["employee_count"].extractor == "registry:gbizinfo_api"
    assert fetch_company("6010001135680") is None
