"""The scoring pipeline (design document 002 §1–§5; issue 11 §2, §3) on ``hokan.core.pipeline``.

::

    Producer ─► [queue] ─► Invoker (threads) ─► [queue] ─► Validator (threads) ─► [queue] ─► Writer
    claims chunks          cache, ledger,                  schema, range, re-ask            result store,
    (core.jobs), yields    rate limiter, one               alone, cache write              sinks; the chunk
    Work items             call per Work                                                   checkpoint

- **Producer** (the pipeline's source): claims the job's chunks one after the other
  (``core.jobs.claim_next_chunk``; heartbeats by ``keep_alive``), reads which cells of the
  chunk are stored already, and yields one ``Work`` per (block of categories, group of
  ``utterances_per_call`` consecutive rows) with cells left to score. Groups are fixed
  ([row_start + k·n, row_start + (k+1)·n) inside the chunk), so a resumed run asks the same
  questions under the same idempotency keys. A chunk put back for a retry is claimed again by
  the same run once its backoff ends; the run ends when no chunk is left to claim.
- **Invoker** (``Scorer.ask``; ``concurrency_max`` threads): rows found in the LLM cache are
  not asked; the others go in ONE request through ``paid_call`` (ledger scope "scoring",
  reservation key ``scoring:<job>:b<block>:r<first>-<end>:<attempt>``) on a
  ``RateLimitedClient`` — every HTTP attempt takes a slot of the provider's shared limiter
  (``core.ratelimit``: Retry-After blocks the key for every caller in every process, AIMD
  concurrency within ``concurrency_min..max``, the key's rate across processes in Redis or
  the database). The answer is stored (``ScoringAnswer``) the moment it arrives.
- **Validator** (``Scorer.validate``; threads): each utterance's part on its own
  (``questions.check_part``); a row whose part fails is asked again alone, and once more with
  the stricter instruction (``REASK_INSTRUCTION``), each a paid call with its own key; every
  valid row is written to the cache under the key of its one-utterance question.
- **Writer** (one task): buffers the cells, stores them (``ScoringResult``) and hands them to
  the sinks every ``flush_interval`` seconds or ``flush_batch_size`` cells; when every Work of a
  chunk has passed, the checkpoint flushes, calls the sinks' ``chunk_done`` and completes the
  chunk (core.jobs) — or fails it, when a cell could not be scored (retried after
  ``min(60, 2**retry)`` s up to ``chunk_retry_limit``; then the chunk is failed and its cells
  carry their reasons).

Exactly once (§3): a paid answer is read back instead of bought again — from the cache, or
from ``ScoringAnswer`` by its key (the ledger refuses a second reservation of a key:
``AlreadyPaid``). The one window no client can close: a request in flight when the process is
killed (the provider may have answered; the answer never arrived). Its reservation stays open
(settled at its estimate by ``settle_stale``); the resumed run finds no stored answer for the
key, asks again under the next attempt key and counts it (``crash_reasks`` in the report).

A run (the same ``--job`` again) first puts back the chunks held by processes of this
machine that are gone (``release_dead_local_chunks``: the holder's PID no longer exists), so
a job killed with kill -9 resumes at once instead of after the lease (HOKAN_JOB_LEASE_S);
chunks of other machines are taken when their lease expires.

Stops: a fatal error (a bad key ``LLMConfigError``, the budget ``BudgetExceeded``, a sink that
gives up) stops the whole pipeline (``PipelineError`` with the reason); the held chunks are
put back, the job is interrupted with that message, nothing stored is lost. ``cancel``
(``core.jobs.interrupt_job``) is noticed within a second: the pipeline is cancelled the same way.

Seams: ``Source`` / ``Sink`` (hokan.scoring.io) for rows in and results out; ``Scorer`` for
how a Work is answered — ``LLMScorer`` here; the offline embedding scorer (``hokan.scoring.offline``)
and video mode plug in as other Scorers (``run_scoring(..., scorer=...)``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from hokan.core import jobs
from hokan.core.cache import cache_key, get_cache
from hokan.core.errors import (
    AlreadyPaid,
    BudgetExceeded,
    ChunkLost,
    HokanError,
    LLMConfigError,
    LLMError,
    LLMOutputError,
    PipelineError,
    RateLimited,
    TransientError,
)
from hokan.core.llm.budgeted import REASK_INSTRUCTION, paid_call
from hokan.core.llm.client import Completion, JsonRequest, Usage
from hokan.core.llm.limited import RateLimitedClient
from hokan.core.models import Job, JobChunk
from hokan.core.pipeline import Pipeline, PipelineStats, Stage
from hokan.core.ratelimit import Concurrency, Limiter, Outcome, llm_rate_limiter
from hokan.scoring.config import Categories, Category, RunConfig
from hokan.scoring.io import CellOutcome, Sink, Utterance
from hokan.scoring.models import ScoringAnswer, ScoringJob, ScoringResult
from hokan.scoring.questions import build_request, check_part, masked, parts_by_id

log = logging.getLogger("hokan.scoring")
FATAL: tuple[type[BaseException], ...] = (LLMConfigError, BudgetExceeded)
CACHE_SCOPE = "scoring"
MAX_ATTEMPT_KEYS = 20  # attempt numbers tried under one work key before giving up (crash re-asks)


# --- the unit of work -----------------------------------------------------------------------
@dataclass(eq=False)
class ChunkRun:
    """A chunk held by this run (identity-hashed: the pipeline's chunk key)."""

    chunk: JobChunk
    keeper: jobs.keep_alive | None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> range:
        return range(self.chunk.row_start or 0, self.chunk.row_end or 0)

    def __repr__(self) -> str:
        return f"チャンク {self.chunk.chunk_id}（{self.chunk.row_start}〜{self.chunk.row_end} 行）"


@dataclass(eq=False)
class Work:
    """One question: ``rows`` (utterances still to score) × the categories of ``block``.

    Filled by the Invoker: ``cached`` (row index → scores from the cache), ``answer`` (the
    paid or stored answer's data, prompt position → row in ``asked``), ``method``, ``usage``,
    ``error`` (why nothing could be asked), ``key`` (the work's idempotency key base).
    """

    run: ChunkRun
    block: int
    group: tuple[int, int]
    rows: list[Utterance]
    cached: dict[int, dict[str, float]] = field(default_factory=dict)
    asked: list[Utterance] = field(default_factory=list)
    answer: Any = None
    method: str = "llm"
    usage: Usage = field(default_factory=Usage)
    error: str = ""
    key: str = ""
    answered: bool = False

    def __repr__(self) -> str:
        return f"{self.run!r} ブロック {self.block} 行 {self.group[0]}〜{self.group[1]}"


@dataclass(eq=False)
class Tick:
    """A marker the producer sends after a chunk's last Work: ``core.pipeline`` knows a chunk
    is complete only when an item of another chunk arrives (or the source ends), so without
    it the last chunk in flight would wait for the next claim. It is its own (empty) chunk."""

    def __repr__(self) -> str:
        return "区切り"


class Scorer(Protocol):
    """How a Work is answered. ``ask`` runs in the Invoker's threads (``workers`` of them),
    ``validate`` in the Validator's; ``validate`` returns one CellOutcome per (row, category
    of the block) of ``work.rows`` — a score or an error, never a blank. Fatal errors
    (``FATAL``) raised by either stop the run."""

    method: str
    workers: int

    def ask(self, work: Work) -> Work: ...

    def validate(self, work: Work) -> list[CellOutcome]: ...


# --- counters -------------------------------------------------------------------------------
@dataclass
class RunCounters:
    """What this process did in this run (thread-safe through ``add``). Money in USD (exact)."""

    rows_total: int = 0
    rows_done: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_failed: int = 0
    calls: int = 0
    single_calls: int = 0
    reasks: int = 0
    crash_reasks: int = 0
    stored_reused: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    saved_usd: Decimal = Decimal("0")
    cache_hits: int = 0
    cache_misses: int = 0
    rate_limited: int = 0
    cells_ok: int = 0
    cells_failed: int = 0
    cells_written: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: Any) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    @property
    def calls_per_min(self) -> float:
        elapsed = max(1e-6, time.monotonic() - self.started)
        return self.calls * 60.0 / elapsed

    @property
    def cache_hit_rate(self) -> float | None:
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("lock", "started")}
        data["cost_usd"], data["saved_usd"] = str(data["cost_usd"]), str(data["saved_usd"])
        data["calls_per_min"] = round(self.calls_per_min, 1)
        data["cache_hit_rate"] = self.cache_hit_rate
        return data


