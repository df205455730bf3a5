"""A bounded worker pool that takes turns across calls.

Speech models are CPU-bound and the machine has few cores: running every call's job at once
only makes them all slow. `FairPool` runs at most `workers` jobs at a time on its own threads
and, when a worker frees up, starts the oldest job of the *next* call in turn (round robin), so
a talkative call queues behind itself, never in front of everybody else. A job whose caller
stopped waiting (a speculative transcription the caller talked over) is dropped from the queue
without running. A job marked `urgent` (a reply's first sentence, while its caller waits in
silence) starts before every job that is not (the next sentence of a reply already playing,
which has the audio before it to hide behind); urgent jobs take turns the same way.

Which call a job belongs to is carried by the context variable `job_owner`; the call session
sets it with `on_behalf_of(call_sid)` around its engine calls, so the engines' public API
(`transcribe(pcm, hints)`, `synthesize(text)`) stays what every implementation already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["FairPool", "PoolClosed", "PoolStats", "job_owner", "on_behalf_of", "urgent"]

T = TypeVar("T")

log = logging.getLogger(__name__)

job_owner: contextvars.ContextVar[Hashable] = contextvars.ContextVar("job_owner", default="")
job_urgent: contextvars.ContextVar[bool] = contextvars.ContextVar("job_urgent", default=False)


@contextlib.contextmanager
def on_behalf_of(owner: Hashable) -> Iterator[None]:
    """Jobs submitted inside this block are queued under `owner` (a call SID)."""
    token = job_owner.set(owner)
    try:
        yield
    finally:
        job_owner.reset(token)


@contextlib.contextmanager
def urgent(flag: bool = True) -> Iterator[None]:
    """Jobs submitted inside this block (when `flag`) go before every job that is not urgent."""
    token = job_urgent.set(flag)
    try:
        yield
    finally:
        job_urgent.reset(token)


@dataclass
class _Job:
    owner: Hashable
    fn: Callable[..., Any]
    args: tuple
    future: asyncio.Future | Future
    loop: asyncio.AbstractEventLoop | None  # None: a thread waits on `future` (`when_idle`)
    urgent: bool = False


@dataclass
class PoolStats:
    """Counters since start: jobs started, jobs dropped before starting, the deepest queue."""

    started: int = 0
    dropped: int = 0
    max_queued: int = 0


class FairPool:
    """At most `workers` blocking jobs at once; queued jobs start round robin across owners.

    Safe to share between event loops and threads: its state is guarded by a lock, and each
    job's result is handed back on the loop that asked for it.
    """

    def __init__(self, workers: int, name: str = "pool", nice: int = 0) -> None:
        """`nice`: how much lower than the rest of the process its workers run (Linux thread
        niceness; threads a worker starts, such as a model's own, inherit it)."""
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.workers = workers
        self.name = name
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=name,
            initializer=_lower_priority if nice > 0 else None,
            initargs=(nice,) if nice > 0 else (),
        )
        # Re-entrant: a job that is already done when submitted settles inside `_dispatch`.
        self._lock = threading.RLock()
        # owner -> its waiting jobs, oldest first; the dict's order is the turn order.
        self._queues: OrderedDict[Hashable, deque[_Job]] = OrderedDict()
        self._urgent: OrderedDict[Hashable, deque[_Job]] = OrderedDict()  # served first
        self._idle: deque[_Job] = deque()  # run only when nothing else runs or waits
        self._running = 0
        self.stats = PoolStats()

    @property
    def running(self) -> int:
        """Jobs on a worker right now."""
        return self._running

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        with self._lock:
            return self._queued()

    def _queued(self) -> int:
        waiting = [*self._queues.values(), *self._urgent.values()]
        return sum(len(q) for q in waiting) + len(self._idle)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on a worker when its owner's turn comes. Cancelling the caller drops
        the job if it has not started; if it has, it finishes and its result is discarded."""
        loop = asyncio.get_running_loop()
        job = _Job(job_owner.get(), fn, args, loop.create_future(), loop, job_urgent.get())
        with self._lock:
            queues = self._urgent if job.urgent else self._queues
            queues.setdefault(job.owner, deque()).append(job)
            self.stats.max_queued = max(self.stats.max_queued, self._queued())
            self._dispatch()
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            with self._lock:
                if self._unqueue(job):
                    self.stats.dropped += 1
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on a worker and wait, from a thread without an event loop (the
        start-up warm-up, before calls arrive; not queued)."""
        return self._executor.submit(fn, *args).result()

    def when_idle(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` once the pool has nothing else to do, and wait (from a thread
        without an event loop): work that may go on while calls come in, never before them."""
        job = _Job("", fn, args, Future(), None)
        with self._lock:
            self._idle.append(job)
            self._dispatch()
        return job.future.result()

    def _unqueue(self, job: _Job) -> bool:
        queues = self._urgent if job.urgent else self._queues
        queue = queues.get(job.owner)
        if queue is None or job not in queue:
            return False
        queue.remove(job)
        if not queue:
            del queues[job.owner]
        return True

    def _next(self) -> _Job | None:
        """The oldest job of the owner whose turn it is, urgent jobs first; that owner then
        goes to the back."""
        queues = self._urgent or self._queues
        if not queues:
            if self._idle and not self._running:
                return self._idle.popleft()
            return None
        owner, queue = next(iter(queues.items()))
        job = queue.popleft()
        del queues[owner]
        if queue:
            queues[owner] = queue  # re-inserted: now last in turn
        return job

    def _dispatch(self) -> None:
        """Start queued jobs while workers are free. Called with the lock held."""
        while self._running < self.workers:
            job = self._next()
            if job is None:
                return
            try:
                work = self._executor.submit(job.fn, *job.args)
            except RuntimeError as exc:  # the interpreter is exiting: no job starts any more
                _fail(job, PoolClosed(f"{self.name} pool is shut down: {exc}"))
                continue
            self._running += 1
            self.stats.started += 1
            work.add_done_callback(lambda w, job=job: self._finished(job, w))

    def _finished(self, job: _Job, work: Future) -> None:
        """In the worker's thread: free the worker, start the next job, hand the result back."""
        with self._lock:
            self._running -= 1
            self._dispatch()
        if job.loop is None:
            _settle(job.future, work)
            return
        with contextlib.suppress(RuntimeError):  # the asking loop has closed: nobody waits
            job.loop.call_soon_threadsafe(_settle, job.future, work)


def _lower_priority(nice: int) -> None:
    """Make the calling thread `nice` steps nicer (where the OS allows per-thread niceness)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError) as exc:
        log.debug("could not lower the priority of %s: %s", threading.current_thread().name, exc)


class PoolClosed(RuntimeError):
    """The pool takes no more jobs (the process is exiting)."""


def _fail(job: _Job, exc: Exception) -> None:
    if job.loop is None:
        job.future.set_exception(exc)
        return
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(_set_exception, job.future, exc)


def _set_exception(future: asyncio.Future | Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def _settle(future: asyncio.Future | Future, work: Future) -> None:
    if future.done():
        return
    if work.cancelled():
        future.cancel()
        return
    exc = work.exception()
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(work.result())
