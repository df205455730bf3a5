"""The shared HTTP policy: timeouts on every call, retries only when repeating is safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from integrations.http import (
    DEFAULT_POLICY,
    NotSentError,
    ProviderHttp,
    RetryPolicy,
    make_timeout,
    retry_after_seconds,
)
from integrations.protocols import ProviderError
from tests.integrations.fakes_http import Flaky


class Sleeps:
    """An injected sleep that records the schedule instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def client(handler, sleeps: Sleeps, policy: RetryPolicy = DEFAULT_POLICY, rand=lambda: 1.0):
    return ProviderHttp(
        "Acme",
        "https://api.acme.test",
        transport=httpx.MockTransport(handler),
        policy=policy,
        sleep=sleeps,
        rand=rand,
    )


def test_backoff_is_capped_exponential_with_full_jitter():
    policy = RetryPolicy(attempts=6, base_s=0.5, cap_s=3.0)
    assert [policy.backoff(n, rand=lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert all(policy.backoff(n, rand=lambda: 0.0) == 0.0 for n in range(5))
    assert policy.backoff(2, rand=lambda: 0.25) == pytest.approx(0.5)


def test_every_client_has_connect_and_read_timeouts():
    http = ProviderHttp("Acme", "https://api.acme.test", timeout=make_timeout(2.0, 7.0))
    assert http.client.timeout.connect == 2.0
    assert http.client.timeout.read == 7.0
    assert http.client.timeout.pool == 2.0


async def test_a_safe_read_is_retried_after_a_timeout_and_succeeds():
    sleeps = Sleeps()
    flaky = Flaky(ok, failures=2, error=httpx.ReadTimeout)
    http = client(flaky, sleeps)
    response = await http.request("GET", "/things", safe=True)
    assert response.status_code == 200
    assert flaky.seen == 3
    assert sleeps.waits == [0.2, 0.4]


async def test_a_safe_read_that_keeps_timing_out_becomes_a_retryable_timeout():
    sleeps = Sleeps()
    flaky = Flaky(ok, failures=10, error=httpx.ReadTimeout)
    with pytest.raises(ProviderError) as raised:
        await client(flaky, sleeps).request("GET", "/things", safe=True)
    assert raised.value.code == "timeout"
    assert raised.value.retryable
    assert flaky.seen == 3  # the policy's attempts, no more


async def test_an_unsafe_post_is_not_repeated_after_a_read_timeout():
    sleeps = Sleeps()
    flaky = Flaky(ok, failures=1, error=httpx.ReadTimeout)
    with pytest.raises(ProviderError) as raised:
        await client(flaky, sleeps).request("POST", "/send", safe=False)
    assert flaky.seen == 1
    assert raised.value.code == "timeout"
    assert not isinstance(raised.value, NotSentError)  # it may have reached the provider


async def test_an_unsafe_post_is_retried_when_it_never_left():
    sleeps = Sleeps()
    flaky = Flaky(ok, failures=1, error=httpx.ConnectError)
    response = await client(flaky, sleeps).request("POST", "/send", safe=False)
    assert response.status_code == 200
    assert flaky.seen == 2


async def test_a_post_that_never_left_reports_so():
    flaky = Flaky(ok, failures=10, error=httpx.ConnectError)
    with pytest.raises(NotSentError) as raised:
        await client(flaky, Sleeps()).request("POST", "/send", safe=False)
    assert raised.value.code == "unavailable"
    assert raised.value.retryable


async def test_unsafe_posts_are_not_retried_on_5xx():
    flaky = Flaky(ok, failures=1, error=503)
    response = await client(flaky, Sleeps()).request("POST", "/send", safe=False)
    assert response.status_code == 503  # the caller decides: the provider may have acted
    assert flaky.seen == 1


async def test_5xx_on_a_safe_request_is_retried_then_reported_unavailable():
    flaky = Flaky(ok, failures=10, error=502)
    with pytest.raises(ProviderError) as raised:
        await client(flaky, Sleeps()).request("GET", "/things", safe=True)
    assert raised.value.code == "unavailable"
    assert raised.value.retryable
    assert flaky.seen == 3


async def test_4xx_is_the_providers_answer_and_is_not_retried():
    flaky = Flaky(ok, failures=1, error=422)
    response = await client(flaky, Sleeps()).request("GET", "/things", safe=True)
    assert response.status_code == 422
    assert flaky.seen == 1


async def test_retry_after_is_honoured_when_it_fits_under_the_cap():
    sleeps = Sleeps()
    flaky = Flaky(ok, failures=1, error=429, retry_after="1")
    response = await client(flaky, sleeps).request("GET", "/things", safe=True)
    assert response.status_code == 200
    assert sleeps.waits == [1.0]


async def test_a_long_retry_after_ends_the_retries():
    sleeps = Sleeps()
    flaky = Flaky(ok, failures=1, error=429, retry_after="120")
    with pytest.raises(ProviderError) as raised:
        await client(flaky, sleeps).request("POST", "/send", safe=False)
    assert raised.value.code == "rate_limited"
    assert isinstance(raised.value, NotSentError)  # a 429 did nothing
    assert sleeps.waits == []


def test_retry_after_as_an_http_date():
    now = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"retry-after": later}, now=now) == 30
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