def _chunk_add(run: ChunkRun, lock: threading.Lock, **amounts: Any) -> None:
    with lock:
        for name, amount in amounts.items():
            current = run.stats.get(name, Decimal("0") if isinstance(amount, Decimal) else 0)
            run.stats[name] = current + amount


class CountingLimiter(Limiter):
    """The provider's limiter, counting the 429s it is told about (for the progress bar)."""

    def __init__(self, base: Limiter, counters: RunCounters) -> None:
        super().__init__(base.key, rate=base.rate, concurrency=base.concurrency)
        self.counters = counters

    def report(self, permit: Any, outcome: Outcome, *, retry_after_s: float | None = None) -> None:
        if outcome is Outcome.RATE_LIMITED and not permit.reported:
            self.counters.add(rate_limited=1)
        super().report(permit, outcome, retry_after_s=retry_after_s)


# --- the LLM scorer -------------------------------------------------------------------------
class LLMScorer:
    """Scores Works by asking the configured provider (module docstring: Invoker, Validator).

    client: the provider client (``get_client(profile="scoring")``), NOT yet rate-limited;
    ledger: the "scoring" ledger; estimate_usd: reserved per call (HOKAN_SCORING_COST_PER_CALL_USD).
    """

    method = "llm"

    def __init__(self, sjob: ScoringJob, config: RunConfig, categories: Categories, *, client: Any, ledger: Any,
                 estimate_usd: Decimal, counters: RunCounters, cache: Any = None) -> None:
        self.sjob, self.config, self.categories = sjob, config, categories
        self.public_id = str(sjob.job.public_id)
        self.counters = counters
        self.provider, self.model = str(client.provider), str(client.model)
        limiter = llm_rate_limiter(self.provider, concurrency=Concurrency(
            minimum=config.concurrency_min, maximum=config.concurrency_max,
            lease_s=max(60.0, 2 * float(config.request_timeout_s or settings.HOKAN_LLM_TIMEOUT_S) + 30.0)))
        self.client = RateLimitedClient(client, CountingLimiter(limiter, counters))
        self.ledger, self.estimate_usd = ledger, estimate_usd
        self.cache = cache if cache is not None else (
            get_cache(ttl_s=config.cache_ttl_s, max_entries=config.cache_max_entries) if config.cache_enabled else None)
        self.workers = config.concurrency_max
        self.lock = threading.Lock()
        self.call_options: dict[str, Any] = {"deadline_s": config.call_deadline_s}
        if config.request_timeout_s:
            self.call_options["timeout_s"] = config.request_timeout_s

    # questions ------------------------------------------------------------------------------
    def block(self, index: int) -> tuple[Category, ...]:
        return self.categories.blocks[index]

    def request(self, rows: Sequence[Utterance], block: int) -> JsonRequest:
        return build_request([masked(u.text) for u in rows], self.block(block),
                             system_prompt=self.sjob.system_prompt, config=self.config)

    def cache_key(self, row: Utterance, block: int) -> str:
        """The cache key of ``row`` asked alone (everything that changes the answer: the masked
        utterance, the categories with descriptions, the system prompt, scale, schema,
        temperature, provider and model)."""
        return cache_key(self.provider, self.model, self.request([row], block))

    # Invoker --------------------------------------------------------------------------------
    def ask(self, work: Work) -> Work:
        try:
            return self._ask(work)
        finally:
            connection.close()  # this thread's connection: the pool's threads outlive nothing

    def _ask(self, work: Work) -> Work:
        todo = []
        for row in work.rows:
            if (reason := self.unscorable(row)):
                continue  # reported by validate
            scores = self.lookup(row, work.block)
            if scores is not None:
                work.cached[row.index] = scores
            else:
                todo.append(row)
        if not todo:
            return work
        work.asked = todo
        work.key = f"scoring:{self.public_id}:b{work.block}:r{work.group[0]}-{work.group[1]}"
        stored = self.stored_answer(work.key, [u.index for u in todo])
        if stored is not None:
            work.answer, work.method, work.answered = stored, "stored", True
            self.counters.add(stored_reused=1)
            return work
        try:
            completion, _ = self.paid(work.key, self.request(todo, work.block), [u.index for u in todo], work.run)
            work.answer, work.usage, work.answered = completion.data, completion.usage, True
        except LLMOutputError:
            work.answered = True  # paid, unusable: every row is asked again alone
        except FATAL:
            raise
        except (TransientError, LLMError, AlreadyPaid) as exc:
            work.error = _reason(exc)
        return work

    def unscorable(self, row: Utterance) -> str:
        """Why ``row`` is not sent at all ("" when it is sent)."""
        if not row.text.strip():
            return "発話が空です"
        if len(row.text) > self.config.max_utterance_chars:
            return (f"発話が長すぎます（{len(row.text):,} 文字、上限 {self.config.max_utterance_chars:,} 文字: "
                    "設定 HOKAN_SCORING_MAX_UTTERANCE_CHARS）")
        return ""

    def lookup(self, row: Utterance, block: int) -> dict[str, float] | None:
        if self.cache is None:
            return None
        stored = self.cache.lookup(CACHE_SCOPE, self.cache_key(row, block))
        if stored is None:
            self.counters.add(cache_misses=1)
            return None
        scores, _ = check_part(parts_by_id(stored.data).get("1"), self.block(block), self.config.scale)
        if scores is None:  # an entry that no longer validates (never stored so): a miss
            self.counters.add(cache_misses=1)
            return None
        self.counters.add(cache_hits=1, saved_usd=Decimal(stored.usage.cost_usd))
        return scores

    def stored_answer(self, key: str, rows: list[int]) -> Any:
        """The data of a paid answer stored under an attempt of ``key`` for exactly these rows."""
        for answer in ScoringAnswer.objects.filter(key__startswith=key + ":", job=self.sjob).order_by("-pk"):
            if answer.data is not None and answer.rows == rows:
                return answer.data
        return None

    def paid(self, key: str, request: JsonRequest, rows: list[int], run: ChunkRun) -> tuple[Completion, str]:
        """One paid call for this work: the first attempt key not paid yet (``key:1``, ``key:2``
        …). An attempt key paid already without a stored answer (the process was killed
        while the call was in flight) is counted as a crash re-ask. Returns (completion,
        attempt key); raises what ``paid_call`` raises (LLMOutputError after storing it)."""
        for attempt in range(1, MAX_ATTEMPT_KEYS + 1):
            attempt_key = f"{key}:{attempt}"
            if ScoringAnswer.objects.filter(key=attempt_key).exists():
                continue  # paid and stored (unusable, or for other rows): the next attempt
            try:
                completion = paid_call(self.client, request, ledger=self.ledger, estimate_usd=self.estimate_usd,
                                       key=attempt_key, **self.call_options)
            except AlreadyPaid:
                self.counters.add(crash_reasks=1)
                _chunk_add(run, self.lock, crash_reasks=1)
                log.warning("scoring %s", json.dumps({"event": "crash_reask", "key": attempt_key}))
                continue
            except LLMOutputError as exc:
                self.store_answer(attempt_key, rows, None, exc.raw_output or "", exc.usage, run)
                raise
            self.store_answer(attempt_key, rows, completion.data, completion.raw_text, completion.usage, run)
            return completion, attempt_key
        raise AlreadyPaid(f"{key}: {MAX_ATTEMPT_KEYS} 回の試行がすべて支払済みです", key=key, status="committed")

    def store_answer(self, key: str, rows: list[int], data: Any, raw: str, usage: Usage, run: ChunkRun) -> None:
        ScoringAnswer.objects.get_or_create(key=key, defaults={
            "job": self.sjob, "rows": rows, "data": data, "raw_text": (raw or "")[:100_000],
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd})
        amounts = {"calls": 1, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                   "cost_usd": Decimal(usage.cost_usd)}
        self.counters.add(**amounts)
        _chunk_add(run, self.lock, **amounts)

    # Validator ------------------------------------------------------------------------------
    def validate(self, work: Work) -> list[CellOutcome]:
        try:
            return self._validate(work)
        finally:
            connection.close()

    def _validate(self, work: Work) -> list[CellOutcome]:
        block = self.block(work.block)
        out: list[CellOutcome] = []
        parts = parts_by_id(work.answer) if work.answer is not None else {}
        share = _share(work.usage.cost_usd, len(work.asked) * len(block))
        positions = {row.index: str(number) for number, row in enumerate(work.asked, start=1)}
        for row in work.rows:
            if (reason := self.unscorable(row)):
                out += _errors(row, block, reason)
                continue
            if row.index in work.cached:
                out += _cells(row, block, work.cached[row.index], "cache", "0")
                continue
            if work.error:
                out += _errors(row, block, work.error)
                continue
            scores, reason = check_part(parts.get(positions.get(row.index, "")), block, self.config.scale)
            if scores is not None:
                self.remember(row, work.block, scores, work.usage, len(work.asked))
                out += _cells(row, block, scores, work.method, share)
                continue
            # asked alone already when it was the only row of the call: only the stricter re-ask is left
            out += self.ask_alone(work, row, reason, first_turn=2 if len(work.asked) == 1 else 1)
        return out

    def ask_alone(self, work: Work, row: Utterance, reason: str, *, first_turn: int = 1) -> list[CellOutcome]:
        """Ask ``row`` alone (and once more with the stricter instruction): its cells."""
        block = self.block(work.block)
        base = f"scoring:{self.public_id}:b{work.block}:row{row.index}:t{work.run.chunk.retry_count}"
        request = self.request([row], work.block)
        for turn in range(first_turn, 3):
            key = f"{base}:{'single' if turn == 1 else 'reask'}"
            asked = request if turn == 1 else dataclasses.replace(request, user=request.user + REASK_INSTRUCTION)
            stored = self.stored_answer(key, [row.index])
            method = "stored"
            usage = Usage()
            try:
                if stored is None:
                    self.counters.add(single_calls=1, reasks=1 if turn == 2 else 0)
                    completion, _ = self.paid(key, asked, [row.index], work.run)
                    stored, usage, method = completion.data, completion.usage, "llm"
            except LLMOutputError as exc:
                reason = f"JSON として読めない回答でした（{str(exc)[:200]}）"
                continue
            except FATAL:
                raise
            except (TransientError, LLMError, AlreadyPaid) as exc:
                return _errors(row, block, _reason(exc))
            scores, why = check_part(parts_by_id(stored).get("1"), block, self.config.scale)
            if scores is not None:
                self.remember(row, work.block, scores, usage, 1)
                return _cells(row, block, scores, method, _share(usage.cost_usd, len(block)))
            reason = why
        return _errors(row, block, f"回答が不正です（再質問後も）: {reason}")

    def remember(self, row: Utterance, block: int, scores: dict[str, float], usage: Usage, rows: int) -> None:
        """Store ``row``'s valid scores in the cache under its one-utterance question (usage:
        its share of the call, what a later hit saves)."""
        if self.cache is None:
            return
        share = Usage(input_tokens=usage.input_tokens // max(1, rows), output_tokens=usage.output_tokens // max(1, rows),
                      cost_usd=_share_decimal(usage.cost_usd, rows), cost_source=usage.cost_source, calls=1)
        data = {"results": [{"id": "1", "scores": scores}]}
        completion = Completion(data=data, usage=share, provider=self.provider, model=self.model,
                                raw_text=json.dumps(data, ensure_ascii=False))
        self.cache.put(CACHE_SCOPE, self.cache_key(row, block), completion)


