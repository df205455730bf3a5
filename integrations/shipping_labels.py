"""Real return labels bought from EasyPost: a `LabelMaker` like `labels.EmbeddedLabels`.

A return label is an EasyPost Shipment created with `is_return: true` — `to_address` is the
customer (where the order went), `from_address` the warehouse, and EasyPost swaps them so the
label takes the parcel back — then bought at the chosen rate (`POST /shipments/{id}/buy`).

Buying is a purchase and EasyPost takes no idempotency key, so it is guarded here: the
`easypost_return_labels` table remembers, per RMA, the shipment created for it and then the
label bought. A second `make` for the same RMA returns the stored label; one after a lost answer
reads the shipment back first and buys only if it still has no label. The buy itself is retried
only when it provably never left (`integrations.http`); creating the shipment buys nothing, so
it and every read are retried like safe requests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from integrations.carrier import carrier_name
from integrations.clock import Clock, utc_now
from integrations.http import DEFAULT_POLICY, DEFAULT_TIMEOUT, ProviderHttp, RetryPolicy, Sleep
from integrations.models import Address, Customer, Label, Order, ReturnAuthorization
from integrations.protocols import ProviderError

__all__ = [
    "EasyPostLabels",
    "Parcel",
    "ReturnAddress",
    "easypost_return_labels",
    "metadata",
]

metadata = MetaData()
"""The label ledger's table, apart from the store's."""

easypost_return_labels = Table(
    "easypost_return_labels",
    metadata,
    Column("rma", String(64), primary_key=True),
    Column("shipment_id", String(64)),
    Column("carrier", String(64)),
    Column("tracking_number", String(64)),
    Column("label_url", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Parcel:
    """The box a return is assumed to fit (inches and ounces, as EasyPost takes them)."""

    length_in: float = 12.0
    width_in: float = 10.0
    height_in: float = 4.0
    weight_oz: float = 32.0


@dataclass(frozen=True)
class ReturnAddress:
    """Where returns go: the warehouse, with a name and phone as carriers require."""

    name: str
    address: Address
    phone: str = ""
    company: str = ""


def _easypost_address(name: str, address: Address, phone: str = "", company: str = "") -> dict:
    fields = {
        "name": name,
        "company": company,
        "street1": address.line1,
        "street2": address.line2,
        "city": address.city,
        "state": address.region,
        "zip": address.postal_code,
        "country": address.country,
        "phone": phone,
    }
    return {k: v for k, v in fields.items() if v}


class EasyPostLabels:
    """`LabelMaker` that buys a prepaid return label from EasyPost; call `create_all()` once.

    `carrier` and `service` pick the rate (e.g. "USPS", "GroundAdvantage"); without them the
    cheapest rate is bought.
    """

    def __init__(
        self,
        api_key: str,
        engine: Engine,
        return_to: ReturnAddress,
        *,
        parcel: Parcel = Parcel(),
        carrier: str | None = None,
        service: str | None = None,
        base_url: str = "https://api.easypost.com/v2",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.return_to = return_to
        self.parcel = parcel
        self.carrier = carrier
        self.service = service
        self._clock = clock
        self.http = ProviderHttp(
            "EasyPost",
            base_url,
            auth=(api_key, ""),
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
        """Close the connection pool."""
        await self.http.aclose()

    async def make(
        self, rma: ReturnAuthorization, order: Order, customer: Customer | None
    ) -> Label:
        """The prepaid return label of `rma`, bought once however often it is asked for."""
        row = await asyncio.to_thread(self._row, rma.rma)
        if row is not None and row["label_url"]:
            return _label(row)
        shipment_id = row["shipment_id"] if row else None
        if shipment_id:
            shipment = await self._get(f"/shipments/{shipment_id}")
            if _has_label(shipment):
                return await self._store_label(rma.rma, shipment)
        else:
            shipment = await self._create_shipment(rma, order, customer)
            await asyncio.to_thread(self._store_shipment, rma.rma, shipment["id"])
        rate = self._pick_rate(shipment.get("rates") or [])
        bought = await self._buy(shipment["id"], rate["id"])
        return await self._store_label(rma.rma, bought)

    async def check(self) -> None:
        """A cheap authenticated call (list one shipment); raises ProviderError on failure."""
        await self._get("/shipments", params={"page_size": 1})

    # -- EasyPost calls --------------------------------------------------------------------

    async def _create_shipment(
        self, rma: ReturnAuthorization, order: Order, customer: Customer | None
    ) -> dict[str, Any]:
        if order.shipping_address is None:
            raise ProviderError(
                f"order {order.number} has no shipping address to collect the return from",
                code="no_address",
            )
        shipment = {
            "is_return": True,
            "reference": rma.rma,
            # The customer as the original recipient; is_return makes the label go the other way.
            "to_address": _easypost_address(
                customer.name if customer else "Customer",
                order.shipping_address,
                phone=customer.phone if customer else "",
            ),
            "from_address": _easypost_address(
                self.return_to.name,
                self.return_to.address,
                phone=self.return_to.phone,
                company=self.return_to.company,
            ),
            "parcel": {
                "length": self.parcel.length_in,
                "width": self.parcel.width_in,
                "height": self.parcel.height_in,
                "weight": self.parcel.weight_oz,
            },
            "options": {"label_format": "PDF", "print_custom_1": f"RMA {rma.rma}"},
        }
        # Creating a shipment buys nothing: a repeat leaves an unused draft at worst.
        response = await self.http.request(
            "POST", "/shipments", json={"shipment": shipment}, safe=True
        )
        return self._json(response)

    async def _buy(self, shipment_id: str, rate_id: str) -> dict[str, Any]:
        response = await self.http.request(
            "POST", f"/shipments/{shipment_id}/buy", json={"rate": {"id": rate_id}}, safe=False
        )
        return self._json(response)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._json(await self.http.request("GET", path, params=params, safe=True))

    def _pick_rate(self, rates: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        wanted = [
            r
            for r in rates
            if (not self.carrier or (r.get("carrier") or "").lower() == self.carrier.lower())
            and (not self.service or (r.get("service") or "").lower() == self.service.lower())
        ]
        if not wanted:
            raise ProviderError(
                "EasyPost offered no rate for this return"
                + (f" with {self.carrier} {self.service or ''}".rstrip() if self.carrier else ""),
                code="no_rate",
            )
        return min(wanted, key=lambda r: Decimal(str(r.get("rate") or "0")))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code < 300:
            return response.json()
        if response.status_code in (401, 403):
            raise ProviderError("EasyPost refused our API key", code="auth")
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        code = str(error.get("code") or f"http_{response.status_code}").lower()
        raise ProviderError(f"EasyPost: {error.get('message') or response.text[:200]}", code=code)

    # -- the ledger ------------------------------------------------------------------------

    async def _store_label(self, rma: str, shipment: Mapping[str, Any]) -> Label:
        if not _has_label(shipment):
            raise ProviderError("EasyPost bought no label", code="no_label", retryable=True)
        rate = shipment.get("selected_rate") or {}
        values = {
            "shipment_id": shipment.get("id"),
            "carrier": carrier_name(rate.get("carrier") or ""),
            "tracking_number": shipment.get("tracking_code") or "",
            "label_url": shipment["postage_label"]["label_url"],
        }
        row = await asyncio.to_thread(self._upsert, rma, values)
        return _label(row)

    def _row(self, rma: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = (
                conn.execute(
                    select(easypost_return_labels).where(easypost_return_labels.c.rma == rma)
                )
                .mappings()
                .first()
            )
        return dict(found) if found else None

    def _store_shipment(self, rma: str, shipment_id: str) -> None:
        self._upsert(rma, {"shipment_id": shipment_id})

    def _upsert(self, rma: str, values: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        with self.engine.begin() as conn:
            changed = conn.execute(
                easypost_return_labels.update()
                .where(easypost_return_labels.c.rma == rma)
                .values(updated_at=now, **values)
            ).rowcount
            if not changed:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            easypost_return_labels.insert().values(
                                rma=rma, created_at=now, updated_at=now, **values
                            )
                        )
                except IntegrityError:
                    conn.execute(
                        easypost_return_labels.update()
                        .where(easypost_return_labels.c.rma == rma)
                        .values(updated_at=now, **values)
                    )
        found = self._row(rma)
        assert found is not None
        return found


def _has_label(shipment: Mapping[str, Any]) -> bool:
    return bool((shipment.get("postage_label") or {}).get("label_url"))


def _label(row: Mapping[str, Any]) -> Label:
    return Label(
        url=row["label_url"],
        carrier=row["carrier"] or "",
        tracking_number=row["tracking_number"] or "",
        expires_at=None,
    )
