"""Free-tier mode and budgets of a municipal run (document 003 §5.3; issue 10 §4).

``hokan municipal run … --free-tier [default|conservative]`` keeps a run inside the providers'
free quotas, enforced through the usage ledger (``hokan.core.budget``): every claim is atomic
and per provider, so concurrent runs, workers and processes together never pass a quota.

§5.3 (per calendar month / day in Asia/Tokyo)::

    quota                       default   conservative   ledger scope / how
    search, Brave               2,000/月   100/月          search_brave: monthly calls (reserve)
    search, Google CSE          100/日     10/日           search_google: daily calls (claim_record)
    search, Perplexity Search   0          0              search_perplexity: no free tier → not used
    LLM (Gemini in the doc)     1,500/日   50/日           municipal: daily records (claim_record)
    OCR (Vision in the doc)     1,000/月   100/月          municipal_ocr: monthly calls (reserve)
    pages read per service      5          2              ``pages_per_service`` (the flow's cap)

Free-tier calls are reserved at $0. The paid mode (no ``--free-tier``) has monthly limits too:
each search scope's HOKAN_SEARCH_<PROVIDER>_MONTHLY_CALL_LIMIT / _COST_LIMIT_USD at
HOKAN_SEARCH_<PROVIDER>_COST_PER_CALL_USD, the municipal scope's LLM budget (core.llm's
BudgetedClient, HOKAN_MUNICIPAL_MONTHLY_*), HOKAN_MUNICIPAL_OCR_MONTHLY_CALL_LIMIT, and
HOKAN_MUNICIPAL_PAGES_PER_SERVICE pages. The month's counters are shared by both modes: free-tier
calls after paid ones in the same month see the calls already made.

Where the document's free tiers are out of date (README "Free-tier mode"): Brave no longer
offers the 2,000-queries free "Data for Search" plan to new subscribers (its plans are now
"Search" and "Answers", billed per request with a monthly credit); Perplexity's Search API has
no free quota; Google's Custom Search JSON API is closed to new customers and ends 2027-01-01;
this app's OCR is local (PP-OCR / Tesseract, $0), so the OCR quota only paces the work. The
figures above stay the document's, as settings-independent constants, because an existing
Brave free subscription keeps them.

Usage (the flow)::

    quotas = MunicipalQuotas("conservative")
    search = quotas.search()                 # the core.search chain, claims on these quotas
    llm = flow.llm_client(quotas)            # claims one LLM call of today before each call
                                             # that misses the LLM cache (quotas.limit_llm below it)
    with quotas.ocr(key=sha256_of_document): # claims one OCR run this month (idempotent per key)
        read_document(...)
    quotas.pages_per_service                 # 5 / 2 / the setting
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from hokan.core.budget import Limits, get_ledger, local_today
from hokan.core.errors import BudgetExceeded, InputError
from hokan.core.search.quota import LedgerQuota, ProviderQuota

__all__ = ["FREE_TIERS", "FreeTier", "MunicipalQuotas", "OCR_SCOPE", "pages_per_service"]

OCR_SCOPE = "municipal_ocr"
LLM_SCOPE = "municipal"


@dataclass(frozen=True)
class FreeTier:
    """One column of the §5.3 table (module docstring). Counts; 0 = not used in this mode."""

    mode: str
    brave_per_month: int
    google_per_day: int
    perplexity_per_month: int
    llm_per_day: int
    ocr_per_month: int
    pages_per_service: int


FREE_TIERS = {
    "default": FreeTier("default", brave_per_month=2000, google_per_day=100, perplexity_per_month=0,
                        llm_per_day=1500, ocr_per_month=1000, pages_per_service=5),
    "conservative": FreeTier("conservative", brave_per_month=100, google_per_day=10, perplexity_per_month=0,
                             llm_per_day=50, ocr_per_month=100, pages_per_service=2),
}


def free_tier_of(mode: str | None) -> FreeTier | None:
    """The tier of ``mode`` ("" / None = paid mode → None).

    Raises:
        InputError: an unknown mode (field "free_tier").
    """
    if not mode:
        return None
    tier = FREE_TIERS.get(mode.strip().lower())
    if tier is None:
        raise InputError(f"無料枠モード {mode!r} はありません（default か conservative）", field="free_tier")
    return tier


def pages_per_service(mode: str | None) -> int:
    """Pages read per service: 5 (default) / 2 (conservative) in free-tier mode, else
    HOKAN_MUNICIPAL_PAGES_PER_SERVICE."""
    tier = free_tier_of(mode)
    return tier.pages_per_service if tier else int(settings.HOKAN_MUNICIPAL_PAGES_PER_SERVICE)


class _DailyLimitedClient:
    """An LLM client that claims one call of today's free quota before each ``complete_json``."""

    def __init__(self, inner: Any, quotas: MunicipalQuotas) -> None:
        self.inner = inner
        self.quotas = quotas

    def complete_json(self, request: Any, **kwargs: Any) -> Any:
        self.quotas.claim_llm_call(getattr(request, "idempotency_key", "") or "")
        return self.inner.complete_json(request, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MunicipalQuotas:
    """The quotas of a run: ``free_tier`` "" (paid mode), "default" or "conservative".
    today: the ledger day (default today in Asia/Tokyo; tests pass one).

    Raises (constructor): InputError for an unknown mode.
    """

    def __init__(self, free_tier: str | None = "", *, today: dt.date | None = None) -> None:
        self.tier = free_tier_of(free_tier)
        self.today = today

    @property
    def mode(self) -> str:
        return self.tier.mode if self.tier else ""

    @property
    def pages_per_service(self) -> int:
        return self.tier.pages_per_service if self.tier else int(settings.HOKAN_MUNICIPAL_PAGES_PER_SERVICE)

    # --- search ---------------------------------------------------------------------------
    def search_quota(self) -> LedgerQuota:
        """The ``core.search`` quota: free-tier limits per provider, or the scopes' settings."""
        if self.tier is None:
            return LedgerQuota(today=self.today)
        day = self.today or local_today()
        days = calendar.monthrange(day.year, day.month)[1]
        return LedgerQuota({
            "brave": ProviderQuota(monthly_calls=self.tier.brave_per_month),
            "google": ProviderQuota(monthly_calls=self.tier.google_per_day * days, daily_calls=self.tier.google_per_day),
            "perplexity": ProviderQuota(monthly_calls=self.tier.perplexity_per_month),
        }, today=self.today)

    def search(self, **kwargs: Any) -> Any:
        """``hokan.core.search.search_from_settings`` with these quotas (same arguments)."""
        from hokan.core.search import search_from_settings

        return search_from_settings(quota=self.search_quota(), **kwargs)

    # --- LLM ------------------------------------------------------------------------------
    def claim_llm_call(self, key: str = "") -> None:
        """Count one LLM call of today against the free tier (paid mode: nothing to count
        here, the municipal ledger scope limits the month). A key counted already today
        (a retried call) is not counted twice; "" = a new key.

        Raises:
            BudgetExceeded: scope "daily_records", ledger_scope "municipal" — today's free
                LLM calls are used up.
        """
        if self.tier is None:
            return
        ledger = get_ledger(LLM_SCOPE, limits=Limits(
            cost_usd=Decimal(settings.HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD),
            calls=int(settings.HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT),
            daily_records_setting=self.tier.llm_per_day,
        ))
        if not ledger.claim_record(f"llm:{key or uuid.uuid4().hex}", day=self.today):
            raise BudgetExceeded(
                f"本日の LLM 呼び出し（無料枠 {self.tier.mode}）が上限 {self.tier.llm_per_day:,} 回に達しました",
                scope="daily_records", limit=self.tier.llm_per_day, spent=self.tier.llm_per_day,
                ledger_scope=LLM_SCOPE,
            )

    def limit_llm(self, client: Any) -> Any:
        """``client`` (a core.llm client) claiming ``claim_llm_call`` before each call in
        free-tier mode; the client itself in paid mode (None stays None)."""
        if client is None or self.tier is None:
            return client
        return _DailyLimitedClient(client, self)

    # --- OCR ------------------------------------------------------------------------------
    @contextmanager
    def ocr(self, *, key: str) -> Iterator[bool]:
        """Claim one OCR run of this month for the document ``key`` (e.g. its SHA-256) around
        the OCR call: kept when the block finishes, given back when it raises. Yields True
        when this claim is new, False when the key was counted already (a cached or repeated
        document: it costs nothing again).

        Raises:
            BudgetExceeded: scope "monthly_calls", ledger_scope "municipal_ocr": the month's
                OCR runs are used up; the block does not run.
        """
        limits = None
        if self.tier is not None:
            limits = Limits(cost_usd=Decimal("0"), calls=self.tier.ocr_per_month, daily_records_setting=0,
                            cost_per_call_usd=Decimal("0"))
        ledger = get_ledger(OCR_SCOPE, limits=limits)
        reservation = ledger.reserve(cost_usd=ledger.limits.cost_per_call_usd, key=f"ocr:{key}", day=self.today)
        if not reservation.created:
            yield False
            return
        try:
            yield True
        except BaseException:
            ledger.release(reservation)
            raise
        ledger.commit(reservation, cost_usd=ledger.limits.cost_per_call_usd)

    # --- reading ----------------------------------------------------------------------------
    def usage_lines(self) -> list[str]:
        """Japanese lines of this month's / today's use against the quotas (run summaries)."""
        from hokan.core.budget import SCOPE_LABELS

        day = self.today or local_today()
        lines = []
        quota = self.search_quota()
        for provider in ("brave", "perplexity", "google"):
            snap = quota.ledger(provider).snapshot(day=day)
            lines.append(f"{SCOPE_LABELS[snap.scope]}: 今月 {snap.calls:,} / {snap.call_limit:,} 回")
        if self.tier is not None:
            llm = get_ledger(LLM_SCOPE, limits=Limits(cost_usd=Decimal("0"), calls=1,
                                                      daily_records_setting=self.tier.llm_per_day)).snapshot(day=day)
            lines.append(f"LLM（無料枠）: 本日 {llm.records_today:,} / {self.tier.llm_per_day:,} 回")
        return lines
