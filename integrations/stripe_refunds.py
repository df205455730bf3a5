"""Stripe refunds (`Refunds`), with our own ledger as the guarantee of "once per line ever".

Each refund decision — order, line, amount and the caller's idempotency key — is written to
the `stripe_refund_ledger` table *before* Stripe is called, together with the Stripe
`Idempotency-Key` derived from it. Then:

- The same decision again (an outbox retry, a crash between call and answer) finds its row and
  either returns the recorded refund or repeats the call with the *same* Stripe key, which
  Stripe answers with the original refund instead of a second one.
- A different decision for a line that already has a refund, or one whose outcome is still
  unknown, is refused by the ledger (UNIQUE(order_number, line_id)) and never reaches Stripe.
  A line whose earlier refund definitively failed may be tried again.
- An amount above what the line cost (less what was already refunded on it) is refused as
  `amount_too_large` before Stripe is called. Partial refunds are any smaller amount.
- Stripe's own refusals keep Stripe's code (`charge_already_refunded`, `amount_too_large`,
  `charge_disputed`, …) with `retryable=False`, are recorded on the row, and are never retried.
  Connection failures, 429 and 5xx are retried under the shared policy with the same key; if
  they persist the row stays `requested` and the error is `retryable=True`.

The Stripe SDK's own retries are off (ours apply, with full jitter) and its HTTP client is
httpx with explicit connect and read timeouts.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import stripe
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError

from integrations.clock import Clock, aware, utc_now
from integrations.http import DEFAULT_POLICY, DEFAULT_TIMEOUT, RetryPolicy, Sleep, with_retries
from integrations.models import Order, Refund
from integrations.protocols import OrderSource, ProviderError

__all__ = [
    "StripeAccount",
    "StripeRefunds",
    "metadata",
    "refund_idempotency_key",
    "stripe_refund_ledger",
]

metadata = MetaData()
"""The ledger's table, apart from the store's and the demo shop's."""