def _reason(exc: BaseException) -> str:
    return jobs.describe_error(exc)[:500]


def _share_decimal(cost: Decimal, parts: int) -> Decimal:
    return (Decimal(cost) / max(1, parts)).quantize(Decimal("0.000001"))


def _share(cost: Decimal, parts: int) -> str:
    return str(_share_decimal(cost, parts))


def _cells(row: Utterance, block: Sequence[Category], scores: dict[str, float], method: str,
           share: str) -> list[CellOutcome]:
    return [CellOutcome(row.index, c.name, scores[c.name], method=method, cost_usd=share) for c in block]


def _errors(row: Utterance, block: Sequence[Category], reason: str) -> list[CellOutcome]:
    return [CellOutcome(row.index, c.name, None, error=reason or "不明なエラー") for c in block]


# --- the result store -----------------------------------------------------------------------
def store_cells(sjob: ScoringJob, cells: Sequence[CellOutcome]) -> None:
    """Upsert ``cells`` into ScoringResult (one row per (row, category)); an ok cell is never
    overwritten by an error of a later attempt."""
    if not cells:
        return
    now = timezone.now()
    ok = [c for c in cells if c.ok]
    bad = [c for c in cells if not c.ok]
    with transaction.atomic():
        if ok:
            ScoringResult.objects.bulk_create(
                [ScoringResult(job=sjob, row_index=c.row, category=c.category, score=c.score, status="ok",
                               method=c.method, error="", cost_usd=Decimal(c.cost_usd), updated_at=now) for c in ok],
                update_conflicts=True, unique_fields=["job", "row_index", "category"],
                update_fields=["score", "status", "method", "error", "cost_usd", "updated_at"], batch_size=500)
        if bad:
            done = set(ScoringResult.objects.filter(job=sjob, status="ok", row_index__in={c.row for c in bad})
                       .values_list("row_index", "category"))
            bad = [c for c in bad if (c.row, c.category) not in done]
            ScoringResult.objects.bulk_create(
                [ScoringResult(job=sjob, row_index=c.row, category=c.category, score=None, status="error",
                               method=c.method, error=c.error[:2000], updated_at=now) for c in bad],
                update_conflicts=True, unique_fields=["job", "row_index", "category"],
                update_fields=["score", "status", "error", "updated_at"], batch_size=500)


