"""Web search for hokan: one ``SearchProvider`` interface, four providers, the fallback chain.

    from hokan.core.search import search_from_settings

    with search_from_settings() as search:          # SEARCH_PROVIDER (auto: keys present, Brave first)
        outcome = search.run("音威子府村 国民健康保険 担当課 電話番号", site="www.vill.otoineppu.hokkaido.jp")
        outcome.results   # [SearchResult(url, title, snippet, provider, rank)], best first
        outcome.attempts  # [SearchAttempt(provider, outcome, reason, count)] for the draft

Providers (document 003 §5.1, issue 10 §2 step 2): ``BraveSearch`` (primary), ``PerplexitySearch``
(fallback), ``GoogleCustomSearch`` (legacy fallback, ends 2027-01-01), ``SnapshotSearch`` (BM25
over saved pages; the embedded default). Errors: ``SearchError`` and its subclasses in
``hokan.core.errors``; ``BudgetExceeded`` when a provider's ledger quota is used up.
Modules: ``base`` (interface, HTTP machinery), ``providers``, ``snapshot``, ``quota``, ``chain``.
"""

from hokan.core.search.base import SearchProvider, SearchResult
from hokan.core.search.chain import FallbackSearch, SearchAttempt, SearchOutcome, search_from_settings
from hokan.core.search.providers import GOOGLE_CSE_END, BraveSearch, GoogleCustomSearch, PerplexitySearch
from hokan.core.search.quota import LedgerQuota, ProviderQuota
from hokan.core.search.snapshot import SnapshotIndex, SnapshotSearch, SnapshotSource, markdown_urls

__all__ = [
    "BraveSearch",
    "FallbackSearch",
    "GOOGLE_CSE_END",
    "GoogleCustomSearch",
    "LedgerQuota",
    "PerplexitySearch",
    "ProviderQuota",
    "SearchAttempt",
    "SearchOutcome",
    "SearchProvider",
    "SearchResult",
    "SnapshotIndex",
    "SnapshotSearch",
    "SnapshotSource",
    "markdown_urls",
    "search_from_settings",
]
