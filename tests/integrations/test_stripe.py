"""Stripe refunds through the real SDK: against a real localstripe server, and against a fake
that plays Stripe's documented refusals (localstripe enforces neither keys nor limits)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import stripe
from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from integrations.http import RetryPolicy
from integrations.models import Order, OrderLine
from integrations.protocols import ProviderError, Refunds
from integrations.stripe_refunds import StripeAccount, StripeRefunds, stripe_refund_ledger
from tests.integrations.fakes_http import free_port, localstripe_server

KEY = "sk_test_postvoice"


@pytest.fixture(scope="module")
def stripe_url() -> Iterator[str]:
    with localstripe_server() as url:
        yield url


class Orders:
    """An `OrderSource` holding one order paid by `payment_ref` (only `order` is used)."""

    def __init__(self, payment_ref: str) -> None:
        self.lookups = 0
        self.the_order = Order(
            number="1001",
            customer_id="7001",
            placed_at=datetime(2025, 3, 1, tzinfo=UTC),
            lines=(
                OrderLine("LS-M", "Linen shirt", "apparel", 4800, line_id="L1"),
                OrderLine("TS-9", "Trail shoes", "apparel", 12000, line_id="L2"),
            ),
            fulfillment="fulfilled",
            payment_method="your Visa ending in 4242",
            payment_ref=payment_ref,
        )

    async def order(self, number: str) -> Order | None:
        self.lookups += 1
        return self.the_order if number == self.the_order.number else None


async def _no_sleep(_seconds: float) -> None:
    return None


def _engine():
    return create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )


@pytest.fixture
async def stripe_admin(stripe_url: str):
    account = StripeAccount(KEY, api_base=stripe_url)
    yield account.client
    await account.aclose()


@pytest.fixture
async def paid(stripe_admin: stripe.StripeClient) -> str:
    """A customer's $168 payment, confirmed: the payment intent to refund from."""
    customer = await stripe_admin.v1.customers.create_async({"email": "maria@example.com"})
    card = await stripe_admin.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    intent = await stripe_admin.v1.payment_intents.create_async(
        {"amount": 16800, "currency": "usd", "customer": customer.id, "payment_method": card.id}
    )
    intent = await stripe_admin.v1.payment_intents.confirm_async(intent.id)
    assert intent.status == "succeeded"
    return intent.id


@pytest.fixture
async def refunds(stripe_url: str, paid: str):
    engine = _engine()
    client = StripeRefunds(KEY, engine, Orders(paid), api_base=stripe_url, sleep=_no_sleep)
    client.create_all()
    yield client
    await client.aclose()


async def stripe_refunds_of(admin: stripe.StripeClient, intent: str) -> list:
    listing = await admin.v1.refunds.list_async({"payment_intent": intent})
    return list(listing.data)


def ledger(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(stripe_refund_ledger)).mappings()]


async def test_a_partial_refund_goes_to_the_original_payment(refunds, stripe_admin, paid):
    assert isinstance(refunds, Refunds)
    refund = await refunds.refund(
        "1001", "L1", 2000, idempotency_key="call-9:refund:L1", reason="damaged"
    )
    assert refund.status == "succeeded"
    assert refund.amount_cents == 2000
    assert refund.id.startswith("re_")
    (made,) = await stripe_refunds_of(stripe_admin, paid)
    assert (made.id, made.amount) == (refund.id, 2000)
    assert made.metadata["order_number"] == "1001"
    assert made.metadata["line_id"] == "L1"
    (row,) = ledger(refunds.engine)
    assert row["status"] == "succeeded"
    assert row["stripe_refund_id"] == refund.id
    assert row["idempotency_key"].startswith("postvoice-refund-")


async def test_the_same_decision_twice_refunds_once(refunds, stripe_admin, paid):
    first = await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    again = await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert again == first
    assert len(await stripe_refunds_of(stripe_admin, paid)) == 1


async def test_a_second_refund_of_a_line_is_refused_before_stripe(refunds, stripe_admin, paid):
    await refunds.refund("1001", "L1", 1000, idempotency_key="k-1", reason="return")
    with pytest.raises(ProviderError) as raised:
        await refunds.refund("1001", "L1", 1000, idempotency_key="k-2", reason="return")
    assert raised.value.code == "already_refunded"
    assert not raised.value.retryable
    assert len(await stripe_refunds_of(stripe_admin, paid)) == 1
    # Other lines of the same order are their own matter.
    other = await refunds.refund("1001", "L2", 12000, idempotency_key="k-3", reason="return")
    assert other.status == "succeeded"
    assert [r.line_id for r in await refunds.refunds_of("1001")] == ["L1", "L2"]


async def test_more_than_the_line_cost_is_too_large_and_never_reaches_stripe(
    refunds, stripe_admin, paid
):
    with pytest.raises(ProviderError) as raised:
        await refunds.refund("1001", "L1", 4801, idempotency_key="k-1", reason="return")
    assert raised.value.code == "amount_too_large"
    assert not raised.value.retryable
    assert await stripe_refunds_of(stripe_admin, paid) == []
    assert ledger(refunds.engine) == []


async def test_unknown_lines_orders_and_amounts_are_refused(refunds):
    for order, line, amount, code in [
        ("1001", "L9", 100, "unknown_line"),
        ("2002", "L1", 100, "not_found"),
        ("1001", "L1", 0, "invalid_amount"),
    ]:
        with pytest.raises(ProviderError) as raised:
            await refunds.refund(order, line, amount, idempotency_key="k", reason="r")
        assert raised.value.code == code