def done_cells(sjob: ScoringJob, rows: range) -> set[tuple[int, str]]:
    return set(ScoringResult.objects.filter(job=sjob, status="ok", row_index__gte=rows.start,
                                            row_index__lt=rows.stop).values_list("row_index", "category"))


def result_grid(sjob: ScoringJob) -> dict[int, dict[str, tuple[float | None, str]]]:
    """{row index: {category: (score, error)}} of the job's stored cells (for the output file)."""
    grid: dict[int, dict[str, tuple[float | None, str]]] = {}
    for row, category, score, error in ScoringResult.objects.filter(job=sjob).values_list(
            "row_index", "category", "score", "error").iterator(chunk_size=5000):
        grid.setdefault(row, {})[category] = (score, error)
    return grid


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_local_chunks(job: Job) -> int:
    """Put back the running chunks of ``job`` held by a process of THIS machine that is gone
    (killed: its chunks would otherwise wait out HOKAN_JOB_LEASE_S before anyone takes them).
    The holder is ``host:pid:thread`` (core.jobs.default_worker_id); chunks of other machines
    are left to their lease. Returns the number put back (no retry is counted)."""
    host = socket.gethostname()
    released = 0
    for chunk in JobChunk.objects.filter(job=job, status=JobChunk.Status.RUNNING):
        parts = chunk.claimed_by.split(":")
        if len(parts) < 3 or parts[0] != host or not parts[1].isdigit() or int(parts[1]) == os.getpid():
            continue
        if not _pid_alive(int(parts[1])):
            jobs.release_chunk(chunk, reason=f"前回のプロセス（PID {parts[1]}）は終了していました")
            released += 1
    return released


