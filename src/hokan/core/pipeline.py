"""Staged asyncio pipelines with bounded queues (issue 7 §6, design document 002 §1–§3).

::

    source ─► [queue] ─► stage 1 (n workers) ─► [queue] ─► stage 2 ─► … ─► [queue] ─► collector
                                                                                  └─► checkpoint(chunk, outputs)

    pipeline = Pipeline([Stage("invoke", ask_llm, workers=8), Stage("validate", validate),
                         Stage("write", write_rows)], queue_size=100,
                        chunk_of=lambda row: row.chunk, checkpoint=finish_chunk)
    stats = await pipeline.run(rows)

Rules:

- Every item passes every stage in order; each stage maps one item to one output (the next
  stage's input). Per-item failures that should not stop the run are the stage's business:
  return an error outcome instead of raising.
- ``Stage.fn`` may be ``async def`` (awaited on the event loop) or a plain function, which is
  blocking work by definition: it runs in a worker thread (``loop.run_in_executor`` on this
  run's own thread pool, sized to the sum of the plain stages' workers, so N workers really
  are N threads — asyncio's default executor would cap them at min(32, CPUs + 4)). Context
  variables are copied into the thread, as ``asyncio.to_thread`` does. A database connection
  a stage opens in its thread lives as long as the thread: until the run ends.
- Queues hold at most ``queue_size`` items (HOKAN_PIPELINE_QUEUE_SIZE, default 100): a
  producer faster than the slowest stage waits (backpressure), memory stays bounded.
- Shutdown: when the source is exhausted, one sentinel per worker goes into the first queue;
  a worker that takes a sentinel ends; the last worker of a stage to end sends the next stage
  its sentinels; the collector ends on its own.
- One error stops everything: an exception in the source, a stage or the checkpoint cancels
  every other task at once (a producer blocked on a full queue and consumers waiting on an
  empty one included) and ``run`` raises ``PipelineError`` naming the stage and the item,
  chained to the original exception. Work already running in a thread cannot be interrupted:
  it finishes in the background and its result is dropped; ``run`` does not wait for it.
- Cancelling the task awaiting ``run`` cancels every stage the same way and re-raises
  ``CancelledError``.
- Chunks and checkpoints: with ``chunk_of`` (item → a hashable chunk key, e.g. a JobChunk),
  the items of one chunk must come from the source consecutively; when every item of a chunk
  has passed the last stage, ``checkpoint(chunk, outputs)`` is called once, with the last
  stage's outputs in source order — chunks are checkpointed in the order they finish, not
  the order they started. A plain checkpoint function runs in a thread (e.g.
  ``jobs.complete_chunk``, a database write). Without ``chunk_of`` there is no checkpoint.

``run`` returns ``PipelineStats``: items in and out, chunks checkpointed, and per stage the
items processed and the seconds spent inside ``fn`` (summed over workers), for the run's log
(document 002 §6: time per stage).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import AsyncIterable, Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hokan.core.errors import PipelineError


@dataclass(frozen=True)
class Stage:
    """One step: ``fn(item) -> output``, run by ``workers`` concurrent workers (at least 1)."""

    name: str
    fn: Callable[[Any], Any]
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"stage {self.name!r}: workers must be at least 1, got {self.workers}")

    @property
    def blocking(self) -> bool:
        """True for a plain function (run in a thread), False for a coroutine function."""
        return not _is_async(self.fn)


@dataclass
class StageStats:
    """items: items the stage finished; busy_s: seconds inside ``fn``, summed over workers."""

    name: str
    workers: int
    items: int = 0
    busy_s: float = 0.0


@dataclass
class PipelineStats:
    items_in: int = 0
    items_out: int = 0
    chunks_checkpointed: int = 0
    stages: list[StageStats] = field(default_factory=list)


def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _short(item: Any) -> str:
    try:
        text = repr(item)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(item).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


_STOP = object()  # the sentinel: "no more items"


@dataclass
class _Envelope:
    seq: int
    chunk: Hashable | None
    value: Any


class _Failure(Exception):
    def __init__(self, stage: str, item: Any, error: BaseException) -> None:
        super().__init__(stage)
        self.stage, self.item, self.error = stage, item, error


class Pipeline:
    """Stages run over a source (see the module docstring).

    queue_size: capacity of each queue between two steps (None = HOKAN_PIPELINE_QUEUE_SIZE, 100).
    chunk_of / checkpoint: chunk key of an item, and the function called when a chunk is done.

    Raises:
        ValueError: no stage, a queue_size below 1, or a checkpoint without chunk_of.
    """

    def __init__(
        self,
        stages: list[Stage],
        *,
        queue_size: int | None = None,
        chunk_of: Callable[[Any], Hashable] | None = None,
        checkpoint: Callable[[Hashable, list[Any]], Any] | None = None,
    ) -> None:
        if not stages:
            raise ValueError("Pipeline: at least one stage")
        if checkpoint is not None and chunk_of is None:
            raise ValueError("Pipeline: a checkpoint needs chunk_of")
        self.stages = list(stages)
        self.queue_size = _default_queue_size() if queue_size is None else queue_size
        if self.queue_size < 1:
            raise ValueError(f"Pipeline: queue_size must be at least 1, got {self.queue_size}")
        self.chunk_of = chunk_of
        self.checkpoint = checkpoint

    async def run(self, source: Iterable[Any] | AsyncIterable[Any]) -> PipelineStats:
        """Feed every item of ``source`` through the stages; returns the stats when all items
        have passed and every chunk is checkpointed.

        A plain iterable is iterated on the event loop (keep it cheap: rows in memory); a
        source that blocks (database, network) should be an async iterable.

        Raises:
            PipelineError: the source, a stage or the checkpoint raised (chained; see above).
            asyncio.CancelledError: the caller cancelled the run.
        """
        return await _Run(self).run(source)


def _default_queue_size() -> int:
    try:
        from django.conf import settings

        return int(settings.HOKAN_PIPELINE_QUEUE_SIZE)
    except Exception:  # settings not configured (a script outside Django): the documented default
        return 100


class _Run:
    """The state of one ``Pipeline.run``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        size = pipeline.queue_size
        self.queues: list[asyncio.Queue[Any]] = [asyncio.Queue(size) for _ in range(len(pipeline.stages) + 1)]
        self.alive = [stage.workers for stage in pipeline.stages]
        self.stats = PipelineStats(stages=[StageStats(s.name, s.workers) for s in pipeline.stages])
        threads = sum(s.workers for s in pipeline.stages if s.blocking) + (1 if pipeline.checkpoint else 0)
        self.executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="pipeline")
        # chunk bookkeeping: items expected per closed chunk, outputs arrived per chunk
        self.expected: dict[Hashable, int] = {}
        self.arrived: dict[Hashable, dict[int, Any]] = {}
        self.seen: set[Hashable] = set()
        self.ready: asyncio.Queue[Any] = asyncio.Queue()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if _is_async(fn):
            return await fn(*args)
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self.executor, functools.partial(context.run, fn, *args))

    async def run(self, source: Iterable[Any] | AsyncIterable[Any]) -> PipelineStats:
        tasks = [asyncio.create_task(self.produce(source), name="pipeline-source")]
        for index, stage in enumerate(self.p.stages):
            tasks += [asyncio.create_task(self.work(index), name=f"pipeline-{stage.name}-{n}")
                      for n in range(stage.workers)]
        tasks.append(asyncio.create_task(self.collect(), name="pipeline-collector"))
        if self.p.checkpoint is not None:
            tasks.append(asyncio.create_task(self.checkpoints(), name="pipeline-checkpoint"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception()), None)
            if failed is not None:
                await self._cancel(tasks)
                error = failed.exception()
                if isinstance(error, _Failure):
                    item = _short(error.item) if error.item is not _STOP else ""
                    raise PipelineError(
                        f"パイプラインを停止しました: 段階「{error.stage}」で失敗"
                        f"{f'（項目 {item}）' if item else ''}: {type(error.error).__name__}: {error.error}",
                        stage=error.stage, item=item,
                    ) from error.error
                raise error  # type: ignore[misc]  # a bug in this module: not wrapped
            return self.stats
        except asyncio.CancelledError:
            await self._cancel(tasks)
            raise
        finally:
            self.executor.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def produce(self, source: Iterable[Any] | AsyncIterable[Any]) -> None:
        first = self.queues[0]
        seq = 0
        current: Hashable | None = None
        count = 0
        item: Any = _STOP
        chunk_of = self.p.chunk_of
        try:
            if isinstance(source, AsyncIterable):
                iterator: Any = source.__aiter__()
                while True:
                    try:
                        item = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                    current, count = await self._feed(item, seq, current, count)
                    seq += 1
            else:
                for item in source:
                    current, count = await self._feed(item, seq, current, count)
                    seq += 1
        except (asyncio.CancelledError, _Failure):
            await _close(source)
            raise
        except Exception as exc:
            await _close(source)
            raise _Failure("source", item, exc) from exc
        if chunk_of is not None and count:
            self._close_chunk(current, count)
        for _ in range(self.p.stages[0].workers):
            await first.put(_STOP)

    async def _feed(self, item: Any, seq: int, current: Hashable | None, count: int) -> tuple[Hashable | None, int]:
        self.stats.items_in += 1
        chunk = None
        if self.p.chunk_of is not None:
            try:
                chunk = self.p.chunk_of(item)
            except Exception as exc:
                raise _Failure("source", item, exc) from exc
            if count and chunk != current:
                self._close_chunk(current, count)
                count = 0
            if count == 0:
                if chunk in self.seen:
                    raise _Failure("source", item, ValueError(f"chunk {chunk!r} appears twice in the source; "
                                                              "its items must be consecutive"))
                self.seen.add(chunk)
            current, count = chunk, count + 1
        await self.queues[0].put(_Envelope(seq, chunk, item))
        return current, count

    def _close_chunk(self, chunk: Hashable | None, count: int) -> None:
        self.expected[chunk] = count
        if len(self.arrived.get(chunk, ())) == count:
            self.ready.put_nowait(chunk)

    async def work(self, index: int) -> None:
        stage = self.p.stages[index]
        inbox, outbox = self.queues[index], self.queues[index + 1]
        stats = self.stats.stages[index]
        while True:
            envelope = await inbox.get()
            if envelope is _STOP:
                break
            started = time.perf_counter()
            try:
                envelope.value = await self.call(stage.fn, envelope.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise _Failure(stage.name, envelope.value, exc) from exc
            finally:
                stats.busy_s += time.perf_counter() - started
            stats.items += 1
            await outbox.put(envelope)
        self.alive[index] -= 1
        if self.alive[index] == 0:
            following = self.p.stages[index + 1].workers if index + 1 < len(self.p.stages) else 1
            for _ in range(following):
                await outbox.put(_STOP)

    async def collect(self) -> None:
        last = self.queues[-1]
        while True:
            envelope = await last.get()
            if envelope is _STOP:
                break
            self.stats.items_out += 1
            if self.p.checkpoint is None:
                continue
            outputs = self.arrived.setdefault(envelope.chunk, {})
            outputs[envelope.seq] = envelope.value
            if self.expected.get(envelope.chunk) == len(outputs):
                self.ready.put_nowait(envelope.chunk)
        if self.p.checkpoint is not None:
            self.ready.put_nowait(_STOP)

    async def checkpoints(self) -> None:
        assert self.p.checkpoint is not None
        while True:
            chunk = await self.ready.get()
            if chunk is _STOP:
                return
            outputs = self.arrived.pop(chunk)
            del self.expected[chunk]
            try:
                await self.call(self.p.checkpoint, chunk, [outputs[seq] for seq in sorted(outputs)])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise _Failure("checkpoint", chunk, exc) from exc
            self.stats.chunks_checkpointed += 1


async def _close(source: Any) -> None:
    """Run the source generator's cleanup (its ``finally``), sync or async."""
    try:
        if hasattr(source, "aclose"):
            await source.aclose()
        elif hasattr(source, "close"):
            source.close()
    except Exception:  # the original error matters more than a failing cleanup
        pass
