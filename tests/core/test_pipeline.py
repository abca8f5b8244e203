"""core.pipeline: stages, bounded queues, sentinel shutdown, fatal errors, cancellation, checkpoints.

Synchronisation is by events and counts, never by sleeping: ``settle()`` lets the event loop
run until nothing can move any more.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from hokan.core.errors import PipelineError
from hokan.core.pipeline import Pipeline, Stage


async def settle(rounds: int = 200) -> None:
    """Give every ready task many turns (what can run, runs; blocked tasks stay blocked)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_it_passes_every_item_through_every_stage_and_reports_counts():
    async def double(x):
        return x * 2

    def plus_one(x):  # a plain function: runs in a thread
        assert threading.current_thread() is not threading.main_thread()
        return x + 1

    out = []

    async def collect(x):
        out.append(x)
        return x

    pipeline = Pipeline([Stage("double", double, workers=3), Stage("plus", plus_one, workers=2),
                         Stage("collect", collect)], queue_size=2)
    stats = run(pipeline.run(range(50)))
    assert sorted(out) == [x * 2 + 1 for x in range(50)]
    assert (stats.items_in, stats.items_out, stats.chunks_checkpointed) == (50, 50, 0)
    assert [(s.name, s.workers, s.items) for s in stats.stages] == [("double", 3, 50), ("plus", 2, 50),
                                                                    ("collect", 1, 50)]


def test_an_empty_source_stops_every_worker_with_the_sentinel():
    async def never(x):
        raise AssertionError("no item")

    stats = run(Pipeline([Stage("a", never, workers=4), Stage("b", never, workers=3)], queue_size=1).run([]))
    assert (stats.items_in, stats.items_out) == (0, 0)


def test_items_finish_in_completion_order_and_chunks_are_checkpointed_when_their_last_item_passes():
    gates = {i: asyncio.Event() for i in range(6)}
    finished: list[int] = []
    checkpoints: list[tuple[str, list[int]]] = []

    async def slow(item):
        await gates[item[1]].wait()
        finished.append(item[1])
        return item[1] * 10

    async def checkpoint(chunk, outputs):
        checkpoints.append((chunk, outputs))

    source = [("A", 0), ("A", 1), ("A", 2), ("B", 3), ("B", 4), ("C", 5)]
    pipeline = Pipeline([Stage("slow", slow, workers=6)], queue_size=10, chunk_of=lambda item: item[0],
                        checkpoint=checkpoint)

    async def scenario():
        task = asyncio.create_task(pipeline.run(source))
        await settle()
        for i in (4, 3):  # chunk B first, its items out of order
            gates[i].set()
            await settle()
        assert checkpoints == [("B", [30, 40])]  # outputs in source order
        for i in (2, 0):
            gates[i].set()
            await settle()
        assert checkpoints == [("B", [30, 40])]  # A still waits for item 1
        gates[5].set()
        await settle()
        gates[1].set()
        stats = await task
        return stats

    stats = run(scenario())
    assert finished == [4, 3, 2, 0, 5, 1]
    assert checkpoints == [("B", [30, 40]), ("C", [50]), ("A", [0, 10, 20])]
    assert stats.chunks_checkpointed == 3