async def test_the_decision_is_stored_before_the_call_and_resumed_after_an_outage(
    stripe_url, stripe_admin, paid
):
    engine = _engine()
    orders = Orders(paid)
    down = StripeRefunds(
        KEY,
        engine,
        orders,
        api_base=f"http://127.0.0.1:{free_port()}",
        policy=RetryPolicy(attempts=2),
        sleep=_no_sleep,
    )
    down.create_all()
    with pytest.raises(ProviderError) as raised:
        await down.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert raised.value.retryable
    (row,) = ledger(engine)
    assert row["status"] == "requested"  # written before Stripe was called
    assert [r.status for r in await down.refunds_of("1001")] == ["pending"]
    # Meanwhile another decision for the same line must wait for this one's outcome.
    with pytest.raises(ProviderError) as busy:
        await down.refund("1001", "L1", 4800, idempotency_key="k-2", reason="return")
    assert busy.value.code == "refund_in_progress"
    await down.aclose()

    up = StripeRefunds(KEY, engine, orders, api_base=stripe_url, sleep=_no_sleep)
    refund = await up.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert refund.status == "succeeded"
    assert len(await stripe_refunds_of(stripe_admin, paid)) == 1
    await up.aclose()


class StripeSays:
    """Plays Stripe's answers to `POST /v1/refunds` in order; records each request."""

    def __init__(self, *answers: tuple[int, dict]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return httpx.Response(status, json=body, headers={"request-id": "req_test"})


def stripe_error(code: str, message: str) -> tuple[int, dict]:
    return (
        400,
        {
            "error": {
                "code": code,
                "doc_url": f"https://stripe.com/docs/error-codes/{code}",
                "message": message,
                "request_log_url": "https://dashboard.stripe.com/test/logs/req_test",
                "type": "invalid_request_error",
            }
        },
    )


REFUND_OK = (
    200,
    {
        "id": "re_3PxYz",
        "object": "refund",
        "amount": 4800,
        "charge": "ch_3PxYz",
        "created": 1741000000,
        "currency": "usd",
        "metadata": {},
        "payment_intent": "pi_3Pabc",
        "reason": None,
        "status": "succeeded",
    },
)


def faked(says: StripeSays) -> StripeRefunds:
    client = StripeRefunds(
        KEY,
        _engine(),
        Orders("pi_3Pabc"),
        transport=httpx.MockTransport(says),
        sleep=_no_sleep,
    )
    client.create_all()
    return client


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("charge_already_refunded", "Charge ch_3PxYz has already been refunded."),
        (
            "amount_too_large",
            "Refund amount ($48.00) is greater than unrefunded amount on charge ($20.00)",
        ),
    ],
)
async def test_stripes_refusals_are_reported_truthfully_and_never_retried(code, message):
    says = StripeSays(stripe_error(code, message))
    refunds = faked(says)
    with pytest.raises(ProviderError) as raised:
        await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert raised.value.code == code
    assert not raised.value.retryable
    assert len(says.requests) == 1
    (row,) = ledger(refunds.engine)
    assert (row["status"], row["failure_reason"]) == ("failed", code)
    # The same decision again: the same answer, without asking Stripe again.
    with pytest.raises(ProviderError) as again:
        await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert again.value.code == code
    assert len(says.requests) == 1
    await refunds.aclose()


async def test_a_failed_line_may_be_refunded_by_a_new_decision():
    says = StripeSays(stripe_error("charge_disputed", "Charge is disputed."), REFUND_OK)
    refunds = faked(says)
    with pytest.raises(ProviderError):
        await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    refund = await refunds.refund("1001", "L1", 4800, idempotency_key="k-2", reason="return")
    assert refund.status == "succeeded"
    keys = {r.headers["Idempotency-Key"] for r in says.requests}
    assert len(keys) == 2
    await refunds.aclose()


async def test_stripe_outages_are_retried_with_the_same_idempotency_key():
    outage = (500, {"error": {"type": "api_error", "message": "An unknown error occurred"}})
    says = StripeSays(outage, outage, REFUND_OK)
    refunds = faked(says)
    refund = await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert refund.id == "re_3PxYz"
    assert len(says.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in says.requests}) == 1
    body = dict(x.split("=", 1) for x in says.requests[0].content.decode().split("&"))
    assert (body["payment_intent"], body["amount"]) == ("pi_3Pabc", "4800")
    await refunds.aclose()


async def test_a_refund_that_fails_later_is_updated_by_stripes_event():
    says = StripeSays((200, {**REFUND_OK[1], "status": "pending"}))
    refunds = faked(says)
    refund = await refunds.refund("1001", "L1", 4800, idempotency_key="k-1", reason="return")
    assert refund.status == "pending"
    event = {
        "id": "evt_1",
        "type": "refund.failed",
        "data": {
            "object": {
                **REFUND_OK[1],
                "status": "failed",
                "failure_reason": "expired_or_canceled_card",
            }
        },
    }
    updated = await refunds.apply_event(json.loads(json.dumps(event)))
    assert (updated.status, updated.failure_reason) == ("failed", "expired_or_canceled_card")
    assert await refunds.apply_event({"type": "customer.created", "data": {}}) is None
    await refunds.aclose()


async def test_orders_not_paid_through_stripe_are_refused():
    refunds = StripeRefunds(KEY, _engine(), Orders("shopify-payment-1"))
    refunds.create_all()
    with pytest.raises(ProviderError) as raised:
        await refunds.refund("1001", "L1", 100, idempotency_key="k", reason="r")
    assert raised.value.code == "no_stripe_payment"
    await refunds.aclose()
