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
def llm_client() -> LLMClient | None:
    """The municipal LLM behind the LLM cache, the ledger scope "municipal" and the shared rate
    limiter (``hokan.municipal.extraction.municipal_llm``); None offline (no provider)."""
    from hokan.municipal.extraction import municipal_llm

    return municipal_llm()


def search_provider() -> Any:
    """The configured ``hokan.core.search`` chain (SEARCH_PROVIDER, fallbacks, the snapshot index)."""
    from hokan.core.search import search_from_settings

    return search_from_settings()


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
    """Steps 1–5 of the module docstring for one service; returns what was found (nothing is
    saved here). Errors of one URL are recorded and the next URL is tried; BudgetExceeded and
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

    per_page: list[dict[str, dict[str, Any]]] = []
    wanted = list(variables)
    for result in results:
        if outcome.pages_read >= ctx.pages_per_service or not wanted:
            break
        url = result.url
        ctx.step(key, f"取得中 {url}")
        try:
            page, _attempts = fetch_step.fetch_page(ctx.fetcher, url, sleep=ctx.sleep)
        except FetchError as exc:
            tries = getattr(exc, "attempts", 1)
            outcome.errors.append({"step": "fetch", "url": url, "message": f"{exc}（{tries}回試行）"})
            continue
        try:
            text = documents_step.page_text(page, quotas=ctx.quotas)
        except DocumentError as exc:
            outcome.errors.append({"step": "documents", "url": url, "message": f"文書を読めません（{exc}）"})
            continue
        outcome.pages_read += 1
        outcome.sources.append({"url": text.url, "sha256": text.sha256, "method": text.method,
                                "fetched_at": page.fetched_at.isoformat().replace("+00:00", "Z")})
        if not text.text.strip():
            continue
        ctx.step(key, f"抽出中 {url}")
        try:
            values, calls, errors = _extract(ctx, municipality, text, wanted, page, work_key)
        except (BudgetExceeded, LLMConfigError):
            raise
        except HokanError as exc:
            outcome.errors.append({"step": "extract", "url": url, "message": f"抽出に失敗しました（{exc}）"})
            continue
        outcome.llm_calls += calls
        outcome.errors.extend({"step": "extract", "url": url, "message": message} for message in errors)
        per_page.append(values)
        wanted = [spec for spec in wanted if spec.name not in values]
    outcome.values = _merged(per_page)
    return outcome


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
    return FlowContext(fetcher=fetcher_from_settings(), search=quotas.search(), llm=quotas.limit_llm(llm_client()),
                       pages_per_service=quotas.pages_per_service, sleep=sleep or time.sleep, on_step=on_step,
                       quotas=quotas)


ContextFactory = Callable[[Job, JobChunk], FlowContext]


def service_chunk(job: Job, chunk: JobChunk, ctx: FlowContext) -> jobs.ChunkResult:
    """Run the services of one chunk and return their drafts' save (stored with the chunk)."""
    municipality = Municipality.objects.get(lgcode=job.params["lgcode"])
    saves: list[Callable[[], None]] = []
    summary = {"services": 0, "filled": 0, "missing": 0, "pages": 0, "llm_calls": 0, "searches": 0, "errors": 0}
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
        summary["llm_calls"] += outcome.llm_calls
        summary["searches"] += outcome.search_attempts
        summary["errors"] += len(outcome.errors)

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
