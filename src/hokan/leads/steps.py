"""Enriching one lead: the company registry, then its site (rules), then the LLM for the rest.

``enrich_one(lead, ...)`` is the work of one lead in a run (hokan.leads.enrich runs it for
every selected lead, concurrently). Steps, each $0 except the last:

1. the columns to fill: blank and not protected by a manual edit;
2. the company registry (``hokan.registry.lookup``: EDINET / gBizINFO, by 法人番号 or a
   unique name), stored at once;
3. the company site (``hokan.leads.evidence``: homepage, its 会社概要 page), the rule values
   re-validated and stored at once;
4. the LLM only for what is still missing and may be asked (never personal data such as a
   contact person), one paid call through the usage ledger (``complete_json_budgeted``:
   reserve → call → commit, one re-ask after an unusable answer); its values validated,
   grounded (``hokan.core.extract.llm``: on our pages, else on the pages it cited) and stored.

Each step writes in its own transaction: a failure leaves earlier values stored.
``ai_last_enriched_at`` is set only when the lead is done (nothing left to ask, the LLM
answered, or no LLM is configured), never for a lead that failed or was skipped, so such a
lead keeps its place at the front of the queue.

The answer is kept before it is paid for: ``AnswerKeeper`` wraps the client and hands each
answer to ``on_answer`` (the run stores it on the lead's ``LeadRunResult``) before
``complete_json_budgeted`` commits the reservation. A run resuming a lead whose answer is
stored (``stored_answer``; its worker was killed before the commit) settles the open
reservation with the provider's reported cost and uses the stored answer: nothing is asked
or paid twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hokan.core.budget import UsageLedger
from hokan.core.errors import (
    AlreadyPaid,
    BudgetExceeded,
    LLMConfigError,
    LLMError,
    LLMOutputError,
    TransientError,
)
from hokan.core.extract.llm import ground_in_cited_pages, values_from_answer
from hokan.core.fields import FieldValue
from hokan.core.llm.budgeted import complete_json_budgeted
from hokan.core.llm.client import Completion, JsonRequest, LLMClient, Usage
from hokan.core.web import Fetcher, Page
from hokan.leads.ask import askable, asked_columns, build_request, clean_answer_value
from hokan.leads.columns import ENRICHABLE_FIELDS
from hokan.leads.evidence import gather_site_evidence
from hokan.leads.models import Lead
from hokan.leads.store import apply_values, missing_fields
from hokan.leads.values import clean_value
from hokan.registry.lookup import lookup_company
from hokan.registry.match import REGISTRY_FIELDS

logger = logging.getLogger("hokan.leads.enrich")


@dataclass
class LeadOutcome:
    """What happened to one lead. llm: "called" | "offline" | "not_needed" | "dry_run" |
    "budget" | "already_paid" | "error". calls: paid LLM calls (2 with the re-ask);
    cost_usd: what they cost (USD)."""

    lead_id: int
    name: str
    missing_before: list[str]
    filled: dict[str, FieldValue] = field(default_factory=dict)
    still_missing: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)
    llm: str = "not_needed"
    asked: list[str] = field(default_factory=list)
    calls: int = 0
    cost_usd: Decimal = Decimal("0")
    error: str = ""
    exception: BaseException | None = field(default=None, repr=False)  # for the error notice's trace
    registry: str = ""  # "corporate_number" | "name" | "ambiguous" | "not_found" | "" (not asked)

    @property
    def skipped(self) -> bool:
        """Not worked on: its paid call is paid or in flight under today's key already."""
        return self.llm == "already_paid"


# --- keeping the answer before it is paid for -------------------------------------------------
def committable_usd(usage: Usage, estimate_usd: Decimal) -> Decimal:
    """What the ledger commits for an answer: the provider's cost, or the estimate when it
    reported none (the rule of ``hokan.core.llm.budgeted``)."""
    return estimate_usd if usage.cost_source == "none" else usage.cost_usd


def stored_answer(completion: Completion, *, reservation_key: str, estimate_usd: Decimal) -> dict[str, Any]:
    """A Completion as JSON (``LeadRunResult.answer``): data, citations, usage, and the
    reservation it belongs to with the amount to commit for it (USD, as a string)."""
    usage = completion.usage
    return {
        "data": completion.data, "citations": list(completion.citations), "repaired": completion.repaired,
        "provider": completion.provider, "model": completion.model, "attempts": completion.attempts,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                  "cost_usd": str(usage.cost_usd), "cost_source": usage.cost_source, "calls": usage.calls},
        "reservation_key": reservation_key, "commit_usd": str(committable_usd(usage, estimate_usd)),
    }


