"""Creating, estimating, running, resuming and cancelling scoring jobs (issue 11 §4, §6).

The CLI (``hokan scoring ...``), the admin actions, the API and the Celery chunk handler all
go through these functions::

    sjob = prepare_job(FileSource("in.csv"), categories=load_categories("cats.yaml"),
                       text_column="発話", name="nightly", output="out.csv")   # or the job of that name
    estimate(sjob, table)            # dry run: rows, calls, tokens, cost — nothing is paid
    report = run_job(sjob)           # the pipeline (engine.run_scoring) until no chunk is left
    cancel(sjob); resume(sjob)       # core.jobs.interrupt_job / resume_job

A job is named (``--job NAME``; default: the input's file name and the time). Preparing a job
whose name exists returns it — that is how a run is resumed — after checking the input is the
same file (its SHA-256) and the same columns; another input under the same name is refused.
The settings a job was created with (``RunConfig``, categories, system prompt, provider,
model) are stored with it, so a resumed run asks the same questions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from hokan.core import jobs
from hokan.core.errors import InputError
from hokan.scoring.config import Categories, RunConfig, load_system_prompt
from hokan.scoring.io import FileSink, FileSource, InputTable, Sink, Source, Utterance, utterances
from hokan.scoring.models import ScoringAnswer, ScoringJob, ScoringResult
from hokan.scoring.questions import build_request, masked

KIND = "scoring.score"
SCOPE = "scoring"


def _digest(source: Source) -> str:
    path = getattr(source, "path", None)
    if path is None:
        return ""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def default_name(source: Source) -> str:
    return f"{Path(source.label).stem}-{timezone.localtime():%Y%m%d-%H%M%S}"


def prepare_job(source: Source, *, categories: Categories | None, text_column: str, id_column: str = "",
                output: str = "", name: str = "", config: RunConfig | None = None, system_prompt: str | None = None,
                mode: str = "online", provider: str = "", model: str = "",
                table: InputTable | None = None) -> tuple[ScoringJob, InputTable, bool]:
    """The job named ``name`` (resumed) or a new one: (job, the input table, created).

    categories / config / system_prompt: required for a new job; ignored (the stored ones
    are used) when resuming, except ``output`` which may name another file.

    Raises:
        InputError: unreadable input, missing columns, an existing name with another input,
            no categories for a new job.
    """
    table = table if table is not None else source.read()
    rows = utterances(table, text_column=text_column, id_column=id_column, source=source.label)
    digest = _digest(source)
    if name and (existing := ScoringJob.objects.filter(name=name).select_related("job").first()):
        if (existing.source_digest and digest and existing.source_digest != digest) or existing.total_rows != len(rows):
            raise InputError(f"ジョブ「{name}」は別の入力（{existing.source}、{existing.total_rows:,} 行）で作成されています。"
                             "別のジョブ名を指定してください", source=source.label)
        if existing.text_column != text_column:
            raise InputError(f"ジョブ「{name}」の発話の列は「{existing.text_column}」です", source=source.label)
        if output and output != existing.output:
            ScoringJob.objects.filter(pk=existing.pk).update(output=output)
            existing.output = output
        return existing, table, False
    if categories is None:
        raise InputError("新しいジョブにはカテゴリのファイル（--categories）が必要です")
    config = config or RunConfig.from_settings()
    name = name or default_name(source)
    prompt = system_prompt if system_prompt is not None else load_system_prompt(
        getattr(settings, "HOKAN_SCORING_SYSTEM_PROMPT_FILE", "") or None)
    with transaction.atomic():
        job = jobs.create_job(KIND, scope=SCOPE, params={"name": name}, total_rows=len(rows),
                              chunk_row_limit=config.chunk_row_limit, retry_limit=config.chunk_retry_limit,
                              key=f"scoring:{name}")
        sjob = ScoringJob.objects.create(
            job=job, name=name, source=str(getattr(source, "path", source.label)), source_kind=source.kind,
            output=output, text_column=text_column, id_column=id_column, mode=mode, config=config.to_json(),
            categories=categories.to_json(), system_prompt=prompt, provider=provider, model=model,
            headers=table.headers, total_rows=len(rows), source_digest=digest)
    return sjob, table, True


def job_rows(sjob: ScoringJob, table: InputTable) -> list[Utterance]:
    return utterances(table, text_column=sjob.text_column, id_column=sjob.id_column, source=sjob.source)


def get_job(name_or_id: str) -> ScoringJob:
    """The job by name or by its public id. Raises InputError when there is none."""
    found = ScoringJob.objects.select_related("job").filter(name=name_or_id).first()
    if found is None:
        try:
            found = ScoringJob.objects.select_related("job").filter(job__public_id=name_or_id).first()
        except Exception:  # not a UUID
            found = None
    if found is None:
        raise InputError(f"ジョブ「{name_or_id}」が見つかりません（hokan scoring status で一覧できます）")
    return found


# --- cost ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A dry run (issue 11 §4): ``rows`` to score, ``cells`` (rows × categories), ``calls``
    (requests, at least), ``cached_rows`` (cells' rows answered by the cache), tokens (estimated:
    one token per character of Japanese prompt text, 12 per score answered), ``cost_usd``
    (USD, exact: the price table of the model, else ``per_call_usd`` per call) and where the
    price comes from."""

    rows: int
    cells: int
    calls: int
    cached_rows: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    price_source: str
    provider: str
    model: str