# --- the Writer -----------------------------------------------------------------------------
class Writer:
    """Buffers cells; stores them and hands them to the sinks every ``flush_interval`` seconds
    or ``flush_batch_size`` cells (document 002 §3). ``flush`` is safe to call any time."""

    def __init__(self, sjob: ScoringJob, config: RunConfig, sinks: Sequence[Sink],
                 counters: RunCounters | None = None) -> None:
        self.sjob, self.config, self.sinks = sjob, config, list(sinks)
        self.counters = counters or RunCounters()
        self.buffer: list[CellOutcome] = []
        self.lock = asyncio.Lock()
        self.flushes = 0
        self.last_flush = time.monotonic()

    async def write(self, cells: list[CellOutcome]) -> list[CellOutcome]:
        self.buffer.extend(cells)
        if len(self.buffer) >= self.config.flush_batch_size:
            await self.flush()
        return cells

    async def flush(self) -> None:
        async with self.lock:
            if not self.buffer:
                return
            batch, self.buffer = self.buffer, []
            await asyncio.to_thread(_in_thread, store_cells, self.sjob, batch)
            for sink in self.sinks:
                await asyncio.to_thread(sink.write, batch)
            self.flushes += 1
            self.counters.add(cells_written=sum(1 for c in batch if c.ok))
            self.last_flush = time.monotonic()

    async def tick(self, on_failure: Callable[[BaseException], None]) -> None:
        """Flush every ``flush_interval`` seconds (runs until cancelled). A flush that fails (the
        store, a sink at its retry limit) is handed to ``on_failure`` — it stops the run — and
        the ticker ends."""
        while True:
            await asyncio.sleep(self.config.flush_interval)
            if time.monotonic() - self.last_flush >= self.config.flush_interval:
                try:
                    await self.flush()
                except Exception as exc:
                    on_failure(exc)
                    return


