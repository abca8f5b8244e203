"""Search quotas on the usage ledger (``hokan.core.budget``): one ledger scope per provider.

Every HTTP search request claims its call before it is sent (``HttpSearchProvider``)::

    quota = LedgerQuota()                     # paid mode: the scopes' monthly limits (settings)
    claim = quota.begin("brave", key)         # BudgetExceeded when the quota is used up
    ... send ...
    claim.commit()  # answered (billed: the scope's per-call price)  /  claim.release() (not billed)

Scopes: ``search_brave``, ``search_perplexity``, ``search_google`` with the settings
``HOKAN_SEARCH_<PROVIDER>_MONTHLY_CALL_LIMIT`` / ``_MONTHLY_COST_LIMIT_USD`` /
``_COST_PER_CALL_USD`` (``hokan.core.budget.setting_names``). A ``ProviderQuota`` given for a
provider replaces those limits (the free-tier mode of ``hokan.municipal.quotas``): a monthly
call limit (``reserve``) and optionally a daily one (``claim_record``: counted when claimed,
never given back, so concurrent callers can never pass it). The month's counter is the same
whichever mode made the calls: a free tier of 2,000 a month counts every call of the month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from hokan.core.budget import Limits, Reservation, UsageLedger, get_ledger
from hokan.core.errors import BudgetExceeded

__all__ = ["LedgerQuota", "ProviderQuota", "QuotaClaim", "SearchQuota", "scope_of"]


def scope_of(provider: str) -> str:
    """The ledger scope of a search provider: "search_<provider>"."""
    return f"search_{provider}"


class QuotaClaim(Protocol):
    def commit(self) -> None: ...
    def release(self) -> None: ...


class SearchQuota(Protocol):
    """``begin(provider, key) -> QuotaClaim``; raises BudgetExceeded when the quota is used up."""

    def begin(self, provider: str, key: str) -> QuotaClaim: ...


@dataclass(frozen=True)
class ProviderQuota:
    """Limits of one provider in place of the settings. monthly_calls: calls per calendar
    month (Asia/Tokyo; 0 = the provider may not be called); daily_calls: calls per day, None =
    no daily limit; cost_usd_per_call: USD reserved and committed per call (0 on a free tier);
    monthly_cost_usd: USD per month."""

    monthly_calls: int
    daily_calls: int | None = None
    cost_usd_per_call: Decimal = Decimal("0")
    monthly_cost_usd: Decimal = Decimal("0")

    def limits(self) -> Limits:
        return Limits(cost_usd=self.monthly_cost_usd, calls=self.monthly_calls,
                      daily_records_setting=self.daily_calls or 0, cost_per_call_usd=self.cost_usd_per_call)


@dataclass
class _Claim:
    ledger: UsageLedger
    reservation: Reservation
    cost_usd: Decimal

    def commit(self) -> None:
        self.ledger.commit(self.reservation, cost_usd=self.cost_usd)

    def release(self) -> None:
        self.ledger.release(self.reservation)


class LedgerQuota:
    """``SearchQuota`` on the ledger (module docstring). overrides: {provider: ProviderQuota};
    providers without one use their scope's settings. today: the ledger day (tests)."""

    def __init__(self, overrides: dict[str, ProviderQuota] | None = None, *, today: dt.date | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.today = today

    def ledger(self, provider: str) -> UsageLedger:
        override = self.overrides.get(provider)
        return get_ledger(scope_of(provider), limits=override.limits() if override else None)

    def begin(self, provider: str, key: str) -> _Claim:
        """Claim one call of ``provider`` for the work ``key`` (unique per request).

        Raises:
            BudgetExceeded: scope "monthly_calls" / "monthly_cost" (nothing claimed) or
                "daily_records" (the day's calls are used up; the month's claim is given back).
        """
        ledger = self.ledger(provider)
        cost = ledger.limits.cost_per_call_usd
        reservation = ledger.reserve(cost_usd=cost, key=key, day=self.today)
        override = self.overrides.get(provider)
        if override is not None and override.daily_calls is not None:
            if not ledger.claim_record(key, day=self.today):
                ledger.release(reservation)
                raise BudgetExceeded(
                    f"本日の検索回数（{provider}）が上限 {override.daily_calls:,} 回に達しました",
                    scope="daily_records", limit=override.daily_calls, spent=override.daily_calls,
                    ledger_scope=scope_of(provider),
                )
        return _Claim(ledger, reservation, cost)