def estimate(sjob: ScoringJob, rows: list[Utterance], client: Any, *, use_cache: bool = True) -> Estimate:
    """What the job's remaining work would cost, without asking anything (no ledger, no call)."""
    from hokan.core.cache import cache_key, get_cache

    config = RunConfig.from_json(sjob.config)
    categories = Categories.from_json(sjob.categories, config.categories_per_call)
    done = set(ScoringResult.objects.filter(job=sjob, status="ok").values_list("row_index", "category"))
    cache = get_cache(ttl_s=config.cache_ttl_s, max_entries=config.cache_max_entries) \
        if use_cache and config.cache_enabled else None
    per = config.utterances_per_call
    calls = cells = cached = input_tokens = output_tokens = 0
    todo_rows: set[int] = set()
    for block in categories.blocks:
        for chunk_start in range(0, len(rows), config.chunk_row_limit):
            chunk_end = min(chunk_start + config.chunk_row_limit, len(rows))
            for start in range(chunk_start, chunk_end, per):
                asked = []
                for row in rows[start:min(start + per, chunk_end)]:
                    if all((row.index, c.name) in done for c in block) or not row.text.strip() \
                            or len(row.text) > config.max_utterance_chars:
                        continue
                    if cache is not None:
                        request = build_request([masked(row.text)], block, system_prompt=sjob.system_prompt,
                                                config=config)
                        if cache.lookup("scoring", cache_key(str(client.provider), str(client.model), request),
                                        ) is not None:
                            cached += 1
                            continue
                    asked.append(row)
                    todo_rows.add(row.index)
                if asked:
                    request = build_request([row.text for row in asked], block, system_prompt=sjob.system_prompt,
                                            config=config)
                    calls += 1
                    cells += len(asked) * len(block)
                    input_tokens += len(request.system) + len(request.user) + len(str(request.schema)) // 2
                    output_tokens += 12 * len(asked) * len(block) + 20
    price = getattr(client, "price_table", {}).get(str(client.model)) if client is not None else None
    if client is not None and not getattr(client, "available", True):  # no LLM: the offline scorer pays nothing
        cost, source = Decimal("0"), "オフライン採点（method=embedding）: 支払いなし"
    elif price is not None:
        # Price.cost_usd counts one request fee; the other calls' fees are added
        cost = (price.cost_usd(input_tokens, output_tokens) + price.request_fee_usd * (calls - 1)) if calls \
            else Decimal("0")
        source = f"料金表（{client.model}）"
    else:
        cost = Decimal(settings.HOKAN_SCORING_COST_PER_CALL_USD) * calls
        source = "1回あたりの見積り（HOKAN_SCORING_COST_PER_CALL_USD）"
    return Estimate(rows=len(todo_rows), cells=cells, calls=calls, cached_rows=cached, input_tokens=input_tokens,
                    output_tokens=output_tokens, cost_usd=cost.quantize(Decimal("0.000001")), price_source=source,
                    provider=str(getattr(client, "provider", "")), model=str(getattr(client, "model", "")))