def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    finally:
        connection.close()


# --- one run --------------------------------------------------------------------------------
@dataclass
class RunReport:
    """The end of a run: ``status`` of the job ("completed", "failed", "interrupted", or
    "running" when other processes still hold chunks), ``message``, this run's ``counters``,
    ``stages`` (seconds per stage), ``progress`` (core.jobs.JobProgress)."""

    status: str
    message: str
    counters: RunCounters
    stages: dict[str, float]
    progress: jobs.JobProgress


class ScoringRun:
    """One process working on a scoring job (module docstring). Use ``run_scoring``."""

    def __init__(self, sjob: ScoringJob, rows: list[Utterance], scorer: Scorer, sinks: Sequence[Sink], *,
                 counters: RunCounters, worker: str | None = None,
                 on_progress: Callable[[RunCounters], None] | None = None, fixed: JobChunk | None = None) -> None:
        self.sjob, self.job = sjob, sjob.job
        # fixed: one chunk claimed by core.jobs.run_chunk (a Celery task, ``hokan.scoring.tasks``):
        # only its rows are scored, and the caller completes or fails it (fixed_summary / fixed_failure)
        self.fixed = fixed
        self.fixed_summary: dict[str, Any] = {}
        self.fixed_failure = ""
        self.config = RunConfig.from_json(sjob.config)
        self.categories = Categories.from_json(sjob.categories, self.config.categories_per_call)
        self.rows, self.scorer, self.sinks = rows, scorer, list(sinks)
        self.counters = counters
        self.worker = worker or jobs.default_worker_id()
        self.on_progress = on_progress
        self.writer = Writer(sjob, self.config, self.sinks, counters)
        self.active: set[ChunkRun] = set()
        self.settled = asyncio.Event()
        self.stop_reason = ""
        self.writer_failure: BaseException | None = None
        self.lock = threading.Lock()

    # producer -------------------------------------------------------------------------------
    async def source(self) -> Any:
        if self.fixed is not None:
            run = ChunkRun(self.fixed, None)
            works = await asyncio.to_thread(_in_thread, self.plan, run)
            if not works:
                await self.settle(run, [])
                return
            self.active.add(run)
            for work in works:
                yield work
            yield Tick()
            return
        while True:
            if self.stop_reason:
                return
            chunk = await asyncio.to_thread(_in_thread, jobs.claim_next_chunk, self.job, worker=self.worker)
            if chunk is None:
                if self.active:
                    self.settled.clear()
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result when
                    # the event is set in the same step as the task is cancelled, swallowing the
                    # cancel (gh-86296) — a sink failing in settle() (which sets the event) then left
                    # this producer running until the chunk's lease expired (found 2026-12-01).
                    try:
                        async with asyncio.timeout(1.0):
                            await self.settled.wait()
                    except TimeoutError:
                        pass
                    continue
                wait = await asyncio.to_thread(_in_thread, self.next_wait)
                if wait is None:
                    return
                await asyncio.sleep(min(max(0.05, wait), 1.0))
                continue
            keeper = jobs.keep_alive(chunk)
            keeper.__enter__()
            run = ChunkRun(chunk, keeper)
            works = await asyncio.to_thread(_in_thread, self.plan, run)
            log.info("scoring %s", json.dumps({"event": "chunk_claimed", "job": str(self.job.public_id),
                                               "chunk": chunk.chunk_id, "rows": [chunk.row_start, chunk.row_end],
                                               "retry": chunk.retry_count, "works": len(works)}))
            if not works:  # every cell stored already (a run killed before it completed the chunk)
                await self.settle(run, [])
                continue
            self.active.add(run)
            for work in works:
                yield work
            yield Tick()

    def next_wait(self) -> float | None:
        """Seconds until a chunk of the job may become claimable — a retry backoff ending, or the
        lease of a chunk held elsewhere expiring (core.jobs.next_wakeup); None when none."""
        job = Job.objects.get(pk=self.job.pk)
        if job.status not in jobs.ACTIVE:
            return None
        release_dead_local_chunks(job)
        wake = jobs.next_wakeup(job)
        return None if wake is None else max(0.0, (wake - timezone.now()).total_seconds())

    def plan(self, run: ChunkRun) -> list[Work]:
        done = done_cells(self.sjob, run.rows)
        per = self.config.utterances_per_call
        works = []
        for block_index, block in enumerate(self.categories.blocks):
            for start in range(run.rows.start, run.rows.stop, per):
                group = (start, min(start + per, run.rows.stop))
                rows = [self.rows[i] for i in range(*group) if any((i, c.name) not in done for c in block)]
                if rows:
                    works.append(Work(run, block_index, group, rows))
        return works

    # checkpoint -----------------------------------------------------------------------------
    async def checkpoint(self, run: ChunkRun | Tick, outputs: list[list[CellOutcome]]) -> None:
        if isinstance(run, Tick):
            return
        await self.settle(run, [cell for cells in outputs for cell in cells])

    async def settle(self, run: ChunkRun, cells: list[CellOutcome]) -> None:
        await self.writer.flush()
        failed = [c for c in cells if not c.ok]
        ok = len(cells) - len(failed)
        self.counters.add(cells_ok=ok, cells_failed=len(failed))
        summary = {"rows": len(run.rows), "cells_ok": ok, "cells_failed": len(failed),
                   **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in run.stats.items()}}
        try:
            if self.fixed is not None:
                if failed:
                    self.fixed_failure = self.failure_message(failed)
                else:
                    for sink in self.sinks:
                        await asyncio.to_thread(sink.chunk_done, run.rows)
                    self.fixed_summary = summary
                    self.counters.add(chunks_done=1, rows_done=len(run.rows))
            elif failed:
                message = self.failure_message(failed)
                chunk = await asyncio.to_thread(_in_thread, jobs.fail_chunk, run.chunk, message)
                if chunk.status == JobChunk.Status.FAILED:
                    self.counters.add(chunks_failed=1)
                    for sink in self.sinks:
                        await asyncio.to_thread(sink.chunk_done, run.rows)
            else:
                for sink in self.sinks:
                    await asyncio.to_thread(sink.chunk_done, run.rows)
                await asyncio.to_thread(_in_thread, jobs.complete_chunk, run.chunk, result=summary)
                self.counters.add(chunks_done=1, rows_done=len(run.rows))
        except ChunkLost as exc:
            log.warning("scoring: %s", exc)
        finally:
            if run.keeper is not None:
                run.keeper.__exit__(None, None, None)
            self.active.discard(run)
            self.settled.set()
        log.info("scoring %s", json.dumps({"event": "chunk_settled", "job": str(self.job.public_id),
                                           "chunk": run.chunk.chunk_id, "failed_cells": len(failed), **summary,
                                           "progress": self.progress_line()}, ensure_ascii=False))

    def failure_message(self, failed: list[CellOutcome]) -> str:
        rows = sorted({c.row for c in failed})
        listed = "; ".join(f"{self.rows[c.row].row_number}行目「{c.category}」: {c.error}" for c in
                           sorted(failed, key=lambda c: (c.row, c.category))[:5])
        return f"{len(rows)} 行（{len(failed)} セル）を採点できませんでした: {listed}"[:2000]

    def progress_line(self) -> dict[str, Any]:
        c = self.counters
        return {"chunks_done": c.chunks_done, "chunks_total": c.chunks_total, "rows_done": c.rows_done,
                "rows_total": c.rows_total, "calls": c.calls, "cache_hit_rate": c.cache_hit_rate}

    # watching -------------------------------------------------------------------------------
    async def watch(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` when the job is interrupted (cancel) or a held chunk was lost."""
        while not task.done():
            await asyncio.sleep(1.0)
            if self.on_progress:
                self.on_progress(self.counters)
            status = await asyncio.to_thread(_in_thread, lambda: Job.objects.filter(pk=self.job.pk)
                                             .values_list("status", flat=True).first())
            lost = next((r for r in list(self.active) if r.keeper is not None and r.keeper.lost is not None), None)
            if self.fixed is not None:
                continue  # core.jobs.run_chunk keeps the lease and settles the chunk
            if status == Job.Status.INTERRUPTED or lost is not None:
                self.stop_reason = "interrupted" if status == Job.Status.INTERRUPTED else str(lost.keeper.lost)
                task.cancel()
                return

    async def run(self) -> RunReport:
        if self.fixed is None:
            await asyncio.to_thread(_in_thread, release_dead_local_chunks, self.job)
        scorer = self.scorer
        def ask(work: Work | Tick) -> Work | Tick:
            return work if isinstance(work, Tick) else scorer.ask(work)

        def validate(work: Work | Tick) -> list[CellOutcome]:
            return [] if isinstance(work, Tick) else scorer.validate(work)

        pipeline = Pipeline(
            [Stage("invoke", ask, workers=scorer.workers),
             Stage("validate", validate, workers=max(2, min(scorer.workers, 8))),
             Stage("write", self.writer.write)],
            queue_size=self.config.pipeline_queue_size,
            chunk_of=lambda work: work if isinstance(work, Tick) else work.run, checkpoint=self.checkpoint,
        )
        task = asyncio.create_task(pipeline.run(self.source()))

        def writer_failed(exc: BaseException) -> None:
            self.writer_failure = exc
            self.stop_reason = "writer"
            task.cancel()

        ticker = asyncio.create_task(self.writer.tick(writer_failed))
        watcher = asyncio.create_task(self.watch(task))
        stats: PipelineStats | None = None
        message = ""
        try:
            stats = await task
        except asyncio.CancelledError:
            if not self.stop_reason:
                await self.put_back("処理が中断されました（プロセスの停止）")
                raise
            if self.writer_failure is not None:  # a timed flush failed: stop like any fatal error
                message = _fatal_message(self.writer_failure)
                await self.put_back(message)
                await asyncio.to_thread(_in_thread, jobs.interrupt_job, self.job, message)
                log.error("scoring %s", json.dumps({"event": "stopped", "job": str(self.job.public_id),
                                                    "reason": message}, ensure_ascii=False))
            else:
                await self.put_back("ジョブが取り消されました" if self.stop_reason == "interrupted"
                                    else self.stop_reason)
        except PipelineError as exc:
            cause = exc.__cause__ or exc
            if self.fixed is not None:  # run_chunk decides: a fatal error interrupts the job, others fail the chunk
                await self.writer.flush()
                raise cause from exc
            message = _fatal_message(cause)
            await self.put_back(message)
            await asyncio.to_thread(_in_thread, jobs.interrupt_job, self.job, message)
            log.error("scoring %s", json.dumps({"event": "stopped", "job": str(self.job.public_id), "reason": message},
                                               ensure_ascii=False))
        finally:
            ticker.cancel()
            watcher.cancel()
            await asyncio.gather(ticker, watcher, return_exceptions=True)
            for sink in self.sinks:
                try:
                    await asyncio.to_thread(sink.close)
                except Exception:
                    log.exception("scoring: closing a sink failed")
        progress = await asyncio.to_thread(_in_thread, jobs.progress, self.job)
        stages = {s.name: round(s.busy_s, 3) for s in (stats.stages if stats else [])}
        log.info("scoring %s", json.dumps({"event": "run_end", "job": str(self.job.public_id), "status": progress.status,
                                           "stage_seconds": stages, **self.counters.snapshot()}, ensure_ascii=False))
        if self.on_progress:
            self.on_progress(self.counters)
        return RunReport(progress.status, message or progress.message, self.counters, stages, progress)

    async def put_back(self, reason: str) -> None:
        """Flush what is stored, release every held chunk (pending, no retry counted)."""
        try:
            await self.writer.flush()
        except Exception:
            log.exception("scoring: the last flush failed")
        for run in list(self.active):
            if run.keeper is None:
                continue  # a fixed chunk: core.jobs.run_chunk puts it back
            run.keeper.__exit__(None, None, None)
            await asyncio.to_thread(_in_thread, jobs.release_chunk, run.chunk, reason=reason)
        self.active.clear()


def _fatal_message(cause: BaseException) -> str:
    if isinstance(cause, BudgetExceeded):
        return f"予算の上限に達したため停止しました（スコープ scoring）: {cause}"
    if isinstance(cause, LLMConfigError):
        return f"LLM の設定に問題があるため停止しました: {cause}"
    if isinstance(cause, HokanError):
        return f"停止しました: {cause}"
    return f"停止しました: {type(cause).__name__}: {cause}"


def run_scoring(sjob: ScoringJob, rows: list[Utterance], *, scorer: Scorer, sinks: Iterable[Sink] = (),
                counters: RunCounters | None = None, on_progress: Callable[[RunCounters], None] | None = None,
                worker: str | None = None) -> RunReport:
    """Work on ``sjob`` in this process until no chunk is left (module docstring); the report.

    rows: every row of the input (``io.utterances``), indexed by data row.
    Raises: KeyboardInterrupt / CancelledError after putting the held chunks back.
    """
    counters = counters or RunCounters()
    counters.rows_total = len(rows)
    counters.chunks_total = sjob.job.total_chunks
    run = ScoringRun(sjob, rows, scorer, list(sinks), counters=counters, worker=worker, on_progress=on_progress)
    return asyncio.run(run.run())


__all__ = ["CellOutcome", "LLMScorer", "RunCounters", "RunReport", "Scorer", "Work", "run_scoring", "RateLimited"]
