"""The lead-enrichment job (design document 000 §2, §10): one function, three entry points.

``enrich_leads()`` is what the CLI (``hokan leads enrich``), the Celery task and the API call:

1. check usage (§8): stop with a warning when the monthly limits are reached;
2. choose leads with ``needs_ai_update``, never-enriched first, up to the daily record limit;
3. per lead, find the missing columns (blank and not protected by a manual edit);
4. the company registry first ($0: EDINET / gBizINFO, by 法人番号 or a unique name);
   then rules ($0): fetch the company site (homepage, then its 会社概要 page) and extract;
5. the LLM only for what is still missing and may be asked (never personal data such as a
   contact person), one call per lead, through the usage ledger (reserve → commit);
6. validate and normalise every value (``values.clean_value``), store it with provenance;
7. report counts, remaining calls and estimated remaining cost (§11).

Each lead is written in its own transaction: a failure leaves that lead's stored values as
they were and the run goes on with the next one. A log file per day is written to
``HOKAN_LOG_DIR/ai_enrich_YYYYMMDD.log``.

Running twice is safe (a retried or redelivered Celery task, or the CLI after a crash):

- a lead done earlier (``needs_ai_update`` off after its call) is not selected again;
- the LLM call of a lead is paid work under the key ``lead:{id}:{date}`` (a refresh run of one
  lead: ``lead:{id}:run:{run id}``), and ``complete_json_budgeted`` refuses to call again for
  a key that is paid or in flight (``AlreadyPaid``): the lead is skipped (``llm =
  "already_paid"``) and waits for the next day;
- a provider that keeps failing (``LLMTransientError`` after the client's retries, e.g. HTTP
  429) or a rate limit that admits nothing in time (``RateLimited``) stops the run:
  ``report.interrupted_by`` holds the error, and the caller (the Celery task) retries later;
  the next attempt carries on with the leads still to do.

Every LLM request takes a slot of the provider's shared rate limit first
(``hokan.core.ratelimit``: HOKAN_LLM_RATE_LIMIT_PER_MIN, through Redis when REDIS_URL is set).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from hokan.core.budget import UsageLedger, UsageSnapshot, get_ledger, to_micro_usd
from hokan.core.errors import AlreadyPaid, BudgetExceeded, LLMError, LLMTransientError, RateLimited
from hokan.core.extract.llm import values_from_answer
from hokan.core.fields import FieldValue
from hokan.core.llm import get_client
from hokan.core.llm.budgeted import complete_json_budgeted
from hokan.core.llm.client import LLMClient
from hokan.core.llm.limited import RateLimitedClient
from hokan.core.ratelimit import llm_rate_limiter
from hokan.core.web import Fetcher, Page, fetcher_from_settings
from hokan.leads.ask import askable, asked_columns, build_request, clean_answer_value
from hokan.leads.columns import ENRICHABLE_FIELDS
from hokan.leads.evidence import gather_site_evidence
from hokan.leads.models import EnrichmentRun, Lead
from hokan.leads.store import apply_values, missing_fields
from hokan.leads.values import clean_value
from hokan.registry.lookup import lookup_company
from hokan.registry.match import REGISTRY_FIELDS

logger = logging.getLogger("hokan.leads.enrich")


@dataclass
class LeadOutcome:
    """What happened to one lead. llm: "called" | "offline" | "not_needed" | "dry_run" |
    "budget" | "already_paid" | "error"."""

    lead_id: int
    name: str
    missing_before: list[str]
    filled: dict[str, FieldValue] = field(default_factory=dict)
    still_missing: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)
    llm: str = "not_needed"
    asked: list[str] = field(default_factory=list)
    cost_usd: Decimal = Decimal("0")
    error: str = ""
    exception: BaseException | None = field(default=None, repr=False)  # for the error notice's trace
    registry: str = ""  # "corporate_number" | "name" | "ambiguous" | "not_found" | "" (not asked)


@dataclass
class EnrichReport:
    """The outcome of one run (§11). Amounts in USD."""

    run_id: str
    dry_run: bool
    provider: str
    outcomes: list[LeadOutcome] = field(default_factory=list)
    stopped_reason: str = ""
    usage: UsageSnapshot | None = None
    estimated_cost_usd: Decimal = Decimal("0")
    log_path: Path | None = None
    # The LLMTransientError / RateLimited that stopped the run early: retry later.
    interrupted_by: Exception | None = None
    interrupted_lead: str = ""  # the company whose call was interrupted

    @property
    def leads_done(self) -> int:
        return sum(1 for o in self.outcomes if not o.error)

    @property
    def leads_failed(self) -> int:
        return sum(1 for o in self.outcomes if o.error)

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
    def llm_calls(self) -> int:
        return sum(1 for o in self.outcomes if o.llm == "called")

    @property
    def cost_usd(self) -> Decimal:
        return sum((o.cost_usd for o in self.outcomes), Decimal("0"))


# --- selection ----------------------------------------------------------------------------
def leads_to_enrich(*, lead_ids: list[int] | None = None) -> QuerySet[Lead]:
    """Leads that need enrichment, never-enriched first, then least recently enriched (§10)."""
    queryset = Lead.objects.filter(pk__in=lead_ids) if lead_ids else Lead.objects.filter(needs_ai_update=True)
    # nulls_first gives the same order on SQLite and PostgreSQL.
    return queryset.order_by(F("ai_last_enriched_at").asc(nulls_first=True), "pk")


# --- the job ----------------------------------------------------------------------------------
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


def fill_from_registry(lead: Lead, targets: list[str], outcome: LeadOutcome) -> list[str]:
    """Step 1, $0: fill what the company registry knows (``hokan.registry.lookup``: 法人番号
    match, or a unique name match; gBizINFO online when the local records do not know it).

    An ambiguous name (several registry companies) fills nothing; ``outcome.registry``
    says how the lead was matched. Returns the columns written.
    """
    wanted = [name for name in REGISTRY_FIELDS if name in targets]
    if not wanted:
        return []
    result = lookup_company(corporate_number=lead.corporate_number, name=lead.name, prefecture=lead.prefecture)
    outcome.registry = result.status
    if result.status == "ambiguous":
        logger.info("%s [%s] registry: %s", lead.name, lead.pk, result.message)
    values = result.values(fields=wanted)
    if not values:
        return []
    with transaction.atomic():
        fresh = Lead.objects.select_for_update().get(pk=lead.pk)
        written = apply_values(fresh, values)
        if written:
            fresh.ai_source = Lead.Source.REGISTRY
            fresh.save()
    outcome.filled.update({v.field: v for v in values if v.field in written})
    for name in written:
        logger.info("%s [%s] %s = %r (registry)", lead.name, lead.pk, name, getattr(fresh, name))
    return written


def enrich_one(
    lead: Lead,
    *,
    fetcher: Fetcher,
    client: LLMClient,
    ledger: UsageLedger,
    day: dt.date,
    dry_run: bool = False,
    work_key: str | None = None,
) -> LeadOutcome:
    """Enrich one lead (steps 3–6). Never raises for a per-lead failure: see ``outcome.error``.

    work_key: the idempotency key of the lead's paid call (default ``lead:{id}:{day}``).

    Raises:
        BudgetExceeded: the monthly limit was reached before this lead's LLM call; the
            lead's rule values are already stored.
        LLMTransientError, RateLimited: the provider is unavailable for now (the rule values
            are stored, the reservation released); the run should stop and retry later.
    """
    targets = missing_fields(lead, ENRICHABLE_FIELDS)
    outcome = LeadOutcome(lead_id=lead.pk, name=lead.name, missing_before=list(targets))
    if dry_run:
        outcome.fetched = [lead.website_url] if lead.website_url and targets else []
        outcome.asked = askable(targets)
        outcome.llm = "dry_run" if outcome.asked and client.available else ("offline" if outcome.asked else "not_needed")
        outcome.still_missing = list(targets)
        return outcome
    if not targets:
        with transaction.atomic():
            Lead.objects.filter(pk=lead.pk).update(ai_last_enriched_at=timezone.now(), needs_ai_update=False)
        return outcome

    registry_written = fill_from_registry(lead, targets, outcome)
    if registry_written:
        lead.refresh_from_db()
        targets = [name for name in targets if name not in registry_written]

    pages: list[Page] = []
    rule_values: dict[str, FieldValue] = {}
    if lead.website_url:
        evidence = gather_site_evidence(lead.website_url, fetcher)
        outcome.fetched.extend(evidence.fetched)
        outcome.fetch_errors.extend(evidence.fetch_errors)
        rule_values, pages = evidence.values, evidence.pages
    accepted = [value for name, value in rule_values.items() if name in targets and _valid_rule_value(value)]
    with transaction.atomic():
        fresh = Lead.objects.select_for_update().get(pk=lead.pk)
        written = apply_values(fresh, accepted)
        if written:
            fresh.ai_source = Lead.Source.RULE
        fresh.ai_last_enriched_at = timezone.now()
        fresh.save()
    outcome.filled.update({v.field: v for v in accepted if v.field in written})
    for name in written:
        logger.info("%s [%s] %s = %r (rule, %s)", lead.name, lead.pk, name, getattr(fresh, name), rule_values[name].source_url)

    remaining = [name for name in targets if name not in written]
    # 所在地 answers fill prefecture and city too; ask for it once.
    to_ask = askable(remaining)
    if not to_ask:
        # Nothing an LLM may be asked for is missing: no reason to come back tomorrow.
        outcome.still_missing = remaining
        Lead.objects.filter(pk=lead.pk).update(needs_ai_update=False)
        return outcome
    outcome.asked = to_ask
    if not client.available:
        outcome.llm = "offline"
        outcome.still_missing = remaining
        logger.info("%s [%s] LLM skipped (offline): %s", lead.name, lead.pk, ", ".join(to_ask))
        return outcome

    key = work_key or f"lead:{lead.pk}:{day.isoformat()}"
    request = build_request(lead, to_ask, key=key)
    try:
        completion = complete_json_budgeted(
            client, request, ledger=ledger, estimate_usd=Decimal(settings.POWERPLEXY_COST_PER_CALL_USD), key=key
        )
    except BudgetExceeded:
        outcome.llm = "budget"
        outcome.still_missing = remaining
        raise
    except AlreadyPaid as exc:
        # Paid (or in flight) under this key already, e.g. a redelivered task: never twice.
        outcome.llm = "already_paid"
        outcome.still_missing = remaining
        logger.info("%s [%s] LLM skipped: %s", lead.name, lead.pk, exc)
        return outcome
    except (LLMTransientError, RateLimited):
        outcome.llm = "error"
        outcome.still_missing = remaining
        raise
    except LLMError as exc:
        outcome.llm = "error"
        outcome.exception = exc
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.still_missing = remaining
        usage = getattr(exc, "usage", None)
        if usage is not None:
            outcome.cost_usd = usage.cost_usd
        logger.error("%s [%s] LLM failed: %s", lead.name, lead.pk, outcome.error)
        return outcome
    outcome.llm = "called"
    outcome.cost_usd = completion.usage.cost_usd
    ai_values, rejected = values_from_answer(
        completion.data, asked_columns(to_ask), clean=clean_answer_value, pages=pages,
        citations=completion.citations, subject=lead.name, repaired=completion.repaired,
    )
    for message in rejected:
        logger.warning("rejected AI value: %s", message)
    with transaction.atomic():
        fresh = Lead.objects.select_for_update().get(pk=lead.pk)
        written_ai = apply_values(fresh, ai_values)
        now = timezone.now()
        if written_ai:
            fresh.ai_source = Lead.Source.AI
            fresh.ai_last_updated = now
        fresh.needs_ai_update = False
        fresh.ai_last_enriched_at = now
        fresh.save()
    outcome.filled.update({v.field: v for v in ai_values if v.field in written_ai})
    for name in written_ai:
        logger.info("%s [%s] %s = %r (ai)", lead.name, lead.pk, name, getattr(fresh, name))
    outcome.still_missing = [name for name in remaining if name not in written_ai]
    return outcome


def _valid_rule_value(value: FieldValue) -> bool:
    """Re-validate a rule value with the same rules as imported and AI values."""
    try:
        return clean_value(value.field, value.value) is not None
    except (ValueError, KeyError):
        return False


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
) -> EnrichReport:
    """Run the job (§10) and return its report. Also records an ``EnrichmentRun`` row.

    limit: at most this many leads (further bounded by the daily record limit).
    dry_run: fetch nothing, pay nothing, write nothing but the run row: show what would be
        fetched and asked, and the most it could cost.
    lead_ids: enrich exactly these leads (even when needs_ai_update is off).
    fetcher / client / ledger: default to the configured ones (settings).
    run: an ``EnrichmentRun`` created beforehand (queued by the API or a task); its lead,
        when set, is the only one enriched. None creates one.
    on_start(total) / on_lead(outcome): progress callbacks.
    trigger: recorded on the run created here ("cli", "schedule", "api", "admin").

    A provider failure that outlasts the client's retries stops the run with
    ``report.interrupted_by`` set (see the module docstring); it is not raised.
    """
    fetcher = fetcher or fetcher_from_settings()
    client = client or get_client()
    ledger = ledger or get_ledger()
    if client.available and not dry_run and not isinstance(client, RateLimitedClient):
        limiter = llm_rate_limiter(client.provider)
        if limiter is not None:
            client = RateLimitedClient(client, limiter)
    day = timezone.localdate()
    if run is None:
        run = EnrichmentRun.objects.create(dry_run=dry_run, trigger=trigger)
    else:
        EnrichmentRun.objects.filter(pk=run.pk).update(status=EnrichmentRun.Status.RUNNING)
        if run.lead_id:
            lead_ids = [run.lead_id]
    report = EnrichReport(run_id=str(run.public_id), dry_run=dry_run, provider=client.provider)
    with daily_log(day) as log_path:
        report.log_path = log_path
        logger.info("run %s started (provider=%s, dry_run=%s)", run.public_id, client.provider, dry_run)
        if not dry_run:
            ledger.settle_stale()
        usage = ledger.snapshot(day=day)
        if usage.limit_reached and client.available and not dry_run:
            report.stopped_reason = (
                f"月額{usage.cost_limit_usd}USDまたは{usage.call_limit:,}件の上限に達しているため実行しませんでした"
            )
            logger.warning(report.stopped_reason)
            return _finish(run, report, ledger, day, EnrichmentRun.Status.LIMITED)
        budget_left = usage.remaining_records_today
        cap = budget_left if limit is None else min(limit, budget_left)
        leads = list(leads_to_enrich(lead_ids=lead_ids)[: max(cap, 0)])
        if not leads and budget_left <= 0:
            report.stopped_reason = f"本日の処理上限 {usage.daily_record_limit:,} 件に達しています"
        if on_start:
            on_start(len(leads))
        status = EnrichmentRun.Status.SUCCEEDED
        for lead in leads:
            if not dry_run and not ledger.claim_record(f"lead:{lead.pk}", day=day):
                report.stopped_reason = f"本日の処理上限 {usage.daily_record_limit:,} 件に達しました"
                break
            # A refresh of one lead pays again on purpose (a new run); a redelivered task of the
            # same run, or the nightly run twice a day, does not.
            work_key = f"lead:{lead.pk}:run:{run.public_id}" if run.lead_id else f"lead:{lead.pk}:{day.isoformat()}"
            try:
                outcome = enrich_one(lead, fetcher=fetcher, client=client, ledger=ledger, day=day, dry_run=dry_run,
                                     work_key=work_key)
            except BudgetExceeded as exc:
                report.stopped_reason = f"⚠️ API上限到達: {exc}"
                logger.warning(report.stopped_reason)
                status = EnrichmentRun.Status.LIMITED
                break
            except (LLMTransientError, RateLimited) as exc:
                report.interrupted_by = exc
                report.interrupted_lead = lead.name
                report.stopped_reason = f"AI の問い合わせ先が一時的に使えないため中断しました（{exc}）。残りは再試行で処理します"
                logger.warning("%s [%s]: %s", lead.name, lead.pk, report.stopped_reason)
                status = EnrichmentRun.Status.FAILED
                break
            except Exception as exc:  # one broken lead must not stop the night's run
                logger.exception("lead %s (%s) failed", lead.pk, lead.name)
                outcome = LeadOutcome(lead_id=lead.pk, name=lead.name, missing_before=[], error=f"{type(exc).__name__}: {exc}",
                                      exception=exc)
            report.outcomes.append(outcome)
            if on_lead:
                on_lead(outcome)
        if dry_run:
            asked = sum(1 for o in report.outcomes if o.llm == "dry_run")
            report.estimated_cost_usd = Decimal(settings.POWERPLEXY_COST_PER_CALL_USD) * asked
        return _finish(run, report, ledger, day, status)


def _finish(run: EnrichmentRun, report: EnrichReport, ledger: UsageLedger, day: dt.date, status: str) -> EnrichReport:
    report.usage = ledger.snapshot(day=day)
    run.status = status
    run.finished_at = timezone.now()
    run.leads_selected = len(report.outcomes)
    run.leads_done = report.leads_done
    run.leads_failed = report.leads_failed
    run.fields_missing_before = report.missing_before
    run.fields_filled = dict(report.filled_by_method)
    run.fields_missing_after = report.still_missing
    run.llm_calls = report.llm_calls
    run.cost_micro_usd = to_micro_usd(report.cost_usd)
    run.message = report.stopped_reason
    run.save()
    logger.info(
        "run %s finished: %d leads, filled %s, still missing %d, %d calls, $%s; remaining %d calls / $%s",
        run.public_id, len(report.outcomes), dict(report.filled_by_method), report.still_missing,
        report.llm_calls, report.cost_usd, report.usage.remaining_calls, report.usage.remaining_cost_usd,
    )
    return report