# --- running ------------------------------------------------------------------------------------
def llm_scorer(sjob: ScoringJob, counters: Any, *, no_cache: bool = False, client: Any = None) -> Any:
    """The LLM scorer of ``sjob`` on the configured provider (``get_client(profile="scoring")``).

    With no provider configured (offline) the offline scorer is returned instead: method
    "embedding" (``hokan.scoring.offline.embedding_scorer``, issue 11 §7).

    Raises:
        LLMConfigError: the provider's key/endpoint is missing.
    """
    from hokan.core.budget import get_ledger
    from hokan.core.llm import get_client
    from hokan.scoring.engine import LLMScorer

    client = client or get_client(profile="scoring")
    if not client.available:  # no LLM key: scoring still means something (issue 11 §7)
        from hokan.scoring.offline import embedding_scorer

        return embedding_scorer(sjob, counters)
    config = RunConfig.from_json(sjob.config)
    if no_cache:
        config = RunConfig.from_json({**config.to_json(), "cache_enabled": False})
    categories = Categories.from_json(sjob.categories, config.categories_per_call)
    if not sjob.provider:
        ScoringJob.objects.filter(pk=sjob.pk).update(provider=str(client.provider), model=str(client.model))
        sjob.provider, sjob.model = str(client.provider), str(client.model)
    return LLMScorer(sjob, config, categories, client=client, ledger=get_ledger(SCOPE),
                     estimate_usd=Decimal(settings.HOKAN_SCORING_COST_PER_CALL_USD), counters=counters)


def file_sink(sjob: ScoringJob, table: InputTable) -> FileSink | None:
    """The job's output file sink, or None when it has no output file."""
    if not sjob.output:
        return None
    from hokan.scoring.engine import result_grid

    config = RunConfig.from_json(sjob.config)
    names = [c["name"] for c in sjob.categories]
    done = "完了（method=embedding）" if sjob.provider == "offline" else "完了"  # the offline scorer, marked
    return FileSink(Path(sjob.output), table, names, config.scale, lambda: _in_thread_grid(sjob, result_grid),
                    done_label=done)


def _in_thread_grid(sjob: ScoringJob, fn: Callable[[ScoringJob], Any]) -> Any:
    from django.db import connection

    try:
        return fn(sjob)
    finally:
        connection.close()


def build_scorer(sjob: ScoringJob, table: InputTable, *, no_cache: bool = False, scorer: Any = None,
                 client: Any = None) -> tuple[Any, Any]:
    """The scorer of ``sjob`` and its counters: ``scorer`` when given; the video scorer for a
    column of videos (document 002 §1.2, hokan.scoring.video); else the LLM scorer (which hands
    over to the offline embedding scorer when no LLM is configured)."""
    from hokan.scoring.engine import RunCounters

    counters = RunCounters()
    if scorer is None:  # a column of videos (document 002 §1.2): the File API scorer (hokan.scoring.video)
        from hokan.scoring.video import video_scorer

        scorer = video_scorer(sjob, table, counters, no_cache=no_cache, client=client)
    scorer = scorer or llm_scorer(sjob, counters, no_cache=no_cache, client=client)
    if getattr(scorer, "counters", None) is not None:
        counters = scorer.counters
    return scorer, counters


def open_source(sjob: ScoringJob) -> Source:
    """The job's input again: its file, or its sheet (hokan.scoring.sheets.open_sheet)."""
    if sjob.source_kind == "sheet":
        from hokan.scoring.sheets import open_sheet

        return open_sheet(sjob.source)
    return FileSource(sjob.source)


