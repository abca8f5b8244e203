"""Fixtures of the core tests: the usage ledger on both backends."""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis

from hokan.core.budget import DatabaseLedger, Limits, RedisLedger
from tests.servers import redis_server_url  # noqa: F401  (fixture)


@pytest.fixture
def redis_client(redis_server_url):  # noqa: F811
    """A client of a fresh Redis server started on 127.0.0.1 for the test."""
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    return client


@pytest.fixture(params=["database", "redis"])
def make_ledger(request):
    """A factory of ledgers of both backends with the given limits (cost in USD, calls, daily)
    and scope (default "leads")."""
    if request.param == "database":
        request.getfixturevalue("db")

        def build(cost: str = "1.00", calls: int = 10, daily: int = 0, scope: str = "leads"):
            return DatabaseLedger(Limits(cost_usd=Decimal(cost), calls=calls, daily_records_setting=daily),
                                  scope=scope)
    else:
        client = request.getfixturevalue("redis_client")

        def build(cost: str = "1.00", calls: int = 10, daily: int = 0, scope: str = "leads"):
            return RedisLedger(Limits(cost_usd=Decimal(cost), calls=calls, daily_records_setting=daily),
                               scope=scope, redis_client=client)
    return build
