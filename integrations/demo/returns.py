"""`DemoReturns`: RMAs, their labels and their receipt at the warehouse."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select
from sqlalchemy.exc import IntegrityError

from integrations.clock import Clock, utc_now
from integrations.demo.carriers import WAREHOUSE
from integrations.demo.orders import customer_of, existing_order
from integrations.demo.rows import (
    clean_order_number,
    from_db,
    from_db_or_none,
    key_reused,
    next_id,
    require_key,
    to_db,
    write_once,
)
from integrations.demo.schema import (
    RESOLUTIONS,
    shop_return_lines,
    shop_returns,
    shop_shipments,
    shop_stock,
)
from integrations.demo.tracking import add_scan
from integrations.labels import LabelMaker, LabelPrinter
from integrations.models import (
    Customer,
    Label,
    Order,
    OrderLine,
    ReturnAuthorization,
    ShipmentStatus,
)
from integrations.protocols import ProviderError


@dataclass(frozen=True)
class _LabelJob:
    """What a label maker needs for one RMA."""

    rma: ReturnAuthorization
    order: Order
    customer: Customer | None


class DemoReturns:
    """`Returns` over `shop_returns`: RMAs, their labels (from a `LabelMaker`), their receipt.

    Policy (windows, final sale) is the dialog's to apply; this store refuses only what no shop
    could do: a return for an unknown order or line ("not_found"), a second return of a line
    ("already_returned", enforced by a UNIQUE constraint), or an exchange for a size that is out
    of stock ("out_of_stock"; an exchange reserves one unit of `exchange_variant`).
    """

    def __init__(self, engine: Engine, labels: LabelMaker, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._labels = labels
        self._clock = clock

    async def create(
        self,
        order_number: str,
        line_ids: list[str],
        reason_code: str,
        resolution: str,
        *,
        idempotency_key: str,
        exchange_variant: str | None = None,
    ) -> ReturnAuthorization:
        """Authorize the return of `line_ids` ("1005-1", …); the same key returns the same RMA."""
        require_key(idempotency_key)
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution {resolution!r}; known: {list(RESOLUTIONS)}")
        lines = list(dict.fromkeys(line_ids))
        if not lines:
            raise ValueError("a return needs at least one order line")
        request = _ReturnRequest(
            clean_order_number(order_number),
            tuple(lines),
            reason_code.strip() or "unspecified",
            resolution,
            exchange_variant if resolution == "exchange" else None,
            idempotency_key,
        )
        return await asyncio.to_thread(self._create, request)

    async def label(self, rma: str, *, idempotency_key: str) -> Label:
        """The return label of `rma`, made once and marked sent ("label_sent").

        Asking again returns the same label; an expired link is replaced by a fresh one. Once the
        parcel is on its way ProviderError("label_used"); unknown RMA ProviderError("not_found").
        """
        require_key(idempotency_key)
        job = await asyncio.to_thread(self._label_job, rma, idempotency_key)
        if isinstance(job, Label):
            return job
        label = await self._labels.make(job.rma, job.order, job.customer)
        return await asyncio.to_thread(self._record_label, job, label, idempotency_key)

    async def returns_of(self, order_number: str) -> list[ReturnAuthorization]:
        """The order's returns, oldest first."""
        return await asyncio.to_thread(self._returns_of, clean_order_number(order_number))

    async def receive(self, rma: str) -> ReturnAuthorization:
        """The warehouse has the parcel: the RMA is "received" and its label shipment delivered.

        Receiving twice changes nothing; a return already refunded or exchanged stays so.
        """
        return await asyncio.to_thread(self._receive, rma)

    async def label_pdf(self, rma: str) -> bytes | None:
        """The printable label of an RMA that has one, when this shop's labels are drawn here.

        None for an unknown RMA, one without a label, or a label maker that hosts its own PDFs.
        The caller checks the link's signature first (`EmbeddedLabels.verify`).
        """
        if not isinstance(self._labels, LabelPrinter):
            return None
        job = await asyncio.to_thread(self._job_or_none, rma)
        if job is None or job.rma.label is None:
            return None
        return await asyncio.to_thread(self._labels.pdf, job.rma, job.order, job.customer)

    def _create(self, request: _ReturnRequest) -> ReturnAuthorization:
        def find(conn: Connection) -> ReturnAuthorization | None:
            row = conn.execute(
                select(shop_returns).where(shop_returns.c.idempotency_key == request.key)
            ).first()
            if row is None:
                return None
            found = _return(conn, row)
            if (found.order_number, set(found.line_ids)) != (request.order, set(request.lines)):
                raise key_reused(f"return {found.rma}")
            return found

        def write(conn: Connection) -> ReturnAuthorization:
            order = existing_order(conn, request.order)
            by_id = {line.line_id: line for line in order.lines}
            unknown = [line_id for line_id in request.lines if line_id not in by_id]
            if unknown:
                raise ProviderError(
                    f"order {order.number} has no line {', '.join(unknown)}", code="not_found"
                )
            taken = conn.execute(
                select(shop_return_lines.c.line_id, shop_return_lines.c.rma).where(
                    shop_return_lines.c.order_number == order.number,
                    shop_return_lines.c.line_id.in_(request.lines),
                )
            ).first()
            if taken is not None:
                raise ProviderError(
                    f"line {taken.line_id} is already on return {taken.rma}",
                    code="already_returned",
                )
            if request.exchange_variant:
                _reserve(conn, [by_id[i] for i in request.lines], request.exchange_variant)
            rma = next_id(conn, shop_returns.c.rma, "RMA-", 50001)
            conn.execute(
                shop_returns.insert(),
                {
                    "rma": rma,
                    "order_number": order.number,
                    "reason_code": request.reason_code,
                    "resolution": request.resolution,
                    "status": "authorized",
                    "exchange_variant": request.exchange_variant,
                    "idempotency_key": request.key,
                    "created_at": to_db(self._clock()),
                },
            )
            conn.execute(
                shop_return_lines.insert(),
                [{"rma": rma, "order_number": order.number, "line_id": i} for i in request.lines],
            )
            return _return(conn, _return_row(conn, rma))

        return write_once(self._engine, find, write)

    def _job_or_none(self, rma: str) -> _LabelJob | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(shop_returns).where(shop_returns.c.rma == rma)).first()
            if row is None:
                return None
            order = existing_order(conn, row.order_number)
            return _LabelJob(_return(conn, row), order, customer_of(conn, order.customer_id))

    def _label_job(self, rma: str, key: str) -> _LabelJob | Label:
        """The label to hand back as it is, or what the label maker needs to make one."""
        job = self._job_or_none(rma)
        if job is None:
            raise ProviderError(f"no return {rma!r}", code="not_found")
        with self._engine.connect() as conn:
            label_key = conn.execute(
                select(shop_returns.c.label_idempotency_key).where(shop_returns.c.rma == rma)
            ).scalar_one()
        label, status = job.rma.label, job.rma.status
        if label is not None and label_key == key:
            return label
        if status not in ("authorized", "label_sent"):
            raise ProviderError(f"the label of {rma} has already been used", code="label_used")
        if label is not None and label.url and not _expired(label, self._clock()):
            return label
        return job

    def _record_label(self, job: _LabelJob, label: Label, key: str) -> Label:
        rma, now = job.rma.rma, self._clock()
        address = job.order.shipping_address
        try:
            with self._engine.begin() as conn:
                known = conn.execute(
                    select(shop_shipments.c.tracking_number).where(
                        shop_shipments.c.tracking_number == label.tracking_number
                    )
                ).first()
                if known is None:
                    conn.execute(
                        shop_shipments.insert(),
                        {
                            "tracking_number": label.tracking_number,
                            "carrier": label.carrier,
                            "order_number": job.order.number,
                            "direction": "return",
                        },
                    )
                    where = (
                        f"{address.city}, {address.region}, {address.country}" if address else ""
                    )
                    add_scan(
                        conn,
                        label.tracking_number,
                        now,
                        ShipmentStatus.PRE_TRANSIT,
                        "Shipping Label Created",
                        where,
                    )
                updated = conn.execute(
                    shop_returns.update()
                    .where(
                        shop_returns.c.rma == rma,
                        shop_returns.c.status.in_(("authorized", "label_sent")),
                    )
                    .values(
                        status="label_sent",
                        label_url=label.url,
                        label_carrier=label.carrier,
                        label_tracking_number=label.tracking_number,
                        label_expires_at=None
                        if label.expires_at is None
                        else to_db(label.expires_at),
                        label_idempotency_key=key,
                    )
                )
                if updated.rowcount != 1:
                    raise ProviderError(
                        f"the label of {rma} has already been used", code="label_used"
                    )
        except IntegrityError:
            # A concurrent call recorded this label first; theirs is the one to hand out.
            stored = self._job_or_none(rma)
            if stored is None or stored.rma.label is None:
                raise
            return stored.rma.label
        return label

    def _returns_of(self, number: str) -> list[ReturnAuthorization]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shop_returns)
                .where(shop_returns.c.order_number == number)
                .order_by(shop_returns.c.created_at, shop_returns.c.rma)
            ).all()
            return [_return(conn, row) for row in rows]

    def _receive(self, rma: str) -> ReturnAuthorization:
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(select(shop_returns).where(shop_returns.c.rma == rma)).first()
            if row is None:
                raise ProviderError(f"no return {rma!r}", code="not_found")
            if row.status in ("authorized", "label_sent", "in_transit"):
                conn.execute(
                    shop_returns.update()
                    .where(shop_returns.c.rma == rma)
                    .values(status="received", received_at=to_db(now))
                )
                if row.label_tracking_number is not None:
                    _mark_delivered(conn, row.label_tracking_number, now)
            return _return(conn, _return_row(conn, rma))


