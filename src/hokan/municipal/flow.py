"""The fetch flow of one municipality (document 003 §4.1; issue 10 §2), as a core.jobs job.

A run is a ``hokan.core.jobs`` Job of kind ``municipal.run`` (scope "municipal") with one chunk
per service (``item_keys`` = the service keys, ``chunk_row_limit`` 1), linked to its municipality
by ``MunicipalRun``. Per-service progress is the chunks' progress; a chunk is done only together
with its draft (``complete_chunk`` stores the draft in the same transaction), so ``resume`` (§4.1
step 9, §11.3) never runs a completed service again. Paid work of a service that was cut off is
not paid twice either: query and extraction answers are cached (``hokan.core.llm.cached``) and a
page text already extracted (``PageExtraction``, by its SHA-256) is not sent again.

One service (``run_service``), step by step, each a module named for it:

1. ``queries``   — one query (LLM or the offline template), restricted to the official site;
2. search       — ``hokan.core.search`` (Brave / Perplexity / Google CSE / the snapshot index);
                  none found → the variables stay missing and the draft records it (§5.4);
3. ``fetch``     — through core.web, 3 retries then skip and record (§5.4);
4. ``documents`` — HTML → text, PDF → text layer or OCR, images → OCR; a failure tries the next URL;
5. extraction   — ``hokan.municipal.extraction`` (rules first, then the LLM for what is missing,
                  with a verbatim quote; validation, vagueness, confidence) per page, only for
                  the variables still missing;
5b. crawl       — variables still missing: ``hokan.municipal.crawler`` from the best official
                  page (§12; ``_crawl_step``), its pages read as in 4–5, within the page cap;
6. ``draft``     — merged into the draft (manual values kept), a version when values changed;
7. notice       — §6.2 「new_draft」 through core.notify (Japanese).

Between two services the run waits HOKAN_MUNICIPAL_SERVICE_DELAY_S seconds (§5.4: 2 s;
``sleep`` is injectable).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from hokan.core import jobs, notify
from hokan.core.errors import BudgetExceeded, DocumentError, FetchError, HokanError, LLMConfigError
from hokan.core.llm.client import LLMClient
from hokan.core.models import Job, JobChunk
from hokan.core.web.fetch import Fetcher
from hokan.municipal import documents as documents_step
from hokan.municipal import draft as draft_step
from hokan.municipal import fetch as fetch_step
from hokan.municipal import queries as queries_step
from hokan.municipal.catalogue import VariableSpec
from hokan.municipal.models import MunicipalRun, Municipality, PageExtraction, Service
from hokan.municipal.seed import service_variables

log = logging.getLogger(__name__)

KIND = "municipal.run"
SCOPE = "municipal"

StepCallback = Callable[[str, str], None]  # (service key, Japanese step description)


# --- the pieces a run uses ------------------------------------------------------------------------
def llm_client(quotas: Any = None) -> LLMClient | None:
    """The municipal LLM behind the LLM cache, the ledger scope "municipal" and the shared rate
    limiter (``hokan.municipal.extraction.municipal_llm``); None offline (no provider).
    quotas: a ``MunicipalQuotas`` whose free-tier claim sits under the cache (a cache hit
    claims no call of the day)."""
    from hokan.municipal.extraction import municipal_llm

    return municipal_llm(below_cache=quotas.limit_llm if quotas is not None else None)


def search_provider() -> Any:
    """The configured ``hokan.core.search`` chain (SEARCH_PROVIDER, fallbacks, the snapshot index)."""
    from hokan.core.search import search_from_settings

    return search_from_settings()

@dataclass(frozen=True)
class CrawlSetup:
    """The Playwright crawler of a run (document 003 §12; issue 10 §3). enabled:
    MUNICIPAL_CRAWLER_ENABLED; options: ``CrawlerOptions`` (CRAWLER_* settings: max_pages 3,
    max_links_per_page 5, timeout_s 30, chromium_path); allow_hosts: hosts exempt from the SSRF
    address check (None = HOKAN_FETCH_ALLOW_HOSTS; tests pass 127.0.0.1)."""

    enabled: bool = True
    options: Any = None  # hokan.municipal.crawler.CrawlerOptions (None = its defaults)
    allow_hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.options is None:
            from hokan.municipal.crawler import CrawlerOptions

            object.__setattr__(self, "options", CrawlerOptions())

    @classmethod
    def from_settings(cls) -> CrawlSetup:
        from hokan.municipal.crawler import CrawlerOptions

        return cls(enabled=bool(settings.MUNICIPAL_CRAWLER_ENABLED), options=CrawlerOptions.from_settings())

    def can_run(self) -> bool:
        """Enabled and Chromium installed: a run with this setup may crawl."""
        return self.enabled and self.chromium_available()

    def pages_reserved(self, pages_per_service: int) -> int:
        """Pages of the service's cap the search results leave to the crawl (``run_service``):
        CRAWLER_MAX_PAGES − 1 new pages (its start page is a page read already), at most the cap − 1."""
        return max(0, min(self.options.max_pages - 1, pages_per_service - 1)) if self.can_run() else 0

    def extra_llm_calls(self, pages_per_service: int) -> int:
        """The most LLM calls a crawl adds to a service beyond one per page read (the dry run's
        bound): one link scoring per page it follows links from, plus the re-rendered start page."""
        reserved = self.pages_reserved(pages_per_service)
        return reserved + 1 if reserved else 0  # a cap of 1 page: no page left to follow or re-render

    def chromium_available(self) -> bool:
        """True when the Chromium the crawler drives (``options.chromium_path``) is an executable."""
        import os

        path = str(self.options.chromium_path)
        return os.path.isfile(path) and os.access(path, os.X_OK)


@dataclass
class FlowContext:
    """What a run needs. pages_per_service: at most this many results are read per service
    (HOKAN_MUNICIPAL_PAGES_PER_SERVICE; free tier 5 / conservative 2, §5.3); sleep: injectable
    waits (service delay, fetch retries); on_step: progress callback."""

    fetcher: Fetcher
    search: Any
    llm: LLMClient | None
    pages_per_service: int = 5
    sleep: Callable[[float], None] = time.sleep
    on_step: StepCallback | None = None
    notify: bool = True
    quotas: Any = None  # hokan.municipal.quotas.MunicipalQuotas: the OCR claim per document (None: none)
    crawler: CrawlSetup | None = None  # the §12 crawler (None: this context does not crawl)

    def step(self, service: str, text: str) -> None:
        if self.on_step is not None:
            self.on_step(service, text)


# --- extraction (hokan.municipal.extraction) ------------------------------------------------------
def _extract(ctx: FlowContext, municipality: Municipality, text: documents_step.PageText,
             variables: Sequence[VariableSpec], fetched: Any,
             work_key: str) -> tuple[dict[str, dict[str, Any]], int, list[str]]:
    """({name: value dict}, paid LLM calls, errors) for one page. A page text extracted before for
    the same variables by the same extractor code and LLM (``PageExtraction``, by the text's
    SHA-256) is answered from the table: no LLM call (§4.2). A rules-only result is not reused
    once an LLM is configured, nor one of older rules."""
    from hokan.municipal.extraction import extract_page_detailed

    names = sorted(spec.name for spec in variables)
    llm_id = f"{getattr(ctx.llm, 'provider', '?')}:{getattr(ctx.llm, 'model', '?')}" if ctx.llm is not None else "rules"
    variables_key = hashlib.sha256("|".join([",".join(names), extractor_fingerprint(), llm_id]).encode()).hexdigest()
    stored = PageExtraction.objects.filter(text_sha256=text.sha256, variables_key=variables_key,
                                           url=text.url[:2000]).first()
    if stored is not None:
        return dict(stored.values), 0, []
    result = extract_page_detailed(None if text.html else text.text, html=text.html or None, url=text.url,
                                   variables=list(variables), llm=ctx.llm, last_modified=_last_modified(fetched),
                                   official_domains=[municipality.official_host] if municipality.official_host else [],
                                   work_key=work_key)
    values = {name: _value_dict(value) for name, value in result.values.items()}
    PageExtraction.objects.get_or_create(text_sha256=text.sha256, variables_key=variables_key, url=text.url[:2000],
                                         defaults={"values": values, "llm_calls": result.llm_calls})
    return values, result.llm_calls, list(result.errors)


@functools.lru_cache(maxsize=1)
def extractor_fingerprint() -> str:
    """SHA-256 (16 hex digits) of the extraction package's code and prompt files: a stored page
    extraction is reused only by the same extractor (improved rules read the page again)."""
    from pathlib import Path

    import hokan.municipal.extraction as package

    digest = hashlib.sha256()
    for path in sorted(Path(package.__file__).parent.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".txt", ".json"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _last_modified(page: Any) -> str | None:
    headers = getattr(page, "headers", None) or {}
    return headers.get("last-modified") if isinstance(headers, dict) else None


def _value_dict(value: Any) -> dict[str, Any]:
    """An ExtractedValue as the JSON of ``Draft.variables`` (``models.VALUE_KEYS`` + normalized)."""
    data = value.as_dict()
    data["extracted_at"] = value.extracted_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    data["confidence"] = round(float(value.confidence), 3)
    for name in ("value", "normalized"):
        if data.get(name) is not None and not isinstance(data[name], (str, int, float, bool)):
            data[name] = str(data[name])
    return data


def _merged(per_page: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The values of several pages merged by ``extraction.agree`` (most confident value; +0.1
    when another source gives the same normalised value, §8.2)."""
    from hokan.municipal.extraction import ExtractedValue, agree

    def revive(name: str, item: dict[str, Any]) -> ExtractedValue:
        stamp = dt.datetime.fromisoformat(str(item.get("extracted_at", "")).replace("Z", "+00:00"))
        return ExtractedValue(variable=name, value=item.get("value"), raw=item.get("raw", ""),
                              quote=item.get("quote", ""), source_url=item.get("source_url"),
                              method=item.get("method", "rule"), confidence=float(item.get("confidence", 0)),
                              extracted_at=stamp, validated=bool(item.get("validated")),
                              normalized=item.get("normalized"), extractor=item.get("extractor", ""))

    merged = agree([{name: revive(name, item) for name, item in page.items()} for page in per_page])
    return {name: _value_dict(value) for name, value in merged.items()}