def completion_of(answer: dict[str, Any]) -> Completion:
    """The Completion a ``stored_answer`` was made from (raw text not kept)."""
    usage = answer.get("usage") or {}
    return Completion(
        data=dict(answer.get("data") or {}),
        usage=Usage(input_tokens=int(usage.get("input_tokens", 0)), output_tokens=int(usage.get("output_tokens", 0)),
                    cost_usd=Decimal(str(usage.get("cost_usd", "0"))), cost_source=usage.get("cost_source", "provider"),
                    calls=int(usage.get("calls", 1))),
        provider=str(answer.get("provider", "")), model=str(answer.get("model", "")),
        citations=list(answer.get("citations") or []), attempts=int(answer.get("attempts", 1)),
        repaired=bool(answer.get("repaired", False)),
    )


class AnswerKeeper:
    """An ``LLMClient`` wrapper that hands every answer to ``on_answer`` as soon as it arrives
    and counts the paid answers (``paid``; an unusable answer is paid too).

    It is the innermost layer under ``complete_json_budgeted``, so ``on_answer`` runs before
    the reservation is committed. on_answer(stored_answer dict) must not raise for ordinary
    reasons (it stores a row). The reservation key of the n-th call of a request is
    ``{request.idempotency_key}:{n}``, as ``complete_json_budgeted`` numbers them.
    """

    def __init__(self, client: LLMClient, on_answer: Callable[[dict[str, Any]], None], *, estimate_usd: Decimal) -> None:
        self.client = client
        self.on_answer = on_answer
        self.estimate_usd = estimate_usd
        self.paid = 0
        self._calls = 0

    @property
    def provider(self) -> str:
        return self.client.provider

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def available(self) -> bool:
        return self.client.available

    def complete_json(self, request: JsonRequest, **options: Any) -> Completion:
        self._calls += 1
        try:
            completion = self.client.complete_json(request, **options)
        except LLMOutputError:
            self.paid += 1
            raise
        self.paid += 1
        self.on_answer(stored_answer(completion, reservation_key=f"{request.idempotency_key}:{self._calls}",
                                     estimate_usd=self.estimate_usd))
        return completion


def settle_stored_answer(ledger: UsageLedger, answer: dict[str, Any], *, estimate_usd: Decimal) -> Completion:
    """Commit the reservation of a stored answer with the provider's cost (a no-op when it is
    settled already) and return the answer as a Completion. Sends nothing to the provider."""
    reservation = ledger.reserve(cost_usd=estimate_usd, key=str(answer["reservation_key"]))
    ledger.commit(reservation, cost_usd=Decimal(str(answer["commit_usd"])))
    return completion_of(answer)


