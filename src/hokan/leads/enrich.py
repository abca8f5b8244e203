"""The lead-enrichment job (design document 000 §2, §10–§12; issue 8 §1–§2): one run, three
entry points.

``enrich_leads()`` is what the CLI (``hokan leads enrich``), the API's one-lead refresh and the
Celery task without a broker call; with a broker, the nightly task starts the same run with
``start_run`` and spreads it over the workers (``hokan.leads.tasks``).

A run:

1. checks usage (§8): stops with a warning when the monthly limits are reached;
2. selects leads with ``needs_ai_update``, never-enriched first, up to the daily record limit
   (a message says when the limit cut the selection and how many are left);
3. becomes a job of chunks (``hokan.core.jobs``, kind ``leads.enrich``, HOKAN_ENRICH_CHUNK_LEADS
   leads a chunk) claimed atomically by any number of processes and Celery workers; the leads
   of a chunk are enriched concurrently (HOKAN_ENRICH_CONCURRENCY threads), every LLM attempt
   through the provider's shared limiter (``hokan.core.llm.limited``: pacer, AIMD,
   Retry-After for every caller), each with its own retries (document 000 §12: 3 retries,
   HOKAN_LLM_RATE_LIMIT_WAIT_S after a 429 without Retry-After);
4. per lead: ``hokan.leads.steps.enrich_one`` (registry → site rules → LLM), its progress and
   outcome kept on a ``LeadRunResult`` row as it goes;
5. reports counts, calls, cost, remaining calls and cost (§11), whole over every attempt and
   worker (the run's figures are sums of its rows).

Stops (the job is interrupted, chunks being worked on are given back, nothing done is undone):

- the provider refuses the key or the settings (401/403/404, ``LLMConfigError``): at once,
  with a Japanese message saying what to check — not one doomed request per lead;
- the monthly budget or the daily record limit is reached: status LIMITED;
- the provider stays unavailable after a call's retries (``LLMTransientError``,
  ``RateLimited``): with a broker the run is resumed later by a Celery retry (at most
  ``MAX_RETRIES``; countdown ``retry_countdown_s``), and only then does the message say the
  rest will be retried; without one (CLI) the run ends FAILED and running it again continues.

Running twice is safe: a lead whose row is final is not worked on again by the run; a lead
done by another run is not selected again (``needs_ai_update`` off); a lead's LLM call is paid
work under the key ``lead:{id}:{date}`` (a one-lead refresh: ``lead:{id}:run:{run id}``) and is
never paid twice (``AlreadyPaid``: the lead is skipped and *not* counted as done). A worker
killed by ``kill -9`` loses its chunk's lease; the next claim (another worker, within
HOKAN_JOB_LEASE_S plus a sweep) resumes it: leads done are not done again, and an answer that
arrived before the kill (stored on the row before its reservation was committed) is used and
its reservation settled with the provider's cost.

Several ``hokan leads enrich`` processes started together share one run (a job with the day's
key): each claims chunks of it, so they split the list instead of racing for the same leads.

A log file per day is written to ``HOKAN_LOG_DIR/ai_enrich_YYYYMMDD.log``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from hokan.core import jobs
from hokan.core.budget import UsageLedger, UsageSnapshot, from_micro_usd, get_ledger, to_micro_usd
from hokan.core.errors import BudgetExceeded, ChunkLost, HokanError, LLMConfigError, LLMTransientError, RateLimited
from hokan.core.extract.llm import is_grounded
from hokan.core.fields import FieldValue
from hokan.core.llm import get_client
from hokan.core.llm.client import LLMClient
from hokan.core.llm.limited import limited_client
from hokan.core.models import Job, JobChunk
from hokan.core.web import Fetcher, fetcher_from_settings
from hokan.leads.models import EnrichmentRun, Lead, LeadRunResult
from hokan.leads.steps import LeadOutcome, enrich_one

__all__ = ["KIND", "EnrichReport", "LeadOutcome", "enrich_leads", "leads_to_enrich", "start_run"]

logger = logging.getLogger("hokan.leads.enrich")

KIND = "leads.enrich"  # the job kind (hokan.core.jobs)
MAX_RETRIES = 3  # Celery retries of a run whose provider is down (document 000 §12)
MAX_ERROR_NOTICES = 5  # error notices for failed leads per run; the rest are in the log
FINISHED = (EnrichmentRun.Status.SUCCEEDED, EnrichmentRun.Status.LIMITED, EnrichmentRun.Status.FAILED)


@dataclass
class EnrichReport:
    """The outcome of one run (§11). Amounts in USD. ``outcomes`` in selection order."""

    run_id: str
    dry_run: bool
    provider: str
    outcomes: list[LeadOutcome] = field(default_factory=list)
    stopped_reason: str = ""
    status: str = ""
    usage: UsageSnapshot | None = None
    estimated_cost_usd: Decimal = Decimal("0")
    log_path: Path | None = None
    selected: int = 0  # leads the run selected (the job's items)
    left: int = 0  # leads needing enrichment that the daily limit (or --limit) left for later
    interrupted: bool = False  # stopped before its list was done (provider, key, a limit)
    will_retry: bool = False  # a Celery retry will resume it
    joined: bool = False  # this process joined a run another process had started

    @property
    def leads_done(self) -> int:
        return sum(1 for o in self.outcomes if not o.error and not o.skipped)

    @property
    def leads_failed(self) -> int:
        return sum(1 for o in self.outcomes if o.error)

    @property
    def leads_skipped(self) -> int:
        """Not worked on: paid or in flight under today's key already (not counted as done)."""
        return sum(1 for o in self.outcomes if o.skipped)

    @property
    def missing_before(self) -> int:
        return sum(len(o.missing_before) for o in self.outcomes)

    @property
    def filled_by_method(self) -> Counter[str]:
        return Counter(v.method for o in self.outcomes for v in o.filled.values())

    @property
    def still_missing(self) -> int:
        return sum(len(o.still_missing) for o in self.outcomes)

    @property
    def ai_values(self) -> int:
        """Columns filled by the LLM in this run."""
        return sum(1 for o in self.outcomes for v in o.filled.values() if v.method == "ai")

    @property
    def ai_grounded(self) -> int:
        """Of ``ai_values``, those whose quote was found on a page (ours or one the model cited)."""
        return sum(1 for o in self.outcomes for v in o.filled.values() if v.method == "ai" and is_grounded(v))

    @property
    def llm_calls(self) -> int:
        """Paid LLM calls (a re-ask is a second call)."""
        return sum(o.calls for o in self.outcomes)

    @property
    def cost_usd(self) -> Decimal:
        return sum((o.cost_usd for o in self.outcomes), Decimal("0"))

    @property
    def failed(self) -> bool:
        """The run did not do its work: interrupted, or every lead it worked on failed.
        ``hokan leads enrich`` exits non-zero then."""
        worked = [o for o in self.outcomes if not o.skipped]
        return self.interrupted or (bool(worked) and all(o.error for o in worked))