# --- one service -----------------------------------------------------------------------------------
def run_service(ctx: FlowContext, municipality: Municipality, service: Service, *,
                work_key: str = "") -> draft_step.ServiceOutcome:
    """Steps 1–5b of the module docstring for one service; returns what was found (nothing is
    saved here). At most ``ctx.pages_per_service`` pages are read, crawled ones included; with a
    crawler (``ctx.crawler``) that can run, the search results leave it CRAWLER_MAX_PAGES − 1 of
    them and get back what it does not use. Errors of one URL are recorded and the next URL is tried; BudgetExceeded and
    LLMConfigError propagate (they stop the whole run). work_key: part of the paid calls'
    idempotency keys (the job, chunk and claim: a retried service is new paid work, while
    answers already received come from the LLM cache)."""
    work_key = work_key or new_key()
    outcome = draft_step.ServiceOutcome()
    variables = service_variables(service)
    key = service.key
    ctx.step(key, "検索クエリを作成中")
    query = queries_step.build_query(municipality, service, variables, ctx.llm,
                                     idempotency_key=f"municipal:query:{municipality.lgcode}:{key}:{work_key}")
    outcome.queries.append(query.text)
    outcome.llm_calls += query.llm_calls
    if query.error:
        outcome.errors.append({"step": "query", "url": "", "message": query.error})

    ctx.step(key, "検索中")
    site = municipality.official_host or None
    count = max(ctx.pages_per_service * 2, 10)
    try:
        if hasattr(ctx.search, "run"):  # core.search FallbackSearch: results and every provider asked
            searched = ctx.search.run(query.text, site=site, count=count)
            results, outcome.search_attempts = searched.results, max(1, len(searched.attempts))
        else:
            results, outcome.search_attempts = ctx.search.search(query.text, site=site, count=count), 1
    except LLMConfigError:
        raise
    except HokanError as exc:  # SearchFailed: every provider failed or found nothing (§5.4)
        outcome.search_attempts = max(1, len(getattr(exc, "failures", []) or []))
        outcome.errors.append({"step": "search", "url": "", "message": str(exc)})
        results = []
    else:
        if not results:
            outcome.errors.append({"step": "search", "url": "", "message": f"検索結果が0件でした（{query.text}）"})

    results = list(results)
    reading = _Reading(ctx, municipality, key, outcome, work_key, list(variables))
    setup = ctx.crawler
    # pages kept for the crawler while variables are missing (§12.2 step 1): the search reads
    # the rest of the cap first; what the crawl does not use goes back to the search results
    reserve = setup.pages_reserved(ctx.pages_per_service) if setup is not None else 0
    reading.read_results(results, limit=ctx.pages_per_service - reserve)
    if reading.wanted and ctx.crawler is not None:
        _crawl_step(ctx, municipality, reading)
    reading.read_results(results, limit=ctx.pages_per_service)
    outcome.values = _merged(reading.per_page)
    return outcome