# --- the steps ---------------------------------------------------------------------------------
def fill_from_registry(lead: Lead, targets: list[str], outcome: LeadOutcome) -> list[str]:
    """Step 2, $0: fill what the company registry knows (``hokan.registry.lookup``: 法人番号
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
    written = _store(lead, values, Lead.Source.REGISTRY)
    outcome.filled.update({v.field: v for v in values if v.field in written})
    for value in values:
        if value.field in written:
            logger.info("%s [%s] %s = %r (registry)", lead.name, lead.pk, value.field, value.value)
    return written


def _store(lead: Lead, values: list[FieldValue], source: str) -> list[str]:
    """Write ``values`` into the blank, unprotected columns of the lead (one transaction, the
    row locked); ``ai_source`` = ``source`` when something was written. Returns the columns."""
    if not values:
        return []
    with transaction.atomic():
        fresh = Lead.objects.select_for_update().get(pk=lead.pk)
        written = apply_values(fresh, values)
        if written:
            fresh.ai_source = source
            fresh.save()
    return written


def _valid_rule_value(value: FieldValue) -> bool:
    """Re-validate a rule value with the same rules as imported and AI values."""
    try:
        return clean_value(value.field, value.value) is not None
    except (ValueError, KeyError):
        return False


def _mark_done(lead: Lead, *, finished: bool) -> None:
    """The lead is done for this run: ``ai_last_enriched_at`` now; ``needs_ai_update`` off when
    nothing is left to ask (``finished``)."""
    changes: dict[str, Any] = {"ai_last_enriched_at": timezone.now()}
    if finished:
        changes["needs_ai_update"] = False
    Lead.objects.filter(pk=lead.pk).update(**changes)


def enrich_one(
    lead: Lead,
    *,
    fetcher: Fetcher,
    client: LLMClient,
    ledger: UsageLedger,
    day: dt.date,
    dry_run: bool = False,
    work_key: str | None = None,
    on_answer: Callable[[dict[str, Any]], None] | None = None,
    stored: dict[str, Any] | None = None,
) -> LeadOutcome:
    """Enrich one lead (see the module docstring). Never raises for a per-lead failure: see
    ``outcome.error`` (a 4xx for this lead, an unusable answer after the re-ask).

    work_key: the idempotency key of the lead's paid call (default ``lead:{id}:{day}``).
    on_answer: called with each answer (``stored_answer``) before its reservation is committed.
    stored: an answer kept by an earlier attempt of the run (``LeadRunResult.answer``): used
        instead of asking, its reservation settled with its recorded cost.

    Raises:
        BudgetExceeded: the monthly limit was reached before this lead's LLM call; the
            lead's registry and rule values are stored.
        LLMConfigError: the provider refused the key or the settings (401, 403, 404, no
            quota): no other lead can succeed; nothing was charged.
        LLMTransientError, RateLimited: the provider is unavailable after the call's retries
            (the values found so far are stored, the reservation released).
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
        _mark_done(lead, finished=True)
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
    written = _store(lead, accepted, Lead.Source.RULE)
    outcome.filled.update({v.field: v for v in accepted if v.field in written})
    for name in written:
        logger.info("%s [%s] %s = %r (rule, %s)", lead.name, lead.pk, name, rule_values[name].value,
                    rule_values[name].source_url)

    remaining = [name for name in targets if name not in written]
    outcome.still_missing = remaining
    # 所在地 answers fill prefecture and city too; ask for it once.
    to_ask = askable(remaining)
    if not to_ask:
        # Nothing an LLM may be asked for is missing: no reason to come back tomorrow.
        _mark_done(lead, finished=True)
        return outcome
    outcome.asked = to_ask
    if not client.available:
        outcome.llm = "offline"
        logger.info("%s [%s] LLM skipped (offline): %s", lead.name, lead.pk, ", ".join(to_ask))
        _mark_done(lead, finished=False)
        return outcome

    key = work_key or f"lead:{lead.pk}:{day.isoformat()}"
    estimate = Decimal(settings.POWERPLEXY_COST_PER_CALL_USD)
    keeper = AnswerKeeper(client, on_answer or (lambda answer: None), estimate_usd=estimate)
    try:
        if stored is not None:
            completion = settle_stored_answer(ledger, stored, estimate_usd=estimate)
            keeper.paid = int(completion.usage.calls or 1)
            logger.info("%s [%s] LLM answer of an earlier attempt used (reservation %s settled)", lead.name, lead.pk,
                        stored.get("reservation_key"))
        else:
            request = build_request(lead, to_ask, key=key)
            completion = complete_json_budgeted(keeper, request, ledger=ledger, estimate_usd=estimate, key=key)
    except (BudgetExceeded, LLMConfigError, TransientError):
        raise  # the run stops (hokan.leads.enrich); the lead is worked on again when it resumes
    except AlreadyPaid as exc:
        # Paid (or in flight) under this key already, e.g. a redelivered task: never twice.
        outcome.llm = "already_paid"
        logger.info("%s [%s] LLM skipped: %s", lead.name, lead.pk, exc)
        return outcome
    except LLMError as exc:
        outcome.llm = "error"
        outcome.exception = exc
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.calls = keeper.paid
        usage = getattr(exc, "usage", None)
        if isinstance(usage, Usage):
            outcome.cost_usd = usage.cost_usd
        logger.error("%s [%s] LLM failed: %s", lead.name, lead.pk, outcome.error)
        return outcome
    outcome.llm = "called"
    outcome.calls = keeper.paid
    outcome.cost_usd = completion.usage.cost_usd
    ai_values, rejected = values_from_answer(
        completion.data, asked_columns(to_ask), clean=clean_answer_value, pages=pages,
        citations=completion.citations, subject=lead.name, repaired=completion.repaired,
    )
    for message in rejected:
        logger.warning("rejected AI value: %s", message)
    # Issue 7 §10: a quote not on our pages is checked on the page the model cited ($0).
    ai_values, cited = ground_in_cited_pages(
        ai_values, fetcher.fetch, max_pages=int(settings.HOKAN_GROUNDING_MAX_PAGES), citations=completion.citations,
        known_urls=[url for page in pages for url in (page.url, page.final_url)],
    )
    outcome.fetched.extend(page.final_url for page in cited.pages)
    outcome.fetch_errors.extend(cited.errors)
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
