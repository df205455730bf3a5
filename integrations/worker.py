"""The outbox worker: claims due rows, delivers them through the providers, settles them.

The loop around `integrations.delivery`, which claims and settles the rows and turns each back
into a provider call. Runs inside the server (`start_in_process`, the default) or as its own process
(`postvoice worker`, `main`). Any number of workers may share one database: a row is claimed
with a lease (`Outbox.claim`), so two workers never deliver it at once, and a row whose worker
died mid-delivery is taken up again once its lease runs out. Delivery is at least once; the
idempotency key handed to the provider (Stripe's Idempotency-Key, the demo shop's UNIQUE keys)
makes the effect exactly once.

A failure the provider calls retryable (or a timeout, or a dropped connection) is tried again
after a capped exponential backoff with full jitter; a refusal (`ProviderError(retryable=False)`,
e.g. `charge_already_refunded`) or the last allowed attempt sends the row to dead, where
operators see it (`Store.outbox_items("dead")`) and may requeue it (`Outbox.retry_dead`).
`RetryPolicy` and the sorting of failures are `integrations.delivery`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import socket
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from integrations.clock import Clock, utc_now
from integrations.delivery import Deliverer, OutboxLeases, RetryPolicy, classify, deliverers_for
from integrations.demo import DemoShop
from integrations.outbox import Outbox, OutboxEntry
from integrations.photos import attachment_deliverer
from integrations.provider_set import Providers

__all__ = [
    "ProviderFactory",
    "RetryPolicy",
    "Worker",
    "WorkerHandle",
    "default_worker_id",
    "deliverers_from",
    "demo_deliverers",
    "demo_providers",
    "main",
    "run_worker",
    "start_in_process",
]

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """host:pid, so an operator can tell which process holds a row."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Worker:
    """Delivers outbox rows of the kinds it has deliverers for.

    `lease_s` must outlast `timeout_s` (the longest a delivery may take), so a row is only
    taken over from a worker that is really gone.
    """

    outbox: Outbox
    deliverers: Mapping[str, Deliverer]
    worker_id: str = field(default_factory=default_worker_id)
    clock: Clock = utc_now
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    lease_s: float = 60.0
    timeout_s: float = 20.0
    batch: int = 10
    rng: random.Random = field(default_factory=random.Random)
    leases: OutboxLeases = field(init=False)

    def __post_init__(self) -> None:
        if self.lease_s <= self.timeout_s:
            raise ValueError("lease_s must be longer than timeout_s")
        self.leases = OutboxLeases(self.outbox.engine)

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them; how many were claimed."""
        entries = await asyncio.to_thread(
            self.leases.claim,
            self.worker_id,
            sorted(self.deliverers),
            now=self.clock(),
            lease_s=self.lease_s,
            limit=self.batch,
            max_attempts=self.policy.max_attempts,
        )
        # Let every delivery of the batch finish before reporting a failure to settle one.
        outcomes = await asyncio.gather(
            *(self._deliver(entry) for entry in entries), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(entries)

    async def _deliver(self, entry: OutboxEntry) -> None:
        deliver = self.deliverers[entry.kind]
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await deliver(entry.payload, entry.idempotency_key)
        except Exception as error:  # every failure is settled on the row, none ends the worker
            await self._settle_failure(entry, error)
            return
        done = await asyncio.to_thread(
            self.leases.complete, entry.id, result or {}, now=self.clock()
        )
        if done:
            log.info(
                "outbox %s delivered: %s %s (attempt %s, worker %s)",
                entry.id,
                entry.kind,
                entry.idempotency_key,
                entry.attempts,
                self.worker_id,
            )

    async def _settle_failure(self, entry: OutboxEntry, error: BaseException) -> None:
        retryable, code = classify(error)
        message = f"{type(error).__name__}: {error}"
        now = self.clock()
        retry_at = None
        if retryable and entry.attempts < self.policy.max_attempts:
            retry_at = now + timedelta(seconds=self.policy.delay(entry.attempts, self.rng))
        await asyncio.to_thread(
            self.leases.fail,
            entry.id,
            self.worker_id,
            error=message,
            code=code,
            now=now,
            retry_at=retry_at,
        )
        if retry_at is None:
            log.error(
                "outbox %s dead after %s attempt(s): %s %s: %s",
                entry.id,
                entry.attempts,
                entry.kind,
                entry.idempotency_key,
                message,
            )
        else:
            log.warning(
                "outbox %s attempt %s failed (%s), retry at %s: %s",
                entry.id,
                entry.attempts,
                code,
                retry_at.isoformat(timespec="seconds"),
                message,
            )

    async def drain(self, *, poll_s: float = 0.05, timeout_s: float | None = 60.0) -> None:
        """Deliver until no row of our kinds is pending or delivering (waiting out leases
        and backoffs); for tests and `--drain` runs. Raises TimeoutError past `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while True:
                if await self.run_once():
                    continue
                if not await asyncio.to_thread(self._unsettled):
                    return
                await asyncio.sleep(poll_s)

    def _unsettled(self) -> bool:
        return any(
            self.outbox.items(status=status, kind=kind, limit=1)
            for kind in self.deliverers
            for status in ("pending", "delivering")
        )


async def run_worker(
    worker: Worker,
    stop: asyncio.Event,
    *,
    poll_s: float = 1.0,
    wake: asyncio.Event | None = None,
) -> None:
    """Deliver until `stop` is set, polling every `poll_s` and at once when `wake` is set.

    Stopping lets the deliveries in hand finish; a database outage is logged and waited out.
    """
    wake = wake or asyncio.Event()
    log.info(
        "outbox worker %s delivering %s", worker.worker_id, ", ".join(sorted(worker.deliverers))
    )
    failures = 0
    while not stop.is_set():
        try:
            claimed = await worker.run_once()
            failures = 0
        except Exception:
            failures += 1
            log.exception("outbox worker %s: could not claim", worker.worker_id)
            claimed = 0
            await _wait_any(stop, None, worker.policy.delay(failures, worker.rng))
            continue
        if claimed:
            continue
        await _wait_any(stop, wake, poll_s)
        wake.clear()
    log.info("outbox worker %s stopped", worker.worker_id)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@dataclass
class WorkerHandle:
    """A worker running as a task of the current event loop."""

    worker: Worker
    task: asyncio.Task[None]
    stop_event: asyncio.Event
    wake_event: asyncio.Event
    loop: asyncio.AbstractEventLoop

    def wake(self) -> None:
        """Look for work now rather than at the next poll (safe from any thread)."""
        self.loop.call_soon_threadsafe(self.wake_event.set)

    async def stop(self) -> None:
        """Let deliveries in hand finish, then end the task."""
        self.stop_event.set()
        with suppress(asyncio.CancelledError):
            await self.task


def start_in_process(
    outbox: Outbox,
    deliverers: Mapping[str, Deliverer],
    *,
    poll_s: float = 1.0,
    **options: object,
) -> WorkerHandle:
    """Start a worker in the running event loop (the server's); stop it with `.stop()`.

    `options` are `Worker` fields (worker_id, policy, lease_s, timeout_s, batch, clock).
    """
    worker = Worker(outbox, deliverers, **options)  # type: ignore[arg-type]
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_worker(worker, stop, poll_s=poll_s, wake=wake))
    return WorkerHandle(worker, task, stop, wake, asyncio.get_running_loop())


ProviderFactory = Callable[[Engine], Providers]
"""Builds the providers a worker delivers through, from the store's engine (as
`integrations.providers.build_providers` chooses them); it uses their Messenger, Helpdesk,
Refunds and Returns."""


def demo_providers(engine: Engine) -> Providers:
    """The embedded demo shop's providers in `engine`."""
    return Providers.demo(DemoShop(engine))


def deliverers_from(providers: Providers, engine: Engine | None = None) -> dict[str, Deliverer]:
    """Deliverers for the Messenger, Helpdesk, Refunds and Returns of `providers`; with the
    store's `engine`, also for files kept there (photos of damage) added to tickets."""
    found = deliverers_for(
        messenger=providers.messenger,
        helpdesk=providers.helpdesk,
        refunds=providers.refunds,
        returns=providers.returns,
    )
    if engine is not None:
        found["attachment"] = attachment_deliverer(providers.helpdesk, engine)
    return found


def demo_deliverers(engine: Engine) -> dict[str, Deliverer]:
    """Deliverers over the embedded demo shop in `engine` (the in-process default)."""
    return deliverers_from(demo_providers(engine), engine)


async def _close(providers: Providers) -> None:
    """Close the providers' HTTP clients, each once; a failure to close ends nothing."""
    for client in providers.clients():
        with suppress(Exception):
            await client.aclose()


def main(
    database_url: str,
    *,
    providers: ProviderFactory | None = None,
    worker_id: str | None = None,
    poll_s: float = 1.0,
    batch: int = 10,
    lease_s: float = 60.0,
    timeout_s: float = 20.0,
    policy: RetryPolicy | None = None,
    drain: bool = False,
) -> int:
    """`postvoice worker`: migrate, then deliver until SIGINT/SIGTERM (or, with `drain`,
    until nothing is left to deliver). `providers` defaults to the demo shop's. Exit code."""
    from integrations.store import Store, make_engine

    engine = make_engine(database_url)
    store = Store(engine)
    store.migrate()
    chosen = (providers or demo_providers)(engine)
    worker = Worker(
        store.outbox,
        deliverers_from(chosen, engine),
        worker_id=worker_id or default_worker_id(),
        policy=policy or RetryPolicy(),
        lease_s=lease_s,
        timeout_s=timeout_s,
        batch=batch,
    )
    if not worker.deliverers:
        log.error("no providers to deliver through: nothing this worker could send")
        return 2

    async def serve() -> None:
        try:
            if drain:
                await worker.drain(poll_s=poll_s, timeout_s=None)
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run_worker(worker, stop, poll_s=poll_s)
        finally:
            await _close(chosen)

    try:
        asyncio.run(serve())
    finally:
        engine.dispose()
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.worker", description="Deliver the outbox."
    )
    parser.add_argument("--database-url", required=True, help="the store's SQLAlchemy URL")
    parser.add_argument("--worker-id", default=None, help="default: host:pid")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds")
    parser.add_argument("--batch", type=int, default=10, help="rows claimed at a time")
    parser.add_argument("--lease", type=float, default=60.0, help="seconds a claim lasts")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per delivery")
    parser.add_argument("--max-attempts", type=int, default=RetryPolicy.max_attempts)
    parser.add_argument("--backoff-cap", type=float, default=RetryPolicy.cap_s, help="seconds")
    parser.add_argument("--drain", action="store_true", help="exit once nothing is left")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


if __name__ == "__main__":  # pragma: no cover - exercised as a process by the tests
    from integrations.redact import RedactingFilter

    args = _parse(None)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    raise SystemExit(
        main(
            args.database_url,
            worker_id=args.worker_id,
            poll_s=args.poll_interval,
            batch=args.batch,
            lease_s=args.lease,
            timeout_s=args.timeout,
            policy=RetryPolicy(max_attempts=args.max_attempts, cap_s=args.backoff_cap),
            drain=args.drain,
        )
    )