class _Reading:
    """The pages one service has read so far (search results and crawled pages) and the
    variables still wanted; ``read`` runs steps 4–5 on one fetched page."""

    def __init__(self, ctx: FlowContext, municipality: Municipality, key: str, outcome: draft_step.ServiceOutcome,
                 work_key: str, wanted: list[VariableSpec]) -> None:
        self.ctx, self.municipality, self.key, self.outcome = ctx, municipality, key, outcome
        self.work_key = work_key
        self.wanted = wanted
        self.per_page: list[dict[str, dict[str, Any]]] = []
        self.read_pages: list[tuple[Any, documents_step.PageText, int]] = []  # (page, text, values found)
        self.next_result = 0  # the first search result not tried yet

    def read_results(self, results: Sequence[Any], *, limit: int) -> None:
        """Fetch and read search results (from the first not tried yet) until ``limit`` pages
        were read in all or nothing is wanted."""
        while self.next_result < len(results) and self.outcome.pages_read < limit and self.wanted:
            url = results[self.next_result].url
            self.next_result += 1
            self.read_url(url)

    def read_url(self, url: str, *, via: str = "") -> None:
        ctx = self.ctx
        ctx.step(self.key, f"取得中 {url}")
        try:
            page, _attempts = fetch_step.fetch_page(ctx.fetcher, url, sleep=ctx.sleep)
        except FetchError as exc:
            tries = getattr(exc, "attempts", 1)
            self.outcome.errors.append({"step": "fetch", "url": url, "message": f"{exc}（{tries}回試行）"})
            return
        self.read(page, url, via=via)

    def read(self, page: Any, url: str, *, via: str = "", count: bool = True) -> bool:
        """Steps 4–5 for one fetched page (counted in ``pages_read`` unless ``count`` is False:
        the rendered copy of a page read already); via: "crawler" for a page the crawler
        visited. False when the page could not be read."""
        ctx, outcome = self.ctx, self.outcome
        try:
            text = documents_step.page_text(page, quotas=ctx.quotas)
        except DocumentError as exc:
            outcome.errors.append({"step": "documents", "url": url, "message": f"文書を読めません（{exc}）"})
            return False
        outcome.pages_read += 1 if count else 0
        source = {"url": text.url, "sha256": text.sha256, "method": text.method,
                  "fetched_at": page.fetched_at.isoformat().replace("+00:00", "Z")}
        if via:
            source["via"] = via
        outcome.sources.append(source)
        if not text.text.strip() or not self.wanted:
            self.read_pages.append((page, text, 0))
            return True
        ctx.step(self.key, f"抽出中 {url}")
        try:
            values, calls, errors = _extract(ctx, self.municipality, text, self.wanted, page, self.work_key)
        except (BudgetExceeded, LLMConfigError):
            raise
        except HokanError as exc:
            outcome.errors.append({"step": "extract", "url": url, "message": f"抽出に失敗しました（{exc}）"})
            return False
        outcome.llm_calls += calls
        outcome.errors.extend({"step": "extract", "url": url, "message": message} for message in errors)
        self.per_page.append(values)
        self.read_pages.append((page, text, len(values)))
        self.wanted = [spec for spec in self.wanted if spec.name not in values]
        return True


