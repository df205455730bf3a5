"""The fair worker pool: bounded, round robin across calls, stale jobs dropped."""

import asyncio
import os
import threading

import pytest

from voice.pool import FairPool, PoolClosed, on_behalf_of, urgent


class Recorder:
    """Blocking jobs that note the order they ran in; the first can be held at a gate."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = threading.Event()
        self.held = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def job(self, name: str, hold: bool = False) -> str:
        with self.lock:
            self.order.append(name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        if hold:
            self.held.set()
            self.gate.wait(10)
        with self.lock:
            self.running -= 1
        return name


async def submit(pool: FairPool, owner: str, fn, *args) -> asyncio.Task:
    """Queue one job under `owner` and let it reach the pool's queue."""
    with on_behalf_of(owner):
        task = asyncio.create_task(pool.run(fn, *args))
    await asyncio.sleep(0)
    return task


async def queued(pool: FairPool, count: int) -> None:
    while pool.queued < count:
        await asyncio.sleep(0)


async def test_a_talkative_call_does_not_starve_the_others():
    pool = FairPool(workers=1)
    rec = Recorder()
    first = await submit(pool, "A", rec.job, "A1", True)
    await asyncio.to_thread(rec.held.wait, 10)
    tasks = [first]
    for owner, name in [("A", "A2"), ("A", "A3"), ("A", "A4"), ("B", "B1"), ("C", "C1")]:
        tasks.append(await submit(pool, owner, rec.job, name))
    await queued(pool, 5)
    rec.gate.set()
    assert await asyncio.gather(*tasks) == ["A1", "A2", "A3", "A4", "B1", "C1"]
    # A had queued three jobs before B and C asked once each: they wait behind one of A's.
    assert rec.order == ["A1", "A2", "B1", "C1", "A3", "A4"]


async def test_a_caller_waiting_in_silence_goes_before_replies_already_playing():
    pool = FairPool(workers=1)
    rec = Recorder()
    first = await submit(pool, "A", rec.job, "A1", True)
    await asyncio.to_thread(rec.held.wait, 10)
    tasks = [first]
    for owner, name in [("A", "A2"), ("B", "B2"), ("C", "C1!"), ("A", "A3"), ("D", "D1!")]:
        with urgent(name.endswith("!")):
            tasks.append(await submit(pool, owner, rec.job, name))
    await queued(pool, 5)
    # a job that is dropped while waiting leaves no trace in the urgent queue
    with urgent():
        dropped = await submit(pool, "E", rec.job, "E1!")
    dropped.cancel()
    await asyncio.gather(dropped, return_exceptions=True)
    assert pool.queued == 5
    rec.gate.set()
    await asyncio.gather(*tasks)
    # the first sentences of C and D (nothing of theirs plays yet) before the next parts of
    # A's and B's replies; those still round robin.
    assert rec.order == ["A1", "C1!", "D1!", "A2", "B2", "A3"]


async def test_never_more_jobs_at_once_than_workers():
    pool = FairPool(workers=2)
    rec = Recorder()
    tasks = [await submit(pool, f"call{i % 3}", rec.job, f"j{i}", True) for i in range(6)]
    await asyncio.to_thread(rec.held.wait, 10)
    await queued(pool, 4)
    assert pool.running == 2
    rec.gate.set()
    await asyncio.gather(*tasks)
    assert rec.most_at_once == 2
    assert sorted(rec.order) == sorted(f"j{i}" for i in range(6))


async def test_a_job_nobody_waits_for_is_dropped_before_it_runs():
    pool = FairPool(workers=1)
    rec = Recorder()
    busy = await submit(pool, "A", rec.job, "busy", True)
    await asyncio.to_thread(rec.held.wait, 10)
    stale = await submit(pool, "B", rec.job, "stale guess")
    fresh = await submit(pool, "B", rec.job, "final")
    await queued(pool, 2)
    stale.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stale
    rec.gate.set()
    assert await fresh == "final"
    await busy
    assert rec.order == ["busy", "final"]
    assert pool.stats.dropped == 1


async def test_an_abandoned_running_job_frees_its_worker_when_done():
    pool = FairPool(workers=1)
    rec = Recorder()
    running = await submit(pool, "A", rec.job, "abandoned", True)
    await asyncio.to_thread(rec.held.wait, 10)
    nxt = await submit(pool, "B", rec.job, "next")
    running.cancel()
    rec.gate.set()
    assert await nxt == "next"
    assert rec.order == ["abandoned", "next"]


async def test_errors_reach_the_caller_and_the_pool_goes_on():
    pool = FairPool(workers=1)

    def broken() -> None:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        await pool.run(broken)
    assert await pool.run(lambda: 42) == 42
    assert pool.running == 0 and pool.queued == 0


def test_needs_a_worker():
    with pytest.raises(ValueError):
        FairPool(workers=0)


async def test_idle_work_waits_until_no_call_needs_a_worker():
    pool = FairPool(workers=1)
    rec = Recorder()
    first = await submit(pool, "A", rec.job, "A1", True)
    await asyncio.to_thread(rec.held.wait, 10)
    idle = asyncio.create_task(asyncio.to_thread(pool.when_idle, rec.job, "prerender"))
    await queued(pool, 1)  # the idle job is queued before the call's next one
    second = await submit(pool, "B", rec.job, "B1")
    rec.gate.set()
    assert await asyncio.gather(first, second, idle) == ["A1", "B1", "prerender"]
    assert rec.order == ["A1", "B1", "prerender"]


def test_a_nice_pool_runs_its_jobs_at_a_lower_priority():
    if not hasattr(os, "getpriority"):
        pytest.skip("no thread niceness on this OS")
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = FairPool(1, name="nice", nice=3)
    plain = FairPool(1, name="plain")
    niceness = lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # noqa: E731
    assert pool.call(niceness) == min(here + 3, 19)
    assert plain.call(niceness) == here


async def test_a_pool_that_can_start_nothing_more_says_so_and_loses_no_worker():
    pool = FairPool(1, name="closing")
    pool._executor.shutdown()  # as at interpreter exit
    with pytest.raises(PoolClosed):
        await pool.run(lambda: 1)
    with pytest.raises(PoolClosed):
        await asyncio.to_thread(pool.when_idle, lambda: 1)
    assert pool.running == 0 and pool.queued == 0