@dataclass(frozen=True)
class _ReturnRequest:
    order: str
    lines: tuple[str, ...]
    reason_code: str
    resolution: str
    exchange_variant: str | None
    key: str


def _expired(label: Label, now: datetime) -> bool:
    return label.expires_at is not None and label.expires_at <= now


def _reserve(conn: Connection, lines: Sequence[OrderLine], variant: str) -> None:
    """Takes one unit of `variant` per line off stock, for SKUs whose stock the shop counts."""
    for line in lines:
        counted = conn.execute(
            select(func.count()).select_from(shop_stock).where(shop_stock.c.sku == line.sku)
        ).scalar_one()
        if not counted:
            continue
        taken = conn.execute(
            shop_stock.update()
            .where(
                shop_stock.c.sku == line.sku,
                shop_stock.c.variant == variant,
                shop_stock.c.on_hand > 0,
            )
            .values(on_hand=shop_stock.c.on_hand - 1)
        )
        if taken.rowcount != 1:
            raise ProviderError(f"{line.name} in {variant} is out of stock", code="out_of_stock")


def _mark_delivered(conn: Connection, tracking_number: str, now: datetime) -> None:
    shipment = conn.execute(
        select(shop_shipments).where(shop_shipments.c.tracking_number == tracking_number)
    ).first()
    if shipment is None or shipment.delivered_at is not None:
        return
    conn.execute(
        shop_shipments.update()
        .where(shop_shipments.c.tracking_number == tracking_number)
        .values(
            delivered_at=to_db(now),
            shipped_at=shipment.shipped_at if shipment.shipped_at is not None else to_db(now),
        )
    )
    add_scan(conn, tracking_number, now, ShipmentStatus.DELIVERED, "Delivered, Dock", WAREHOUSE)


def _return_row(conn: Connection, rma: str) -> Row[Any]:
    return conn.execute(select(shop_returns).where(shop_returns.c.rma == rma)).one()


def _return(conn: Connection, row: Row[Any]) -> ReturnAuthorization:
    line_ids = conn.execute(
        select(shop_return_lines.c.line_id)
        .where(shop_return_lines.c.rma == row.rma)
        .order_by(shop_return_lines.c.line_id)
    ).scalars()
    label = None
    if row.label_tracking_number is not None:
        label = Label(
            url=row.label_url or "",
            carrier=row.label_carrier or "",
            tracking_number=row.label_tracking_number,
            expires_at=from_db_or_none(row.label_expires_at),
        )
    return ReturnAuthorization(
        rma=row.rma,
        order_number=row.order_number,
        line_ids=tuple(line_ids),
        reason_code=row.reason_code,
        resolution=row.resolution,
        status=row.status,
        created_at=from_db(row.created_at),
        label=label,
        exchange_variant=row.exchange_variant,
        received_at=from_db_or_none(row.received_at),
    )