# --- the crawler (§12; issue 10 §3) -----------------------------------------------------------------
def _crawlable(page: Any) -> bool:
    """An HTML page with a link or a script: something a browser can render links from."""
    import re

    content_type = (getattr(page, "content_type", "") or "").lower()
    return "html" in content_type and re.search(r"<(a|script)\b", page.text or "", re.I) is not None


class _CountingClient:
    """A core.llm client counting the calls that were not answered from the LLM cache."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def complete_json(self, request: Any, **kwargs: Any) -> Any:
        completion = self.inner.complete_json(request, **kwargs)
        self.calls += 0 if getattr(completion, "cached", False) else 1
        return completion

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _outside_playwright(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a worker thread, its result or exception returned / raised here.
    Playwright's sync API keeps an asyncio loop running in the crawling thread, where Django
    refuses the ORM (SynchronousOnlyOperation); the LLM client's ledger, cache and rate limiter
    use it, so the link scorer's call runs in a thread of its own (its DB connection closed after)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run() -> Any:
        try:
            return function(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crawl-llm") as pool:
        return pool.submit(run).result()


def _crawl_step(ctx: FlowContext, municipality: Municipality, reading: _Reading) -> None:
    """§12.2: variables are still missing after the search results. Open the best official page
    of the service in Chromium (the search result on the official site whose extraction found the
    most, else the highest ranked; else the municipality's official top page), score its links
    against the missing variables' descriptions (the municipal LLM when one is configured, behind
    its quotas and ledger; else ``keyword_scores``), follow the best within the pages left of the
    service's cap (crawled pages count; the re-rendered start page, read already, does not), and
    read every page visited — and PDF links it listed, while pages are left — for the variables
    still missing, with ``source_url`` = the crawled page. Everything is recorded in the draft's
    errors (step "crawl": what was visited, refused, failed, or why nothing was crawled; the
    records that are no failure carry ``"info": true`` and are not counted as errors) and
    sources (``via`` "crawler"); a crawl counts as one search attempt. A crawl that fails
    (CrawlError, a timeout, Chromium crashing) never fails the service: it is recorded and the
    draft keeps what was found. BudgetExceeded / LLMConfigError of the link scorer propagate
    (they stop the run, as everywhere in the flow)."""
    from dataclasses import replace

    from hokan.municipal import crawler as crawler_step

    setup = ctx.crawler
    assert setup is not None
    outcome = reading.outcome

    def note(message: str, url: str = "", *, info: bool = False) -> None:
        # info: a record for the editor, not a failure (not counted in the run's error totals)
        outcome.errors.append({"step": "crawl", "url": url, "message": message, **({"info": True} if info else {})})

    if not setup.enabled:
        note("クローラーは無効です（MUNICIPAL_CRAWLER_ENABLED=false）。検索結果にない変数は公式サイトを巡回して探していません",
             info=True)
        return
    if not setup.chromium_available():
        note(f"Chromium（{setup.options.chromium_path}）がインストールされていないため、公式サイトを巡回しませんでした")
        return
    official = municipality.official_url or ""
    if not official:
        note("自治体の公式サイトの URL がないため、巡回しませんでした")
        return
    left = ctx.pages_per_service - outcome.pages_read
    if left <= 0:
        note(f"サービスあたりのページ取得の上限（{ctx.pages_per_service} 件）に達したため、巡回しませんでした")
        return
    site = crawler_step.official_site(official)
    read = [(found, -rank, page) for rank, (page, _text, found) in enumerate(reading.read_pages)
            if crawler_step.on_site(page.final_url, site) and _crawlable(page)]
    if read:
        start_page, start_read = max(read, key=lambda item: item[:2])[2], True
        start_url = start_page.final_url
    else:
        start_url, start_read = official, False
        kinds = sorted({(page.content_type or "—").split(";")[0] for page, _, _ in reading.read_pages
                        if crawler_step.on_site(page.final_url, site)})
        why = (f"読んだ公式サイトのページ（{', '.join(kinds)}）にはリンクもスクリプトもなく、" if kinds else "")
        try:
            start_page = ctx.fetcher.fetch(official)
        except FetchError as exc:
            note(f"巡回しませんでした: {why}公式サイトのトップページも取得できませんでした（{exc}）", official)
            return
        if not _crawlable(start_page):
            note(f"巡回しませんでした: {why}公式サイトのトップページ（{start_page.content_type or '—'}）にも"
                 "リンクがありません", official)
            return
    max_pages = min(setup.options.max_pages, left + (1 if start_read else 0))
    options = replace(setup.options, max_pages=max_pages, official_url=official)
    wanted = list(reading.wanted)
    descriptions = [f"{spec.label}: {spec.description}" for spec in wanted]
    counting: _CountingClient | None = None
    scorer = None
    if ctx.llm is not None:
        counting = _CountingClient(ctx.llm)
        llm_scorer = crawler_step.llm_link_scorer(
            counting, idempotency_prefix=f"municipal:crawl:{municipality.lgcode}:{reading.key}:{reading.work_key}")

        def scorer(links: Sequence[Any], wanted_text: Sequence[str]) -> list[float]:
            try:
                return _outside_playwright(llm_scorer, links, wanted_text)
            except (BudgetExceeded, LLMConfigError):
                raise
            except HokanError as exc:  # the provider failed: keyword scores for this page
                note(f"リンクの評価（LLM）に失敗したため、キーワードで評価しました（{exc}）")
                return crawler_step.keyword_scores(links, wanted_text)

    ctx.step(reading.key, f"公式サイトを巡回中 {start_url}")
    outcome.search_attempts += 1
    try:
        result = crawler_step.crawl(start_url, descriptions=descriptions, options=options, scorer=scorer,
                                    allow_hosts=setup.allow_hosts, fetcher=ctx.fetcher)
    except (BudgetExceeded, LLMConfigError):
        raise
    except crawler_step.CrawlError as exc:
        note(f"巡回に失敗しました（{exc}）", start_url)
        return
    except Exception as exc:  # noqa: BLE001 - Playwright timeouts / a crashed browser never fail the service
        log.warning("crawl from %s failed", start_url, exc_info=True)
        note(f"巡回に失敗しました（{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else '—'}）",
             start_url)
        return
    finally:
        if counting is not None:
            outcome.llm_calls += counting.calls
    before = {spec.name for spec in reading.wanted}
    for crawled in result.pages:
        if crawled.url == start_url and start_read:
            rendered = crawled.as_page()
            static = next((text for page, text, _ in reading.read_pages if page is start_page), None)
            try:
                same = static is not None and documents_step.page_text(rendered).sha256 == static.sha256
            except DocumentError:
                same = True
            if not same:  # JavaScript added to the page: read what it rendered (a page read already)
                reading.read(rendered, crawled.url, via="crawler", count=False)
            continue
        reading.read(crawled.as_page(), crawled.url, via="crawler")
    for document in result.documents:  # PDFs linked from the pages visited, while pages are left
        if outcome.pages_read >= ctx.pages_per_service or not reading.wanted:
            break
        reading.read_url(document, via="crawler")
    found = sorted(before - {spec.name for spec in reading.wanted})
    scoring = "LLM" if ctx.llm is not None else "キーワード"
    note(f"公式サイトを巡回しました: {start_url} から {len(result.pages)} ページ（リンクの評価: {scoring}、"
         f"拒否 {len(result.refused)} 件、失敗 {len(result.failed)} 件）。"
         + (f"見つかった変数: {', '.join(found)}" if found else "新たに見つかった変数はありません"), start_url, info=True)
    for url, reason in result.refused[:10]:
        note(f"巡回中に拒否したリクエスト: {reason}", url, info=True)
    for url, reason in result.failed[:10]:
        note(f"巡回中に読み込めなかったページ: {reason}", url)


def notify_draft(municipality: Municipality, service: Service, draft: Any, changes: list[dict[str, Any]],
                 *, updated: bool) -> None:
    """The §6.2 notice (new_draft, or draft_updated with the changed values), in Japanese."""
    kind = "draft_updated" if updated else "new_draft"
    title = (f"【下書き更新】{municipality.name} {service.name}: {len(changes)} 件の値が変わりました" if updated
             else f"【新しい下書き】{municipality.name} {service.name}: {draft.filled_count} 件取得")
    lines = [f"種類: {kind}", f"自治体: {municipality} （{municipality.slug or municipality.lgcode}）",
             f"サービス: {service.name} （{service.key}）", f"取得: {draft.filled_count} 件",
             f"未取得: {draft.missing_count} 件"]
    if draft.missing_variables:
        lines.append("未取得の変数: " + ", ".join(draft.missing_variables[:20]))
    for change in changes[:20] if updated else []:
        lines.append(f"変更 {change['variable']}: {change['before']!s} → {change['after']!s}")
    lines.append(f"日時: {draft_step.iso_now()}")
    notify.send(notify.Message(kind, title, "\n".join(lines) + "\n"))


# --- the job ---------------------------------------------------------------------------------------
def context_from_settings(*, key: str = "", sleep: Callable[[float], None] | None = None,
                          on_step: StepCallback | None = None, free_tier: str = "") -> FlowContext:
    """A FlowContext from the settings: the configured fetcher, the core.search chain and the
    municipal LLM, under the quotas of ``free_tier`` ("" = paid mode, "default", "conservative";
    ``hokan.municipal.quotas``: search per provider, LLM calls per day, OCR per month, pages
    per service). key: unused (kept for callers; the idempotency keys come from the job)."""
    from hokan.core.web.fetch import fetcher_from_settings
    from hokan.municipal.quotas import MunicipalQuotas

    quotas = MunicipalQuotas(free_tier)
    return FlowContext(fetcher=fetcher_from_settings(), search=quotas.search(), llm=llm_client(quotas),
                       pages_per_service=quotas.pages_per_service, sleep=sleep or time.sleep, on_step=on_step,
                       quotas=quotas, crawler=CrawlSetup.from_settings())


ContextFactory = Callable[[Job, JobChunk], FlowContext]


def service_chunk(job: Job, chunk: JobChunk, ctx: FlowContext) -> jobs.ChunkResult:
    """Run the services of one chunk and return their drafts' save (stored with the chunk)."""
    municipality = Municipality.objects.get(lgcode=job.params["lgcode"])
    saves: list[Callable[[], None]] = []
    summary = {"services": 0, "filled": 0, "missing": 0, "pages": 0, "crawled_pages": 0, "llm_calls": 0,
               "searches": 0, "errors": 0}
    for key in chunk.item_keys or []:
        service = Service.objects.get(key=key)
        if chunk.chunk_id > 0:
            ctx.sleep(float(settings.HOKAN_MUNICIPAL_SERVICE_DELAY_S))
        outcome = run_service(ctx, municipality, service,
                              work_key=f"{job.public_id}:{chunk.chunk_id}:{chunk.claim_count}")
        names = [spec.name for spec in service_variables(service)]
        summary["services"] += 1
        summary["filled"] += len(outcome.values)
        summary["missing"] += len([n for n in names if n not in outcome.values])
        summary["pages"] += outcome.pages_read
        summary["crawled_pages"] += sum(1 for source in outcome.sources if source.get("via") == "crawler")
        summary["llm_calls"] += outcome.llm_calls
        summary["searches"] += outcome.search_attempts
        summary["errors"] += sum(1 for error in outcome.errors if not error.get("info"))

        def save(service: Service = service, outcome: draft_step.ServiceOutcome = outcome,
                 names: list[str] = names) -> None:
            draft, changes = draft_step.save_draft(municipality, service, outcome, names,
                                                   reason=job.params.get("reason", "run"))
            if ctx.notify:
                updated = draft.version > 1 and bool(changes)
                if draft.version == 1 or updated:
                    notify_draft(municipality, service, draft, changes, updated=updated)

        saves.append(save)
    def save_all() -> None:
        for save_one in saves:
            save_one()
        # runs inside complete_chunk's transaction, after this chunk is marked done: the last
        # chunk of the job stamps the municipality's last run (the periodic update reads it)
        if not JobChunk.objects.filter(job_id=job.pk).exclude(status=JobChunk.Status.DONE).exists():
            Municipality.objects.filter(pk=municipality.pk).update(last_fetched_at=timezone.now())

    return jobs.ChunkResult(summary=summary, save=save_all)