def run_job(sjob: ScoringJob, table: InputTable, *, no_cache: bool = False, scorer: Any = None,
            sinks: Iterable[Sink] = (), on_progress: Callable[[Any], None] | None = None, client: Any = None) -> Any:
    """Run the pipeline on ``sjob`` in this process until no chunk is left; the RunReport.

    scorer: another Scorer (offline, video); default the LLM scorer. sinks: more sinks (a
    sheet); the output file sink is added when the job has an output file.

    Raises:
        LLMConfigError: no provider configured (before anything starts).
    """
    from hokan.scoring.engine import run_scoring

    scorer, counters = build_scorer(sjob, table, no_cache=no_cache, scorer=scorer, client=client)
    all_sinks = list(sinks)
    own = file_sink(sjob, table)
    if own is not None:
        all_sinks.append(own)
    if sjob.job.status in (sjob.job.Status.INTERRUPTED, sjob.job.Status.FAILED):
        jobs.resume_job(sjob.job)
        sjob.job.refresh_from_db()
    return run_scoring(sjob, job_rows(sjob, table), scorer=scorer, sinks=all_sinks, counters=counters,
                       on_progress=on_progress)


def cancel(sjob: ScoringJob, reason: str = "利用者が取り消しました") -> Any:
    """Interrupt the job: no chunk is handed out any more; a running process stops within a
    second, keeping every stored cell. Resumable (``resume``)."""
    return jobs.interrupt_job(sjob.job, reason)


def resume(sjob: ScoringJob) -> Any:
    """Make an interrupted or failed job claimable again (failed chunks get new retries)."""
    return jobs.resume_job(sjob.job)


# --- reporting ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobReport:
    """A job as the status command, the admin and the API show it. Money in USD (exact)."""

    name: str
    public_id: str
    status: str
    status_label: str
    message: str
    rows_total: int
    cells_total: int
    cells_ok: int
    cells_failed: int
    chunks_total: int
    chunks_done: int
    chunks_failed: int
    chunks_pending: int
    chunks_running: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    cache_hits: int
    saved_usd: Decimal
    created_at: dt.datetime
    output: str

    @property
    def fraction(self) -> float:
        return self.cells_ok / self.cells_total if self.cells_total else 1.0

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of the scored cells answered from the LLM cache (0.0–1.0; None before any)."""
        return self.cache_hits / self.cells_ok if self.cells_ok else None

    def as_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["cost_usd"], data["saved_usd"] = str(self.cost_usd), str(self.saved_usd)
        data["created_at"] = self.created_at.isoformat()
        data["fraction"] = round(self.fraction, 4)
        data["cache_hit_rate"] = None if self.cache_hit_rate is None else round(self.cache_hit_rate, 4)
        return data


def job_report(sjob: ScoringJob) -> JobReport:
    """Where ``sjob`` stands, from the store: cells, chunks, paid calls (ScoringAnswer: every
    paid answer, also of failed chunks and earlier runs), tokens, cost, cache hits and savings."""
    job = sjob.job
    job.refresh_from_db()
    progress = jobs.progress(job)
    cells = dict(ScoringResult.objects.filter(job=sjob).values_list("status").annotate(n=Count("pk")))
    paid = ScoringAnswer.objects.filter(job=sjob).aggregate(n=Count("pk"), i=Sum("input_tokens"),
                                                            o=Sum("output_tokens"), c=Sum("cost_usd"))
    hits = ScoringResult.objects.filter(job=sjob, method="cache").count()
    totals = job.totals or {}
    return JobReport(
        name=sjob.name, public_id=str(job.public_id), status=job.status, status_label=job.get_status_display(),
        message=job.message, rows_total=sjob.total_rows, cells_total=sjob.total_rows * len(sjob.categories),
        cells_ok=cells.get("ok", 0), cells_failed=cells.get("error", 0), chunks_total=progress.total,
        chunks_done=progress.done, chunks_failed=progress.failed, chunks_pending=progress.pending,
        chunks_running=progress.running, calls=paid["n"] or 0, input_tokens=paid["i"] or 0,
        output_tokens=paid["o"] or 0, cost_usd=Decimal(paid["c"] or 0).quantize(Decimal("0.000001")),
        cache_hits=hits, saved_usd=Decimal(str(totals.get("saved_usd", "0"))), created_at=sjob.created_at,
        output=sjob.output)


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b) if b else 0