# --- selection ----------------------------------------------------------------------------
def leads_to_enrich(*, lead_ids: list[int] | None = None) -> QuerySet[Lead]:
    """Leads that need enrichment, never-enriched first, then least recently enriched (§10)."""
    queryset = Lead.objects.filter(pk__in=lead_ids) if lead_ids else Lead.objects.filter(needs_ai_update=True)
    # nulls_first gives the same order on SQLite and PostgreSQL.
    return queryset.order_by(F("ai_last_enriched_at").asc(nulls_first=True), "pk")


@contextlib.contextmanager
def daily_log(day: dt.date) -> Iterator[Path]:
    """Attach ``HOKAN_LOG_DIR/ai_enrich_YYYYMMDD.log`` to the job's logger for the run."""
    log_dir = Path(settings.HOKAN_LOG_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"ai_enrich_{day:%Y%m%d}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


# --- the run's context ----------------------------------------------------------------------
@dataclass
class RunContext:
    """What the leads of a run are worked with, in one process.

    concurrency: leads enriched at once in a chunk (1 = in the calling thread).
    on_lead: progress callback (called from worker threads). notify: send the §11 notices
    (Celery runs); success_notice: also the success notice (the nightly run).
    can_retry: a broker will resume the run after a provider outage (Celery).
    """

    run: EnrichmentRun
    day: dt.date
    fetcher: Fetcher
    client: LLMClient
    ledger: UsageLedger
    concurrency: int = 1
    on_lead: Callable[[LeadOutcome], None] | None = None
    notify: bool = False
    success_notice: bool = False
    can_retry: bool = False

    @classmethod
    def from_settings(cls, run: EnrichmentRun, **options: Any) -> RunContext:
        """The configured fetcher, client (retries per call, shared limiter) and ledger."""
        day = dt.date.fromisoformat(str((run.job.params if run.job else {}).get("day") or timezone.localdate()))
        return cls(run=run, day=day, fetcher=fetcher_from_settings(), client=limited_client(get_client()),
                   ledger=get_ledger(), concurrency=int(settings.HOKAN_ENRICH_CONCURRENCY), **options)


class RunStop(HokanError):
    """The run must stop (see the module docstring). kind: "limited" | "fatal" | "provider"."""

    def __init__(self, kind: str, message: str, *, cause: BaseException | None = None, company: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.cause = cause
        self.company = company


def retry_countdown_s(exc: BaseException | None, retries: int) -> float:
    """Seconds to wait before resuming a run stopped by ``exc`` (``retries`` = retries so far).

    HTTP 429: max(HOKAN_LLM_RATE_LIMIT_WAIT_S, Retry-After) (§12: 10 minutes by default).
    RateLimited (our shared limit): its ``retry_after_s``. Other transient failures (5xx,
    timeouts): 60 s × 2^retries, at most HOKAN_LLM_RATE_LIMIT_WAIT_S.
    """
    wait_s = float(settings.HOKAN_LLM_RATE_LIMIT_WAIT_S)
    if isinstance(exc, LLMTransientError) and exc.status_code == 429:
        return max(wait_s, float(exc.retry_after_s or 0))
    if isinstance(exc, RateLimited):
        return float(exc.retry_after_s)
    return min(wait_s, 60.0 * 2**retries)


# --- one lead --------------------------------------------------------------------------------
def _work_key(run: EnrichmentRun, lead: Lead, day: dt.date) -> str:
    # A refresh of one lead pays again on purpose (a new run); a redelivered task of the same
    # run, another worker of it, or the nightly run twice a day, does not.
    return f"lead:{lead.pk}:run:{run.public_id}" if run.lead_id else f"lead:{lead.pk}:{day.isoformat()}"


def _save_outcome(row: LeadRunResult, outcome: LeadOutcome) -> None:
    status = (LeadRunResult.Status.FAILED if outcome.error else
              LeadRunResult.Status.SKIPPED if outcome.skipped else LeadRunResult.Status.DONE)
    LeadRunResult.objects.filter(pk=row.pk).update(
        status=status, llm=outcome.llm, registry=outcome.registry, missing_before=outcome.missing_before,
        asked=outcome.asked, filled={name: value.as_dict() for name, value in outcome.filled.items()},
        still_missing=outcome.still_missing, fetched=outcome.fetched, fetch_errors=outcome.fetch_errors[:50],
        calls=outcome.calls, cost_micro_usd=to_micro_usd(outcome.cost_usd), error=outcome.error[:4000],
        updated_at=timezone.now(),
    )


def _outcome_of(row: LeadRunResult, name: str) -> LeadOutcome:
    filled = {}
    for column, data in (row.filled or {}).items():
        observed = data.get("observed_at")
        filled[column] = FieldValue(
            field=column, value=data.get("value"), raw=data.get("raw", ""), quote=data.get("quote", ""),
            source_url=data.get("source_url"), method=data.get("method", "rule"),
            confidence=float(data.get("confidence", 0)), extractor=data.get("extractor", ""),
            **({"observed_at": dt.datetime.fromisoformat(observed)} if observed else {}),
        )
    return LeadOutcome(
        lead_id=row.lead_id, name=name, missing_before=list(row.missing_before or []), filled=filled,
        still_missing=list(row.still_missing or []), fetched=list(row.fetched or []),
        fetch_errors=list(row.fetch_errors or []), llm=row.llm, asked=list(row.asked or []), calls=row.calls,
        cost_usd=from_micro_usd(row.cost_micro_usd), error=row.error, registry=row.registry,
    )


def process_lead(ctx: RunContext, lead: Lead, position: int) -> LeadOutcome | None:
    """Work on one lead of the run, keeping its progress on its ``LeadRunResult``; None when
    an earlier attempt of the run finished it already (it is not counted twice).

    Raises:
        RunStop: the run must stop (see the module docstring); the lead is worked on again
            when the run resumes.
    """
    row, _ = LeadRunResult.objects.get_or_create(run=ctx.run, lead=lead, defaults={"position": position})
    if row.status in LeadRunResult.FINAL:
        return None
    if not ctx.ledger.claim_record(f"lead:{lead.pk}", day=ctx.day):
        limit = ctx.ledger.snapshot(day=ctx.day).daily_record_limit
        raise RunStop("limited", f"本日の処理上限 {limit:,} 件に達しました")
    work_key = _work_key(ctx.run, lead, ctx.day)
    stored = row.answer if row.status == LeadRunResult.Status.ANSWERED and row.answer else None

    def keep(answer: dict[str, Any]) -> None:
        LeadRunResult.objects.filter(pk=row.pk).update(status=LeadRunResult.Status.ANSWERED, answer=answer,
                                                        work_key=work_key, updated_at=timezone.now())

    try:
        outcome = enrich_one(lead, fetcher=ctx.fetcher, client=ctx.client, ledger=ctx.ledger, day=ctx.day,
                             work_key=work_key, on_answer=keep, stored=stored)
    except BudgetExceeded as exc:
        raise RunStop("limited", f"⚠️ API上限到達: {exc}", cause=exc) from exc
    except LLMConfigError as exc:
        raise RunStop("fatal", f"AI の問い合わせ先が API キーまたは設定を受け付けません（{exc}）。"
                      "HOKAN_LLM_PROVIDER・API キー（PERPLEXITY_API_KEY など）・HOKAN_LLM_MODEL を確認してください。"
                      "残りの企業には問い合わせずに中止しました", cause=exc, company=lead.name) from exc
    except (LLMTransientError, RateLimited) as exc:
        raise RunStop("provider", f"AI の問い合わせ先が一時的に使えないため中断しました（{exc}）",
                      cause=exc, company=lead.name) from exc
    except Exception as exc:  # one broken lead must not stop the night's run
        logger.exception("lead %s (%s) failed", lead.pk, lead.name)
        outcome = LeadOutcome(lead_id=lead.pk, name=lead.name, missing_before=[],
                              error=f"{type(exc).__name__}: {exc}", exception=exc)
    _save_outcome(row, outcome)
    if outcome.error and ctx.notify:
        failed = LeadRunResult.objects.filter(run=ctx.run, status=LeadRunResult.Status.FAILED).count()
        if failed <= MAX_ERROR_NOTICES:
            from hokan.leads import notices

            notices.notify_error(company=outcome.name, error=outcome.exception or outcome.error)
        elif failed == MAX_ERROR_NOTICES + 1:
            logger.error("more leads failed in run %s (see the log)", ctx.run.public_id)
    return outcome


# --- one chunk --------------------------------------------------------------------------------
def _in_threads(items: list[Any], work: Callable[[Any], None], workers: int, stop: threading.Event) -> None:
    """Run ``work(item)`` for every item on ``workers`` threads (each with its own database
    connection, closed at its end); items not started when ``stop`` is set are left. The
    first exception other than what ``work`` handles itself is re-raised here."""
    todo: queue.Queue[Any] = queue.Queue()
    for item in items:
        todo.put(item)
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                work(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            errors.append(exc)
            stop.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=loop, name=f"enrich-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _interrupted(job: Job) -> bool:
    return Job.objects.filter(pk=job.pk, status=Job.Status.INTERRUPTED).exists()


def enrich_chunk(ctx: RunContext, job: Job, chunk: JobChunk) -> jobs.ChunkResult:
    """The chunk handler: enrich the chunk's leads concurrently (see the module docstring).

    Raises:
        ChunkLost: reason "interrupted" — the run stopped (here or elsewhere): the chunk goes
            back unfinished, its finished leads stay finished.
    """
    ids = [int(key) for key in chunk.item_keys or []]
    by_pk = Lead.objects.in_bulk(ids)
    start = chunk.chunk_id * job.chunk_row_limit
    items = [(by_pk[pk], start + i) for i, pk in enumerate(ids) if pk in by_pk]
    stop = threading.Event()
    stops: list[RunStop] = []

    def work(item: tuple[Lead, int]) -> None:
        lead, position = item
        if _interrupted(job):
            stop.set()
            return
        try:
            outcome = process_lead(ctx, lead, position)
        except RunStop as exc:
            stops.append(exc)
            stop.set()
            return
        if outcome is not None and ctx.on_lead:
            ctx.on_lead(outcome)

    workers = min(max(1, ctx.concurrency), len(items))
    if workers <= 1:
        for item in items:
            if stop.is_set():
                break
            work(item)
    else:
        _in_threads(items, work, workers, stop)
    if stops:
        stop_run(ctx, job, stops[0])
    if stops or _interrupted(job):
        raise ChunkLost(f"実行 {ctx.run.public_id} は中断されました", job_id=str(job.public_id),
                        chunk_id=chunk.chunk_id, reason="interrupted")

    def save() -> None:
        # After the commit that marks the chunk done: the last chunk finishes the run.
        run_pk = ctx.run.pk
        transaction.on_commit(lambda: finish_if_done(run_pk, notify=ctx.notify, success_notice=ctx.success_notice))

    return jobs.ChunkResult(summary={"leads": len(items)}, save=save)


# --- stopping and finishing -------------------------------------------------------------------
def stop_run(ctx: RunContext, job: Job, stop: RunStop) -> None:
    """Interrupt the job and record why on the run; schedule the Celery retry of a provider
    outage when one is possible, else end the run (LIMITED or FAILED) and send its notice."""
    jobs.interrupt_job(job, stop.message)
    run = ctx.run
    logger.warning("run %s stopped: %s", run.public_id, stop.message)
    active = (EnrichmentRun.Status.RUNNING, EnrichmentRun.Status.QUEUED)
    if stop.kind == "provider" and ctx.can_retry:
        attempts = EnrichmentRun.objects.filter(pk=run.pk).values_list("attempts", flat=True).get()
        if attempts < MAX_RETRIES:
            countdown = retry_countdown_s(stop.cause, attempts)
            won = EnrichmentRun.objects.filter(pk=run.pk, status=EnrichmentRun.Status.RUNNING).update(
                status=EnrichmentRun.Status.QUEUED, attempts=F("attempts") + 1,
                message=f"{stop.message}。{countdown:g}秒後に残りを再試行します（{attempts + 1}/{MAX_RETRIES}）"[:4000],
            )
            refresh_totals(run.pk)
            if won:
                from hokan.leads.tasks import resume_run

                transaction.on_commit(lambda: resume_run.apply_async(args=[run.pk], countdown=countdown))
            return
    message = stop.message
    if stop.kind == "provider":
        message += "。再試行の予定はありません" + ("" if ctx.can_retry else "（もう一度実行すると続きから処理します）")
    status = EnrichmentRun.Status.LIMITED if stop.kind == "limited" else EnrichmentRun.Status.FAILED
    won = EnrichmentRun.objects.filter(pk=run.pk, status__in=active).update(
        status=status, message=message[:4000], finished_at=timezone.now())
    refresh_totals(run.pk)
    if won and ctx.notify:
        from hokan.leads import notices

        if status == EnrichmentRun.Status.LIMITED:
            usage = ctx.ledger.snapshot(day=ctx.day)
            notices.notify_limit_reached(cost_limit_usd=usage.cost_limit_usd, call_limit=usage.call_limit,
                                         spent_usd=usage.cost_usd, calls=usage.calls)
        else:
            notices.notify_error(company=stop.company or "（補完ジョブ全体）", error=stop.cause or stop.message)


def refresh_totals(run_pk: int) -> None:
    """Write the run's figures from its rows (every attempt and worker counted once)."""
    rows = list(LeadRunResult.objects.filter(run_id=run_pk).values_list(
        "status", "missing_before", "filled", "still_missing", "calls", "cost_micro_usd"))
    final = [r for r in rows if r[0] in LeadRunResult.FINAL]
    filled = Counter(value.get("method", "") for r in final for value in (r[2] or {}).values())
    EnrichmentRun.objects.filter(pk=run_pk).update(
        leads_done=sum(1 for r in final if r[0] == LeadRunResult.Status.DONE),
        leads_failed=sum(1 for r in final if r[0] == LeadRunResult.Status.FAILED),
        leads_skipped=sum(1 for r in final if r[0] == LeadRunResult.Status.SKIPPED),
        fields_missing_before=sum(len(r[1] or []) for r in final),
        fields_filled=dict(filled), fields_missing_after=sum(len(r[3] or []) for r in final),
        llm_calls=sum(r[4] for r in rows), cost_micro_usd=sum(r[5] for r in rows),
    )


def finish_if_done(run_pk: int, *, notify: bool = False, success_notice: bool = False) -> bool:
    """Finish the run when its job has no chunk left to do; True when this call finished it.

    Status: SUCCEEDED when every chunk is done, FAILED when a chunk failed for good (its
    error in the message). Sends the success notice (``success_notice``) once, whoever calls.
    """
    run = EnrichmentRun.objects.select_related("job").filter(pk=run_pk).first()
    if run is None or run.job is None:
        return False
    job = run.job
    if JobChunk.objects.filter(job_id=job.pk).exclude(status__in=(JobChunk.Status.DONE, JobChunk.Status.FAILED)).exists():
        return False
    job = jobs.refresh_job_status(job)
    failed = job.status == Job.Status.FAILED
    status = EnrichmentRun.Status.FAILED if failed else EnrichmentRun.Status.SUCCEEDED
    refresh_totals(run_pk)
    notes = [str(job.params.get("notice") or "")]
    if run.attempts:
        notes.append(f"AI の問い合わせ先の障害で {run.attempts} 回中断し、再試行で" + ("も完了しませんでした" if failed else "完了しました"))
    if failed:
        notes.append(job.message)
    changes: dict[str, Any] = {"status": status, "finished_at": timezone.now(),
                               "message": "。".join(note for note in notes if note)[:4000]}
    won = EnrichmentRun.objects.filter(pk=run_pk, status=EnrichmentRun.Status.RUNNING).update(**changes)
    if won:
        run.refresh_from_db()
        logger.info("run %s finished: %s, %d done, %d failed, %d skipped, %d calls, $%s", run.public_id, run.status,
                    run.leads_done, run.leads_failed, run.leads_skipped, run.llm_calls,
                    from_micro_usd(run.cost_micro_usd))
        if notify:
            _notify_finished(run)
    return bool(won)


def _notify_finished(run: EnrichmentRun) -> None:
    from hokan.leads import notices
    from hokan.leads.columns import BY_NAME

    usage = get_ledger().snapshot()
    if run.status == EnrichmentRun.Status.FAILED:
        notices.notify_error(company="（補完ジョブ全体）", error=run.message)
        return
    if run.trigger != "schedule":
        return
    counts: Counter[str] = Counter()
    for filled in LeadRunResult.objects.filter(run=run, status=LeadRunResult.Status.DONE).values_list("filled", flat=True):
        counts.update(BY_NAME[name].label if name in BY_NAME else name for name in (filled or {}))
    notices.notify_success(records=run.leads_done, remaining_calls=usage.remaining_calls,
                           remaining_cost_usd=usage.remaining_cost_usd, filled=dict(counts.most_common()),
                           run_id=str(run.public_id))


# --- starting ---------------------------------------------------------------------------------
def _selection_message(*, selected: int, left: int, daily_limit: int, by_limit: bool) -> str:
    if left <= 0:
        return ""
    if by_limit:
        return f"--limit により {selected:,} 件を処理します。残り {left:,} 件は次回以降に処理します"
    return (f"本日の処理上限（{daily_limit:,} 件）のため {selected:,} 件を選びました。"
            f"残り {left:,} 件は明日以降に処理します")


def start_run(
    run: EnrichmentRun,
    *,
    ledger: UsageLedger,
    day: dt.date,
    limit: int | None = None,
    lead_ids: list[int] | None = None,
    shared: bool = False,
) -> EnrichmentRun:
    """Select the run's leads and create its job (once: a run with a job keeps it). Returns the
    run to work on — another process's run when ``shared`` and one is already running today
    (this run row is then deleted).

    Stops the run at once (LIMITED, ``message``) when the monthly limit is reached or nothing
    may be processed today; the message says when the daily limit cut the selection.
    """
    if run.job_id:
        return run
    ledger.settle_stale()
    usage = ledger.snapshot(day=day)
    if usage.limit_reached:
        EnrichmentRun.objects.filter(pk=run.pk).update(
            status=EnrichmentRun.Status.LIMITED, finished_at=timezone.now(),
            message=f"月額{usage.cost_limit_usd}USDまたは{usage.call_limit:,}件の上限に達しているため実行しませんでした")
        run.refresh_from_db()
        return run
    budget_left = usage.remaining_records_today
    cap = budget_left if limit is None else min(limit, budget_left)
    candidates = leads_to_enrich(lead_ids=lead_ids)
    ids = list(candidates.values_list("pk", flat=True)[: max(cap, 0)])
    total = len(ids) if lead_ids else candidates.count()
    left = max(0, total - len(ids))
    message = _selection_message(selected=len(ids), left=left, daily_limit=usage.daily_record_limit,
                                 by_limit=limit is not None and limit < budget_left)
    if not ids and budget_left <= 0:
        message = f"本日の処理上限 {usage.daily_record_limit:,} 件に達しています" + (
            f"。残り {left:,} 件は明日以降に処理します" if left else "")
    key = None
    if shared:
        # The day's shared run: processes started together join the first one's job.
        finished = Job.objects.filter(kind=KIND, key__startswith=f"{KIND}:shared:{day}:").exclude(
            status__in=jobs.ACTIVE).count()
        key = f"{KIND}:shared:{day}:{finished}"
    params = {"run": run.pk, "day": day.isoformat(), "notice": message}
    job = jobs.create_job(KIND, scope="leads", key=key, item_keys=ids, chunk_row_limit=int(settings.HOKAN_ENRICH_CHUNK_LEADS),
                          params=params)
    if job.params.get("run") != run.pk:
        other = EnrichmentRun.objects.filter(pk=job.params.get("run")).first()
        if other is not None and job.status in jobs.ACTIVE:
            run.delete()
            return other
        # That shared job is finished (or its run gone) although it looked active: a new key.
        job = jobs.create_job(KIND, scope="leads", item_keys=ids, chunk_row_limit=int(settings.HOKAN_ENRICH_CHUNK_LEADS),
                              params=params)
    EnrichmentRun.objects.filter(pk=run.pk).update(
        job=job, leads_selected=len(ids), leads_left=left, message=message, status=EnrichmentRun.Status.RUNNING)
    run.refresh_from_db()
    logger.info("run %s: %d leads selected (%d left), job %s", run.public_id, len(ids), left, job.public_id)
    return run


def report_of(run: EnrichmentRun, *, provider: str, ledger: UsageLedger, day: dt.date) -> EnrichReport:
    """The run's report from its rows (every attempt and worker)."""
    run.refresh_from_db()
    rows = LeadRunResult.objects.filter(run=run, status__in=LeadRunResult.FINAL).select_related("lead").order_by(
        "position", "pk")
    report = EnrichReport(run_id=str(run.public_id), dry_run=run.dry_run, provider=provider, status=run.status,
                          outcomes=[_outcome_of(row, row.lead.name) for row in rows], stopped_reason=run.message,
                          selected=run.leads_selected, left=run.leads_left)
    # A monthly or daily limit reached, the provider down, a refused key: the list is not done.
    report.interrupted = run.status in (EnrichmentRun.Status.FAILED, EnrichmentRun.Status.LIMITED)
    report.will_retry = run.status == EnrichmentRun.Status.QUEUED
    report.usage = ledger.snapshot(day=day)
    return report


def _dry_run(run: EnrichmentRun, report: EnrichReport, *, client: LLMClient, fetcher: Fetcher, ledger: UsageLedger,
             day: dt.date, limit: int | None, lead_ids: list[int] | None,
             on_start: Callable[[int], None] | None, on_lead: Callable[[LeadOutcome], None] | None) -> EnrichReport:
    usage = ledger.snapshot(day=day)
    cap = usage.remaining_records_today if limit is None else min(limit, usage.remaining_records_today)
    leads = list(leads_to_enrich(lead_ids=lead_ids)[: max(cap, 0)])
    if on_start:
        on_start(len(leads))
    for lead in leads:
        outcome = enrich_one(lead, fetcher=fetcher, client=client, ledger=ledger, day=day, dry_run=True)
        report.outcomes.append(outcome)
        if on_lead:
            on_lead(outcome)
    asked = sum(1 for o in report.outcomes if o.llm == "dry_run")
    report.estimated_cost_usd = Decimal(settings.POWERPLEXY_COST_PER_CALL_USD) * asked
    report.selected = len(leads)
    report.usage = usage
    EnrichmentRun.objects.filter(pk=run.pk).update(status=EnrichmentRun.Status.SUCCEEDED, finished_at=timezone.now(),
                                                   leads_selected=len(leads))
    return report


def enrich_leads(
    *,
    limit: int | None = None,
    dry_run: bool = False,
    lead_ids: list[int] | None = None,
    fetcher: Fetcher | None = None,
    client: LLMClient | None = None,
    ledger: UsageLedger | None = None,
    run: EnrichmentRun | None = None,
    on_start: Callable[[int], None] | None = None,
    on_lead: Callable[[LeadOutcome], None] | None = None,
    trigger: str = "cli",
    concurrency: int | None = None,
    notify: bool = False,
    success_notice: bool = False,
    shared: bool = False,
) -> EnrichReport:
    """Run the job in this process (see the module docstring) and return its report.

    limit: at most this many leads (further bounded by the daily record limit).
    dry_run: fetch nothing, pay nothing, write nothing but the run row: show what would be
        fetched and asked, and the most it could cost.
    lead_ids: enrich exactly these leads (even when needs_ai_update is off).
    fetcher / client / ledger: default to the configured ones (settings); the client is put
        behind the provider's shared limiter.
    run: an ``EnrichmentRun`` created beforehand (queued by the API or a task); its lead, when
        set, is the only one enriched; a run that has a job already is continued. None creates one.
    on_start(total) / on_lead(outcome): progress callbacks (on_lead from worker threads).
    trigger: recorded on the run created here ("cli", "schedule", "api", "admin").
    concurrency: leads enriched at once (default HOKAN_ENRICH_CONCURRENCY).
    notify / success_notice: send the §11 notices (Celery tasks).
    shared: join the day's shared run when another process is running one (the CLI).

    Never raises for a provider failure or a limit: the report says how the run ended
    (``status``, ``stopped_reason``, ``interrupted``).
    """
    client = client or get_client()
    ledger = ledger or get_ledger()
    fetcher = fetcher or fetcher_from_settings()
    if not dry_run:
        client = limited_client(client)  # every attempt (retries included) through the shared limiter
    day = timezone.localdate()
    if run is None:
        run = EnrichmentRun.objects.create(dry_run=dry_run, trigger=trigger)
    else:
        EnrichmentRun.objects.filter(pk=run.pk, status=EnrichmentRun.Status.QUEUED).update(
            status=EnrichmentRun.Status.RUNNING)
        run.refresh_from_db()
        if run.lead_id:
            lead_ids = [run.lead_id]
    report = EnrichReport(run_id=str(run.public_id), dry_run=dry_run, provider=client.provider)
    with daily_log(day) as log_path:
        logger.info("run %s started (provider=%s, dry_run=%s)", run.public_id, client.provider, dry_run)
        if dry_run:
            report = _dry_run(run, report, client=client, fetcher=fetcher, ledger=ledger, day=day, limit=limit,
                              lead_ids=lead_ids, on_start=on_start, on_lead=on_lead)
            report.log_path = log_path
            return report
        own_run = run
        run = start_run(run, ledger=ledger, day=day, limit=limit, lead_ids=lead_ids, shared=shared and not lead_ids)
        if run.status in FINISHED or run.job is None:
            if notify and run.status == EnrichmentRun.Status.LIMITED and ledger.snapshot(day=day).limit_reached:
                from hokan.leads import notices

                usage = ledger.snapshot(day=day)
                notices.notify_limit_reached(cost_limit_usd=usage.cost_limit_usd, call_limit=usage.call_limit,
                                             spent_usd=usage.cost_usd, calls=usage.calls)
            report = report_of(run, provider=client.provider, ledger=ledger, day=day)
            report.log_path = log_path
            return report
        if on_start:
            on_start(run.leads_selected)
        ctx = RunContext(run=run, day=day, fetcher=fetcher, client=client, ledger=ledger,
                         concurrency=int(settings.HOKAN_ENRICH_CONCURRENCY if concurrency is None else concurrency),
                         on_lead=on_lead, notify=notify, success_notice=success_notice)
        job = run.job
        if job.status == Job.Status.INTERRUPTED and run.status == EnrichmentRun.Status.RUNNING:
            jobs.resume_job(job)  # an interrupted run continued in process (a task without a broker)
        jobs.run_job(job, lambda job, chunk: enrich_chunk(ctx, job, chunk))
        finish_if_done(run.pk, notify=notify, success_notice=success_notice)
        report = report_of(run, provider=client.provider, ledger=ledger, day=day)
        report.joined = run.pk != own_run.pk
        report.log_path = log_path
        logger.info(
            "run %s: %d leads, filled %s, still missing %d, %d calls, $%s; remaining %d calls / $%s",
            run.public_id, len(report.outcomes), dict(report.filled_by_method), report.still_missing,
            report.llm_calls, report.cost_usd, report.usage.remaining_calls, report.usage.remaining_cost_usd,
        )
        return report