def _default_factory(job: Job, chunk: JobChunk) -> FlowContext:
    return context_from_settings(key=f"municipal:{job.public_id}:{chunk.chunk_id}:{chunk.claim_count}",
                                 free_tier=job.params.get("free_tier", ""))


def _config_errors() -> tuple[type[BaseException], ...]:
    """Errors after which no service of the run can succeed: a bad key or model, a search
    provider that cannot be used, the budget — the run is interrupted at once with the reason."""
    from hokan.core.errors import SearchConfigError

    return (*jobs.FATAL_ERRORS, SearchConfigError)


def _registered_handler(job: Job, chunk: JobChunk) -> jobs.ChunkResult:
    try:
        return service_chunk(job, chunk, _default_factory(job, chunk))
    except _config_errors() as exc:  # stop the run (core.jobs releases the chunk), do not retry per service
        from hokan.core.errors import ChunkLost

        jobs.interrupt_job(job, jobs.describe_error(exc))
        stopped = MunicipalRun.objects.filter(job=job).select_related("job", "municipality").first()
        if stopped is not None:
            notify_stopped(stopped)
        raise ChunkLost(str(exc), job_id=str(job.public_id), chunk_id=chunk.chunk_id, reason="interrupted") from exc


jobs.register_chunk_handler(KIND, _registered_handler)