stripe_refund_ledger = Table(
    "stripe_refund_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_number", String(32), nullable=False),
    Column("line_id", String(64), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("decision_key", String(255), nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("payment_ref", String(255), nullable=False),
    Column("reason", String(500), nullable=False, default=""),
    # requested (written before the call; outcome unknown) | succeeded | pending | failed
    Column("status", String(16), nullable=False),
    Column("stripe_refund_id", String(255), index=True),
    Column("failure_reason", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("order_number", "line_id", name="uq_stripe_refund_ledger_line"),
)

# Stripe's refund statuses, as our `Refund.status`.
_STATUS = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}


def refund_idempotency_key(
    order_number: str, line_id: str, amount_cents: int, decision_key: str
) -> str:
    """The Stripe `Idempotency-Key` for one refund decision: the same decision, the same key."""
    digest = hashlib.sha256(
        "\x1f".join((order_number, line_id, str(amount_cents), decision_key)).encode()
    ).hexdigest()
    return f"postvoice-refund-{digest[:48]}"


class _HttpxForStripe(stripe.HTTPXClient):
    """The SDK's httpx client with our timeouts, and a transport a test may replace."""

    def __init__(
        self, timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(timeout=timeout)
        if transport is not None:
            self._client_async = httpx.AsyncClient(transport=transport)

    def _get_request_args_kwargs(self, method, url, headers, post_data):  # type: ignore[override]
        # The SDK hands httpx its encoded form as `data=`, which httpx deprecates for raw bytes.
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args, kwargs


@dataclass(frozen=True)
class _Row:
    order_number: str
    line_id: str
    amount_cents: int
    decision_key: str
    idempotency_key: str
    payment_ref: str
    reason: str
    status: str
    stripe_refund_id: str | None
    failure_reason: str | None
    created_at: datetime


class StripeAccount:
    """The Stripe SDK client with our HTTP policy: timeouts, no SDK retries, ours instead."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._rand = rand
        self._http = _HttpxForStripe(timeout, transport)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=0,
        )

    async def call(self, request: Callable[[], Any]) -> Any:
        """Run one SDK request, retried while that is safe; Stripe errors become
        `ProviderError` (Stripe's own code kept)."""
        try:
            return await with_retries(
                request,
                retryable=_stripe_retryable,
                policy=self.policy,
                sleep=self._sleep,
                rand=self._rand,
                what="Stripe request",
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc

    async def check(self) -> None:
        """A cheap authenticated call (`GET /v1/balance`); raises ProviderError on failure."""
        await self.call(lambda: self.client.v1.balance.retrieve_async())

    async def webhook_urls(self) -> list[str]:
        """The URLs of the account's enabled webhook endpoints."""
        endpoints = await self.call(
            lambda: self.client.v1.webhook_endpoints.list_async({"limit": 100})
        )
        return [e.url for e in endpoints.data if getattr(e, "status", "enabled") == "enabled"]

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.close_async()


class StripeRefunds:
    """`Refunds` through Stripe for orders whose `payment_ref` is a Stripe charge or payment
    intent, guarded by the ledger (see the module doc). Call `create_all()` once."""

    def __init__(
        self,
        api_key: str,
        engine: Engine,
        orders: OrderSource,
        *,
        api_base: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.orders = orders
        self._clock = clock
        self.account = StripeAccount(
            api_key,
            api_base=api_base,
            timeout=timeout,
            transport=transport,
            policy=policy,
            sleep=sleep,
            rand=rand,
        )

    def create_all(self) -> None:
        """Create the ledger table if missing."""
        metadata.create_all(self.engine)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.account.aclose()

    # -- Refunds ---------------------------------------------------------------------------

    async def refund(
        self,
        order_number: str,
        line_id: str,
        amount_cents: int,
        *,
        idempotency_key: str,
        reason: str,
    ) -> Refund:
        """Refund `amount_cents` of one order line to the original payment, once ever."""
        if not idempotency_key:
            raise ProviderError("a refund needs an idempotency_key", code="invalid_request")
        existing = await asyncio.to_thread(self._row, order_number, line_id)
        if existing is not None and existing.status != "failed":
            return await self._resume(existing, idempotency_key, amount_cents)
        if (
            existing is not None
            and existing.decision_key == idempotency_key
            and existing.amount_cents == amount_cents
        ):
            # The same decision failed for good: say so again rather than ask Stripe again.
            raise ProviderError(
                f"the refund of line {line_id} of order {order_number} failed: "
                f"{existing.failure_reason}",
                code=existing.failure_reason or "failed",
            )

        order = await self.orders.order(order_number)
        if order is None:
            raise ProviderError(f"no order {order_number}", code="not_found")
        payment_ref = self._payment_ref(order)
        refundable = self._line_total(order, line_id)
        if amount_cents <= 0:
            raise ProviderError("a refund must be above zero", code="invalid_amount")
        if amount_cents > refundable:
            raise ProviderError(
                f"{amount_cents} cents is more than the {refundable} cents left to refund on "
                f"line {line_id} of order {order_number}",
                code="amount_too_large",
            )

        row = _Row(
            order_number=order_number,
            line_id=line_id,
            amount_cents=amount_cents,
            decision_key=idempotency_key,
            idempotency_key=refund_idempotency_key(
                order_number, line_id, amount_cents, idempotency_key
            ),
            payment_ref=payment_ref,
            reason=reason[:500],
            status="requested",
            stripe_refund_id=None,
            failure_reason=None,
            created_at=self._clock(),
        )
        written = await asyncio.to_thread(self._write_requested, row, existing)
        if written is not row:
            return await self._resume(written, idempotency_key, amount_cents)
        return await self._call_stripe(row)

    async def refunds_of(self, order_number: str) -> list[Refund]:
        """Every refund the ledger holds for this order; one still unanswered is "pending"."""
        rows = await asyncio.to_thread(self._rows_of, order_number)
        return [_refund(row) for row in rows]

    # -- beyond the protocol ---------------------------------------------------------------

    async def apply_event(self, event: Mapping[str, Any]) -> Refund | None:
        """Move a ledger row on from a verified Stripe event (`refund.updated`,
        `refund.failed`, `charge.refund.updated`); returns the refund it changed."""
        if not str(event.get("type", "")).startswith(("refund.", "charge.refund.")):
            return None
        obj = (event.get("data") or {}).get("object") or {}
        if obj.get("object") != "refund" or not obj.get("id"):
            return None
        status = _STATUS.get(obj.get("status") or "", "pending")
        failure = obj.get("failure_reason") if status == "failed" else None
        row = await asyncio.to_thread(self._update_by_refund_id, obj["id"], status, failure)
        return _refund(row) if row else None

    # -- internals -------------------------------------------------------------------------

    async def _resume(self, row: _Row, decision_key: str, amount_cents: int) -> Refund:
        if row.decision_key != decision_key or row.amount_cents != amount_cents:
            if row.status == "requested":
                raise ProviderError(
                    f"a refund of line {row.line_id} of order {row.order_number} is already "
                    "under way",
                    code="refund_in_progress",
                )
            raise ProviderError(
                f"line {row.line_id} of order {row.order_number} was already refunded",
                code="already_refunded",
            )
        if row.status == "requested":
            # Outcome unknown (a crash or a lost answer): the same key makes Stripe answer with
            # the refund it already made, if it made one.
            return await self._call_stripe(row)
        return _refund(row)

    async def _call_stripe(self, row: _Row) -> Refund:
        params: dict[str, Any] = {
            "amount": row.amount_cents,
            "metadata": {
                "order_number": row.order_number,
                "line_id": row.line_id,
                "reason": row.reason,
            },
        }
        if row.payment_ref.startswith("pi_"):
            params["payment_intent"] = row.payment_ref
        else:
            params["charge"] = row.payment_ref
        try:
            created = await self.account.call(
                lambda: self.account.client.v1.refunds.create_async(
                    params, {"idempotency_key": row.idempotency_key}
                )
            )
        except ProviderError as error:
            if not error.retryable:
                await asyncio.to_thread(self._finish, row, "failed", None, error.code)
            raise
        status = _STATUS.get(created.status or "", "pending")
        failure = getattr(created, "failure_reason", None) if status == "failed" else None
        done = await asyncio.to_thread(self._finish, row, status, created.id, failure)
        return _refund(done)

    @staticmethod
    def _payment_ref(order: Order) -> str:
        ref = order.payment_ref or ""
        if not ref.startswith(("pi_", "ch_", "py_")):
            raise ProviderError(
                f"order {order.number} was not paid through Stripe", code="no_stripe_payment"
            )
        return ref

    @staticmethod
    def _line_total(order: Order, line_id: str) -> int:
        for index, line in enumerate(order.lines):
            if (line.line_id or str(index + 1)) == line_id:
                return line.price_cents * line.quantity
        raise ProviderError(f"order {order.number} has no line {line_id}", code="unknown_line")

    # Database work, run in a thread.

    def _row(self, order_number: str, line_id: str) -> _Row | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(stripe_refund_ledger).where(
                    stripe_refund_ledger.c.order_number == order_number,
                    stripe_refund_ledger.c.line_id == line_id,
                )
            ).first()
        return _row(found) if found else None

    def _rows_of(self, order_number: str) -> list[_Row]:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(stripe_refund_ledger)
                .where(stripe_refund_ledger.c.order_number == order_number)
                .order_by(stripe_refund_ledger.c.id)
            ).all()
        return [_row(r) for r in found]

    def _write_requested(self, row: _Row, failed: _Row | None) -> _Row:
        """Record the decision; returns `row`, or the row another decision wrote first."""
        values = {
            "amount_cents": row.amount_cents,
            "decision_key": row.decision_key,
            "idempotency_key": row.idempotency_key,
            "payment_ref": row.payment_ref,
            "reason": row.reason,
            "status": "requested",
            "stripe_refund_id": None,
            "failure_reason": None,
            "created_at": row.created_at,
            "updated_at": row.created_at,
        }
        line = (
            stripe_refund_ledger.c.order_number == row.order_number,
            stripe_refund_ledger.c.line_id == row.line_id,
        )
        try:
            with self.engine.begin() as conn:
                if failed is None:
                    conn.execute(
                        stripe_refund_ledger.insert().values(
                            order_number=row.order_number, line_id=row.line_id, **values
                        )
                    )
                else:
                    # Only a failed attempt may be replaced, and only if it still is one.
                    changed = conn.execute(
                        stripe_refund_ledger.update()
                        .where(*line, stripe_refund_ledger.c.status == "failed")
                        .values(**values)
                    ).rowcount
                    if changed != 1:
                        raise IntegrityError("replaced concurrently", None, Exception())
        except IntegrityError:
            current = self._row(row.order_number, row.line_id)
            if current is None:
                raise
            return current
        return row

    def _finish(self, row: _Row, status: str, refund_id: str | None, failure: str | None) -> _Row:
        with self.engine.begin() as conn:
            conn.execute(
                stripe_refund_ledger.update()
                .where(stripe_refund_ledger.c.idempotency_key == row.idempotency_key)
                .values(
                    status=status,
                    stripe_refund_id=refund_id,
                    failure_reason=failure,
                    updated_at=self._clock(),
                )
            )
        done = self._row(row.order_number, row.line_id)
        assert done is not None
        return done

    def _update_by_refund_id(self, refund_id: str, status: str, failure: str | None) -> _Row | None:
        with self.engine.begin() as conn:
            conn.execute(
                stripe_refund_ledger.update()
                .where(stripe_refund_ledger.c.stripe_refund_id == refund_id)
                .values(status=status, failure_reason=failure, updated_at=self._clock())
            )
            found = conn.execute(
                select(stripe_refund_ledger).where(
                    stripe_refund_ledger.c.stripe_refund_id == refund_id
                )
            ).first()
        return _row(found) if found else None


def _row(record: Any) -> _Row:
    return _Row(
        order_number=record.order_number,
        line_id=record.line_id,
        amount_cents=record.amount_cents,
        decision_key=record.decision_key,
        idempotency_key=record.idempotency_key,
        payment_ref=record.payment_ref,
        reason=record.reason,
        status=record.status,
        stripe_refund_id=record.stripe_refund_id,
        failure_reason=record.failure_reason,
        created_at=aware(record.created_at),
    )


def _refund(row: _Row) -> Refund:
    return Refund(
        id=row.stripe_refund_id or row.idempotency_key,
        order_number=row.order_number,
        line_id=row.line_id,
        amount_cents=row.amount_cents,
        status="pending" if row.status == "requested" else row.status,
        created_at=row.created_at,
        failure_reason=row.failure_reason,
    )


def _stripe_retryable(exc: BaseException) -> bool:
    # Safe because every call carries the same Idempotency-Key on each try (or is a read).
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return isinstance(exc, stripe.APIError) and (exc.http_status or 500) >= 500


def _provider_error(exc: stripe.StripeError) -> ProviderError:
    message = f"Stripe: {exc.user_message or exc}"
    if isinstance(exc, stripe.APIConnectionError):
        cause = exc.__cause__
        code = "timeout" if isinstance(cause, httpx.TimeoutException) else "unavailable"
        return ProviderError(message, code=code, retryable=True)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderError(message, code="rate_limited", retryable=True)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ProviderError(message, code="auth")
    if isinstance(exc, stripe.IdempotencyError):
        return ProviderError(message, code="idempotency_error")
    if isinstance(exc, stripe.APIError) and (exc.http_status or 500) >= 500:
        return ProviderError(message, code="unavailable", retryable=True)
    # Stripe's own reason, as Stripe names it: charge_already_refunded, amount_too_large, …
    return ProviderError(message, code=exc.code or "invalid_request")
