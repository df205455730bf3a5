"""The HTTP policy every provider client shares: timeouts, safe retries, capped backoff.

Rules, in one place so each client does not invent its own:

- Every request has explicit connect, read, write and pool timeouts (`httpx.Timeout`); nothing
  waits on a provider for ever.
- A request is retried only when repeating it cannot do the thing twice:
  * a *safe* request (a GET, a read-only GraphQL query, or a POST that carries an idempotency key
    the provider honours, such as Stripe's `Idempotency-Key`) is retried on connect errors,
    timeouts, 429 and 5xx answers;
  * any other request is retried only when the error proves it never left this machine: the
    connection was refused or never established (`ConnectError`, `ConnectTimeout`) or no pooled
    connection became free (`PoolTimeout`). A read timeout or a 5xx after the body was sent may
    mean the provider acted, so such a request is not repeated here; the caller's ledger and the
    outbox (same idempotency key, reconciled against the provider) decide what happens next.
- Between tries the wait is capped exponential backoff with full jitter:
  `uniform(0, min(cap, base * 2**retry))`, so many clients retrying together spread out. A
  `Retry-After` the provider sends is honoured when it fits under the cap; a longer one ends the
  retries, since the caller is on the phone and cannot wait that long.
- When tries run out the failure is a `ProviderError`: `timeout`, `unavailable` or
  `rate_limited`, all `retryable=True` (later, by the outbox, not now).

`sleep` and `rand` are injectable so tests check the schedule without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from integrations.protocols import ProviderError

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "NotSentError",
    "ProviderHttp",
    "RetryPolicy",
    "Sleep",
    "is_never_sent",
    "make_timeout",
    "provider_error",
    "retry_after_seconds",
    "with_retries",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=10.0, pool=3.0)
"""Connect fast or give up; a provider may take a while to answer once connected."""

# Answers after which the same safe request may well succeed.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def make_timeout(connect_s: float, read_s: float) -> httpx.Timeout:
    """A timeout with these connect and read limits; writes get the read limit, the pool the
    connect limit."""
    return httpx.Timeout(connect=connect_s, read=read_s, write=read_s, pool=connect_s)


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries and how long to wait between them.

    `attempts` counts the first try: 3 means at most two retries. Waits are full-jitter
    exponential: retry n (from 0) waits `rand() * min(cap_s, base_s * 2**n)` seconds.
    """

    attempts: int = 3
    base_s: float = 0.2
    cap_s: float = 2.0

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        return rand() * min(self.cap_s, self.base_s * (2**retry))


DEFAULT_POLICY = RetryPolicy()
"""Three tries, 0.2 s base, 2 s cap: retries fit inside a caller's patience."""

NO_RETRY = RetryPolicy(attempts=1)
"""One try and no retry."""


class NotSentError(ProviderError):
    """A `ProviderError` whose request provably never reached the provider: repeating the
    operation, even one that is not idempotent, cannot do it twice."""


def is_never_sent(exc: BaseException) -> bool:
    """True when the error proves the request never reached the provider."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The provider's `Retry-After` in seconds (delta or HTTP date), or None."""
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    retryable: Callable[[BaseException], bool],
    policy: RetryPolicy = RetryPolicy(),
    delay_hint: Callable[[BaseException], float | None] = lambda _exc: None,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    what: str = "request",
) -> T:
    """Run `operation`, retrying per `policy` while `retryable(exc)` says repeating is safe.

    `delay_hint` may return the provider's own wait (e.g. Retry-After): it replaces the jittered
    backoff when it is within `policy.cap_s`, and ends the retries when it is longer.
    The last exception propagates unchanged.
    """
    retry = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if retry + 1 >= policy.attempts or not retryable(exc):
                raise
            hinted = delay_hint(exc)
            if hinted is not None and hinted > policy.cap_s:
                raise
            wait = hinted if hinted is not None else policy.backoff(retry, rand)
            log.info("%s failed (%s); retry %d in %.2fs", what, type(exc).__name__, retry + 1, wait)
            await sleep(wait)
            retry += 1


class _TransientStatus(Exception):
    """A transient HTTP answer to a safe request, raised only to drive a retry."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class ProviderHttp:
    """An `httpx.AsyncClient` for one provider, applying the shared policy.

    `request(..., safe=True)` may be retried on timeouts and transient answers; `safe=False`
    only when the request never left. Non-transient answers (2xx, 4xx) come back as responses
    for the client to interpret; exhausted retries become `ProviderError`.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.provider = provider
        self.policy = policy
        self._sleep = sleep
        self._rand = rand
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        safe: bool,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request under the policy; see the class docstring. `content` is a raw
        body (a file upload)."""

        async def once() -> httpx.Response:
            response = await self.client.request(
                method,
                url,
                json=json,
                params=params,
                data=data,
                content=content,
                headers=headers,
            )
            if safe and response.status_code in _TRANSIENT_STATUSES:
                raise _TransientStatus(response)
            if not safe and response.status_code == 429:
                # A 429 is a refusal before any work: safe to repeat even when the call is not.
                raise _TransientStatus(response)
            return response

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, _TransientStatus):
                return True
            if safe:
                return isinstance(exc, httpx.TransportError)
            return is_never_sent(exc)

        def hint(exc: BaseException) -> float | None:
            if isinstance(exc, _TransientStatus):
                return retry_after_seconds(exc.response.headers)
            return None

        try:
            return await with_retries(
                once,
                retryable=retryable,
                policy=self.policy,
                delay_hint=hint,
                sleep=self._sleep,
                rand=self._rand,
                what=f"{self.provider} {method} {url}",
            )
        except _TransientStatus as exc:
            status = exc.response.status_code
            if status == 429:
                # Refused before any work was done, so it counts as never sent.
                raise NotSentError(
                    f"{self.provider} is rate limiting us", code="rate_limited", retryable=True
                ) from None
            if not safe or status < 500:
                return exc.response
            raise ProviderError(
                f"{self.provider} answered HTTP {status}", code="unavailable", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise provider_error(self.provider, exc) from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def provider_error(provider: str, exc: httpx.TransportError) -> ProviderError:
    """The `ProviderError` for a transport failure that retries did not cure."""
    if is_never_sent(exc):
        code = "timeout" if isinstance(exc, httpx.TimeoutException) else "unavailable"
        return NotSentError(
            f"{provider} could not be reached ({type(exc).__name__})", code=code, retryable=True
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            f"{provider} did not answer in time ({type(exc).__name__})",
            code="timeout",
            retryable=True,
        )
    return ProviderError(
        f"{provider} is unreachable ({type(exc).__name__})", code="unavailable", retryable=True
    )