def start_run(municipality: Municipality, services: Sequence[Service], *, free_tier: str = "",
              trigger: str = "cli", reason: str = "run") -> MunicipalRun:
    """Create the job of a run (one chunk per service, in the order given)."""
    job = jobs.create_job(KIND, scope=SCOPE, item_keys=[s.key for s in services], chunk_row_limit=1,
                          params={"lgcode": municipality.lgcode, "services": [s.key for s in services],
                                  "free_tier": free_tier, "reason": reason})
    return MunicipalRun.objects.create(municipality=municipality, job=job, trigger=trigger)


def latest_run(municipality: Municipality) -> MunicipalRun | None:
    return MunicipalRun.objects.filter(municipality=municipality).select_related("job").first()


def release_dead_holders(job: Job) -> int:
    """Put back the running chunks of ``job`` whose holder was a process of this host that has
    ended (killed -9): ``resume`` then takes them at once instead of after the lease
    (HOKAN_JOB_LEASE_S). The holder is core.jobs' ``host:pid:thread``. Returns the count."""
    import os
    import socket

    released = 0
    for chunk in JobChunk.objects.filter(job_id=job.pk, status=JobChunk.Status.RUNNING):
        host, _, rest = chunk.claimed_by.partition(":")
        pid_text = rest.partition(":")[0]
        if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        released += JobChunk.objects.filter(pk=chunk.pk, status=JobChunk.Status.RUNNING,
                                            claim_count=chunk.claim_count).update(
            status=JobChunk.Status.PENDING, claimed_by="", available_at=None,
            last_error=f"作業者 {chunk.claimed_by} は終了していました（再開で続きから実行）")
    if released:
        jobs.refresh_job_status(job)
    return released