def test_a_plain_checkpoint_runs_in_a_thread():
    threads = []

    def checkpoint(chunk, outputs):
        threads.append(threading.current_thread())

    async def same(x):
        return x

    run(Pipeline([Stage("s", same)], chunk_of=lambda x: x // 3, checkpoint=checkpoint).run(range(7)))
    assert len(threads) == 3 and threading.main_thread() not in threads


def test_the_producer_blocks_when_the_queue_is_full():
    release = asyncio.Event()
    pulled = 0
    started = 0

    def source():
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield i

    async def blocked(x):
        nonlocal started
        started += 1
        await release.wait()
        return x

    queue_size = 3

    async def scenario():
        task = asyncio.create_task(Pipeline([Stage("blocked", blocked, workers=2)], queue_size=queue_size)
                                   .run(source()))
        await settle()
        # 2 items held by the workers, 3 in the queue, 1 pulled and waiting for room: no more.
        assert (started, pulled) == (2, 2 + queue_size + 1)
        await settle()
        assert pulled == 2 + queue_size + 1
        release.set()
        return await task

    stats = run(scenario())
    assert (pulled, stats.items_out) == (100, 100)


def test_a_fatal_error_mid_stream_stops_producer_and_consumers_with_a_clear_chained_error():
    pulled = 0
    closed = []
    in_thread = threading.Event()
    let_thread_go = threading.Event()

    def source():
        nonlocal pulled
        try:
            for i in range(10_000):
                pulled += 1
                yield i
        finally:
            closed.append(True)

    def hangs_in_a_thread(x):  # one worker is stuck in blocking work when the error comes
        if x == 0:
            in_thread.set()
            let_thread_go.wait(30)
        return x

    async def breaks(x):
        if x == 5:
            raise KeyError("no such category")
        return x

    async def never_ends(x):
        await asyncio.Event().wait()

    pipeline = Pipeline([Stage("thread", hangs_in_a_thread, workers=2), Stage("validate", breaks),
                         Stage("write", never_ends, workers=2)], queue_size=4)
    with pytest.raises(PipelineError) as raised:
        run(pipeline.run(source()))
    let_thread_go.set()
    error = raised.value
    assert error.stage == "validate" and error.item == "5"
    assert "validate" in str(error) and "KeyError" in str(error) and "no such category" in str(error)
    assert isinstance(error.__cause__, KeyError)
    assert in_thread.is_set()  # run() returned although a thread was still busy
    assert closed == [True]  # the source generator was closed
    assert pulled < 100  # the producer stopped (bounded queues: it never ran ahead)


def test_an_error_in_the_source_or_the_checkpoint_stops_the_pipeline():
    def bad_source():
        yield 1
        raise OSError("sheet unreadable")

    async def same(x):
        return x

    with pytest.raises(PipelineError) as raised:
        run(Pipeline([Stage("s", same)]).run(bad_source()))
    assert raised.value.stage == "source" and isinstance(raised.value.__cause__, OSError)

    def failing_checkpoint(chunk, outputs):
        raise RuntimeError("database is locked")

    with pytest.raises(PipelineError) as raised:
        run(Pipeline([Stage("s", same)], chunk_of=lambda x: x, checkpoint=failing_checkpoint).run([1, 2]))
    assert raised.value.stage == "checkpoint" and "database is locked" in str(raised.value)


def test_a_chunk_that_comes_back_later_in_the_source_is_refused():
    async def same(x):
        return x

    with pytest.raises(PipelineError, match="consecutive"):
        run(Pipeline([Stage("s", same)], chunk_of=lambda x: x[0], checkpoint=lambda c, o: None)
            .run(["a1", "b1", "a2"]))


def test_cancelling_the_run_cancels_every_stage_and_the_source():
    cancelled: list[str] = []

    async def scenario():
        running = asyncio.Event()

        async def waits(x):
            running.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(f"stage:{x}")
                raise

        async def source():
            try:
                for i in range(1000):
                    yield i
            finally:
                cancelled.append("source")

        task = asyncio.create_task(Pipeline([Stage("waits", waits, workers=3)], queue_size=2).run(source()))
        await running.wait()
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert sorted(cancelled) == ["source", "stage:0", "stage:1", "stage:2"]


def test_async_sources_and_sync_stage_concurrency_use_n_threads():
    barrier = threading.Barrier(8, timeout=10)  # all 8 workers must be inside fn at once

    def meet(x):
        barrier.wait()
        return x

    async def source():
        for i in range(16):
            yield i

    stats = run(Pipeline([Stage("invoke", meet, workers=8)], queue_size=1).run(source()))
    assert stats.items_out == 16


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        Stage("s", lambda x: x, workers=0)
    with pytest.raises(ValueError):
        Pipeline([])
    with pytest.raises(ValueError):
        Pipeline([Stage("s", lambda x: x)], checkpoint=lambda c, o: None)
    with pytest.raises(ValueError):
        Pipeline([Stage("s", lambda x: x)], queue_size=0)