def resume_run(run: MunicipalRun) -> MunicipalRun:
    """Make an interrupted / failed run (or one whose worker died) claimable again; completed
    services stay done (§11.3)."""
    release_dead_holders(run.job)
    jobs.resume_job(run.job)
    return run


def execute(run: MunicipalRun, *, context: ContextFactory | None = None) -> jobs.JobProgress:
    """Work through a run in this process (the CLI, tests); returns its progress."""
    factory = context or _default_factory

    def handler(job: Job, chunk: JobChunk) -> jobs.ChunkResult:
        return service_chunk(job, chunk, factory(job, chunk))

    result = jobs.run_job(run.job, handler, fatal=_config_errors())
    run.job.refresh_from_db()
    if run.job.status in (Job.Status.INTERRUPTED, Job.Status.FAILED):
        notify_stopped(run)
    return result


def notify_stopped(run: MunicipalRun) -> None:
    """The notice of a run that ended interrupted or failed (§5.4 「失敗なら通知」, §11.3), Japanese."""
    import logging as _logging

    job = run.job
    done = JobChunk.objects.filter(job=job, status=JobChunk.Status.DONE).count()
    title = f"【取得{job.get_status_display()}】{run.municipality.name}: {done}/{job.total_chunks} サービス完了"
    body = (f"種類: job_{job.status}\n自治体: {run.municipality} （{run.municipality.slug or run.municipality.lgcode}）\n"
            f"ジョブ: {job.public_id}\n理由: {job.message or '—'}\n"
            f"続きから再開: hokan municipal run --id {run.municipality.slug or run.municipality.lgcode} --resume\n")
    notify.send(notify.Message(f"job_{job.status}", title, body), level=_logging.WARNING, notify_type="warning")


def new_key() -> str:
    return f"municipal:adhoc:{uuid.uuid4()}"
