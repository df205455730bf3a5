"""A small shop behind the integration protocols, on a fixed clock, for dialog unit tests.

The demo shop's customers and orders (docs/DESIGN.md), held in memory: every protocol the agent
reaches (orders, tracking, coupons, returns, refunds, SMS, helpdesk, deliveries, events), each
recording what it was asked and able to fail on demand. No code of ours is faked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dialog.agent import Agent
from dialog.events import CallInfo, Event, Hints, Say, Transfer
from integrations.models import (
    Address,
    Coupon,
    CouponCheck,
    Customer,
    Label,
    Order,
    OrderLine,
    Refund,
    ReturnAuthorization,
    Shipment,
    ShipmentStatus,
    Ticket,
    TrackingEvent,
)
from integrations.protocols import ProviderError, Services

NOW = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()
SHOP = "Acme Goods"
HUMAN = "+18005550199"
MARIA = "+14155550101"
JAMES = "+14155550102"
AISHA = "+14155550103"
TOM = "+14155550104"
LENA = "+14155550105"
OMAR = "+14155550106"
STRANGER = "+14155550999"
S = ShipmentStatus


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


CUSTOMERS = [
    Customer("c1", "Maria Lopez", MARIA, "maria.lopez@example.com", "94110"),
    Customer("c2", "James Chen", JAMES, "james.chen@example.com", "10001"),
    Customer("c3", "Aisha Patel", AISHA, "aisha.patel@example.com", "60614"),
    Customer("c4", "Tom Becker", TOM, "tom.becker@example.com", "73301"),
    Customer("c5", "Lena Novak", LENA, "lena.novak@example.com", "02139"),
    Customer("c6", "Omar Haddad", OMAR, "omar.haddad@example.com", "98101"),
]
ZIPS = {c.id: c.zip for c in CUSTOMERS}
CARDS = {
    "c1": "your Visa ending in 4242",
    "c2": "your Mastercard ending in 4444",
    "c3": "your American Express ending in 8431",
    "c4": "your Visa ending in 1881",
    "c5": "your Discover ending in 1117",
    "c6": "your Mastercard ending in 5100",
}


def _order(
    number: str,
    customer: str,
    name: str,
    category: str,
    cents: int,
    *,
    placed: float,
    fulfillment: str = "fulfilled",
    carrier: str | None = None,
    shipped: float | None = None,
    delivered: float | None = None,
    final_sale: bool = False,
    variant: str | None = None,
) -> Order:
    line = OrderLine(
        sku=f"SKU-{number}",
        name=name,
        category=category,
        price_cents=cents,
        final_sale=final_sale,
        variant=variant,
        line_id=f"{number}-1",
    )
    return Order(
        number=number,
        customer_id=customer,
        placed_at=ago(placed),
        lines=(line,),
        fulfillment=fulfillment,
        carrier=carrier,
        tracking_number=f"TRK{number}" if carrier else None,
        shipped_at=ago(shipped) if shipped is not None else None,
        delivered_at=ago(delivered) if delivered is not None else None,
        shipping_address=Address("1 Main St", "Springfield", "ST", ZIPS[customer]),
        payment_method=CARDS[customer],
        payment_ref=f"pi_{number}",
    )


def orders() -> list[Order]:
    """The twelve demo orders, as of NOW."""
    return [
        _order("1001", "c1", "Linen shirt", "apparel", 4800, placed=5, carrier="UPS", shipped=4),
        _order(
            "1002", "c1", "Trail running shoes", "apparel", 12000,
            placed=40, carrier="USPS", shipped=39, delivered=35,
        ),
        _order(
            "1003", "c2", "Wireless earbuds", "electronics", 8900,
            placed=12, carrier="FedEx", shipped=11, delivered=8,
        ),
        _order(
            "1004", "c2", "Clearance rain jacket", "apparel", 3000,
            placed=10, carrier="UPS", shipped=9, delivered=6, final_sale=True,
        ),
        _order(
            "1005", "c3", "Wool sweater", "apparel", 6500,
            placed=9, carrier="USPS", shipped=7, delivered=3, variant="M",
        ),
        _order("1006", "c3", "Desk lamp", "home", 4000, placed=8, carrier="FedEx", shipped=6),
        _order(
            "1007", "c4", "Espresso machine", "home", 49900, placed=20, carrier="UPS", shipped=18
        ),
        _order("1008", "c4", "Coffee grinder", "home", 15000, placed=6, carrier="USPS", shipped=5),
        _order(
            "1009", "c5", "Ceramic vase", "home", 5500,
            placed=7, carrier="UPS", shipped=5, delivered=1,
        ),
        _order("1010", "c5", "Yoga mat", "home", 3500, placed=1, fulfillment="unfulfilled"),
        _order(
            "1011", "c6", "Laptop stand", "electronics", 8000,
            placed=25, carrier="FedEx", shipped=24, delivered=21, fulfillment="refunded",
        ),
        _order(
            "1012", "c6", "Studio headphones", "electronics", 25000,
            placed=15, carrier="UPS", shipped=14, delivered=11,
        ),
    ]  # fmt: skip


def _scan(days: float, status: ShipmentStatus, text: str = "", where: str = "") -> TrackingEvent:
    return TrackingEvent(
        at=ago(days), status=status, description=text or status.value, location=where
    )


def shipments() -> dict[str, Shipment]:
    """Carrier tracking by tracking number."""

    def ship(number, carrier, status, *scans, detail="", eta=None) -> Shipment:
        return Shipment(
            carrier=carrier,
            tracking_number=f"TRK{number}",
            status=status,
            detail=detail or status.value,
            fetched_at=NOW,
            eta=eta,
            events=scans,
            tracking_url=f"https://track.example.com/{carrier.lower()}/TRK{number}",
        )

    found = [
        ship("1001", "UPS", S.IN_TRANSIT, _scan(1, S.IN_TRANSIT), eta=TODAY + timedelta(1)),
        ship("1002", "USPS", S.DELIVERED, _scan(35, S.DELIVERED)),
        ship("1003", "FedEx", S.DELIVERED, _scan(8, S.DELIVERED)),
        ship("1004", "UPS", S.DELIVERED, _scan(6, S.DELIVERED)),
        ship("1005", "USPS", S.DELIVERED, _scan(3, S.DELIVERED)),
        ship(
            "1006", "FedEx", S.FAILED_ATTEMPT, _scan(1, S.FAILED_ATTEMPT),
            detail="Delivery attempted: customer not available", eta=TODAY + timedelta(1),
        ),
        ship("1007", "UPS", S.IN_TRANSIT, _scan(18, S.PRE_TRANSIT), _scan(9, S.IN_TRANSIT)),
        ship(
            "1008", "USPS", S.DELAYED, _scan(4, S.IN_TRANSIT), _scan(2, S.DELAYED),
            detail="Held at customs",
        ),
        ship("1009", "UPS", S.DELIVERED, _scan(1, S.DELIVERED)),
        ship("1011", "FedEx", S.DELIVERED, _scan(21, S.DELIVERED)),
        ship("1012", "UPS", S.DELIVERED, _scan(11, S.DELIVERED)),
        ship("R1012", "UPS", S.IN_TRANSIT, _scan(2, S.PRE_TRANSIT), _scan(1, S.IN_TRANSIT)),
    ]  # fmt: skip
    return {s.tracking_number: s for s in found}


class Recorder:
    """Base of the fakes: what each was asked, and a switch to make it fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise ConnectionError(f"{type(self).__name__} is down")


class FakeOrders(Recorder):
    """`OrderSource` over the demo orders."""

    def __init__(self) -> None:
        super().__init__()
        self.orders = {o.number: o for o in orders()}
        self.stocks = {"SKU-1005": {"S": 4, "M": 2, "L": 3, "XL": 0}}
        self.addresses: list[tuple[str, Address]] = []

    async def customer_by_phone(self, phone: str) -> Customer | None:
        self._call(f"customer_by_phone {phone}")
        return next((c for c in CUSTOMERS if c.phone == phone), None)

    async def customer_by_email(self, email: str) -> Customer | None:
        self._call(f"customer_by_email {email}")
        return next((c for c in CUSTOMERS if c.email == email.lower()), None)

    async def customer(self, customer_id: str) -> Customer | None:
        self._call(f"customer {customer_id}")
        return next((c for c in CUSTOMERS if c.id == customer_id), None)

    async def orders_of(self, customer_id: str) -> list[Order]:
        self._call(f"orders_of {customer_id}")
        found = [o for o in self.orders.values() if o.customer_id == customer_id]
        return sorted(found, key=lambda o: o.placed_at, reverse=True)

    async def order(self, number: str) -> Order | None:
        self._call(f"order {number}")
        return self.orders.get(number)

    async def stock(self, sku: str) -> dict[str, int]:
        self._call(f"stock {sku}")
        return dict(self.stocks.get(sku, {}))

    async def update_shipping_address(
        self, number: str, address: Address, *, idempotency_key: str
    ) -> Order:
        self._call(f"update_shipping_address {number}")
        order = self.orders[number]
        if order.fulfillment != "unfulfilled":
            raise ProviderError("already shipped", code="already_shipped")
        self.addresses.append((number, address))
        self.orders[number] = replace(order, shipping_address=address)
        return self.orders[number]


class FakeTracking(Recorder):
    """`Tracking` over recorded scans."""

    def __init__(self) -> None:
        super().__init__()
        self.shipments = shipments()

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        self._call(f"track {tracking_number}")
        return self.shipments.get(tracking_number)


class FakeMessenger(Recorder):
    """`Messenger` keeping texts; the same key twice sends once."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, str]] = []

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        self._call(f"send_sms {to}")
        for i, sms in enumerate(self.sent):
            if sms["idempotency_key"] == idempotency_key:
                return f"SM{i + 1}"
        self.sent.append({"to": to, "body": body, "idempotency_key": idempotency_key})
        return f"SM{len(self.sent)}"


class FakeEvents:
    """`EventSink` keeping what was recorded."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        self.recorded.append({"type": type, "order": order, **data})

    def types(self) -> list[str]:
        return [e["type"] for e in self.recorded]

    def of(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.recorded if e["type"] == type]


COUPONS = {
    "SAVE20": Coupon("SAVE20", "percent", 20, min_subtotal_cents=5000),
    "WELCOME10": Coupon("WELCOME10", "percent", 10, first_order_only=True),
    "SUMMER15": Coupon("SUMMER15", "percent", 15, expires_at=ago(20)),
    "FREESHIP": Coupon("FREESHIP", "free_shipping", 0, min_subtotal_cents=3500),
    "VIP50": Coupon("VIP50", "amount", 5000, single_use=True),
}


class FakeCoupons(Recorder):
    """`Coupons` with the demo codes; Tom (c4) has used VIP50."""

    def __init__(self, orders: FakeOrders) -> None:
        super().__init__()
        self.orders = orders

    async def coupon(self, code: str) -> Coupon | None:
        return COUPONS.get(code.upper())

    async def active_codes(self) -> list[str]:
        self._call("active_codes")
        return sorted(c for c, v in COUPONS.items() if not v.expires_at or v.expires_at > NOW)

    async def check(self, code: str, customer_id: str | None, order: Order | None) -> CouponCheck:
        self._call(f"check {code}")
        coupon = COUPONS.get(code.upper())
        if coupon is None:
            return CouponCheck(code, False, "unknown")
        who = customer_id or (order.customer_id if order else None)
        placed = [o for o in self.orders.orders.values() if o.customer_id == who]
        reason = "ok"
        if coupon.expires_at and coupon.expires_at <= NOW:
            reason = "expired"
        elif coupon.single_use and who == "c4":
            reason = "already_used"
        elif coupon.first_order_only and who and len(placed) > 1:
            reason = "first_order_only"
        elif order is not None and order.total_cents < coupon.min_subtotal_cents:
            reason = "minimum_spend"
        return CouponCheck(code.upper(), reason == "ok", reason, coupon)


class FakeReturns(Recorder):
    """`Returns`: RMAs by idempotency key, a label each, 1012's already on its way back."""

    def __init__(self) -> None:
        super().__init__()
        self.rmas: dict[str, ReturnAuthorization] = {}
        self.keys: dict[str, str] = {}
        label = Label("https://labels.example.com/RMA-1", "UPS", "TRKR1012")
        self.rmas["RMA-1"] = ReturnAuthorization(
            "RMA-1", "1012", ("1012-1",), "not_as_described", "refund", "in_transit", ago(3), label
        )
        self.rmas["RMA-0"] = ReturnAuthorization(
            "RMA-0", "1011", ("1011-1",), "changed_mind", "refund", "refunded", ago(10)
        )

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
        self._call(f"create {order_number} {resolution} {exchange_variant}")
        if idempotency_key in self.keys:
            return self.rmas[self.keys[idempotency_key]]
        if any(set(line_ids) & set(r.line_ids) for r in self.rmas.values()):
            raise ProviderError("already returned", code="already_returned")
        rma = f"RMA-{len(self.rmas) + 1}"
        self.rmas[rma] = ReturnAuthorization(
            rma,
            order_number,
            tuple(line_ids),
            reason_code,
            resolution,
            "authorized",
            NOW,
            exchange_variant=exchange_variant,
        )
        self.keys[idempotency_key] = rma
        return self.rmas[rma]

    async def label(self, rma: str, *, idempotency_key: str) -> Label:
        self._call(f"label {rma}")
        label = Label(f"https://labels.example.com/{rma}", "USPS", f"9400{rma[-1]}")
        self.rmas[rma] = replace(self.rmas[rma], label=label, status="label_sent")
        return label

    async def returns_of(self, order_number: str) -> list[ReturnAuthorization]:
        self._call(f"returns_of {order_number}")
        return [r for r in self.rmas.values() if r.order_number == order_number]

    async def receive(self, rma: str) -> ReturnAuthorization:
        self._call(f"receive {rma}")
        found = self.rmas[rma]
        if found.status in ("authorized", "label_sent", "in_transit"):
            found = replace(found, status="received", received_at=NOW)
            self.rmas[rma] = found
        return found


class FakeRefunds(Recorder):
    """`Refunds`: a ledger with at most one refund per order line (1011's already there)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger: list[Refund] = [
            Refund("re_0", "1011", "1011-1", 8000, "succeeded", ago(2), "original_payment")
        ]

    async def refund(
        self,
        order_number: str,
        line_id: str,
        amount_cents: int,
        *,
        idempotency_key: str,
        reason: str,
    ) -> Refund:
        self._call(f"refund {order_number} {line_id} {amount_cents}")
        if any(r.order_number == order_number and r.line_id == line_id for r in self.ledger):
            raise ProviderError("already refunded", code="charge_already_refunded")
        refund = Refund(
            f"re_{len(self.ledger)}", order_number, line_id, amount_cents, "succeeded", NOW
        )
        self.ledger.append(refund)
        return refund

    async def refunds_of(self, order_number: str) -> list[Refund]:
        self._call(f"refunds_of {order_number}")
        return [r for r in self.ledger if r.order_number == order_number]


class FakeHelpdesk(Recorder):
    """`Helpdesk` filing tickets T-1, T-2, ...; the same key twice files once."""

    def __init__(self) -> None:
        super().__init__()
        self.tickets: list[dict[str, Any]] = []

    async def create_ticket(
        self,
        subject: str,
        body: str,
        *,
        requester_phone: str | None,
        requester_email: str | None,
        tags: list[str],
        priority: str,
        idempotency_key: str,
    ) -> Ticket:
        self._call(f"create_ticket {subject}")
        for t in self.tickets:
            if t["key"] == idempotency_key:
                return Ticket(t["id"], t["subject"])
        ticket = {
            "id": f"T-{len(self.tickets) + 1}",
            "subject": subject,
            "body": body,
            "phone": requester_phone,
            "email": requester_email,
            "tags": tags,
            "priority": priority,
            "key": idempotency_key,
        }
        self.tickets.append(ticket)
        return Ticket(ticket["id"], subject)


class FakeDeliveries(Recorder):
    """`Deliveries` that agree to everything within two weeks."""

    def __init__(self) -> None:
        super().__init__()
        self.rescheduled: list[tuple[str, date]] = []
        self.redirected: list[tuple[str, Address]] = []
        self.claims: list[tuple[str, str]] = []

    async def reschedule(self, order_number: str, day: date, *, idempotency_key: str) -> date:
        self._call(f"reschedule {order_number} {day}")
        self.rescheduled.append((order_number, day))
        return day

    async def redirect(self, order_number: str, address: Address, *, idempotency_key: str) -> str:
        self._call(f"redirect {order_number}")
        self.redirected.append((order_number, address))
        return "RDR-1"

    async def open_claim(self, order_number: str, kind: str, *, idempotency_key: str) -> str:
        self._call(f"open_claim {order_number} {kind}")
        self.claims.append((order_number, kind))
        return f"CLM-{len(self.claims)}"


@dataclass
class Shop:
    """Every fake, and the `Services` bundle over them."""

    orders: FakeOrders = field(default_factory=FakeOrders)
    tracking: FakeTracking = field(default_factory=FakeTracking)
    messenger: FakeMessenger = field(default_factory=FakeMessenger)
    events: FakeEvents = field(default_factory=FakeEvents)
    returns: FakeReturns = field(default_factory=FakeReturns)
    refunds: FakeRefunds = field(default_factory=FakeRefunds)
    helpdesk: FakeHelpdesk = field(default_factory=FakeHelpdesk)
    deliveries: FakeDeliveries = field(default_factory=FakeDeliveries)
    coupons: FakeCoupons | None = None

    def __post_init__(self) -> None:
        if self.coupons is None:
            self.coupons = FakeCoupons(self.orders)

    def services(self, **kw: Any) -> Services:
        return Services(
            orders=self.orders,
            tracking=self.tracking,
            messenger=self.messenger,
            events=self.events,
            shop_name=SHOP,
            coupons=self.coupons,
            returns=self.returns,
            refunds=self.refunds,
            helpdesk=self.helpdesk,
            deliveries=self.deliveries,
            human_number=HUMAN,
            **kw,
        )


@dataclass
class Call:
    """One call under test: the agent, the shop behind it, and what was said."""

    agent: Agent
    shop: Shop

    @property
    def events(self) -> FakeEvents:
        return self.shop.events

    async def start(self) -> list[Event]:
        return [e async for e in self.agent.start()]

    async def hear(self, text: str, confidence: float = 0.9) -> list[Event]:
        return [e async for e in self.agent.hear(text, confidence)]

    async def keypad(self, digits: str) -> list[Event]:
        return [e async for e in self.agent.keypad(digits)]

    async def silence(self, seconds: float = 5.0) -> list[Event]:
        return [e async for e in self.agent.silence(seconds)]

    async def say(self, *lines: str) -> list[Event]:
        """Several caller turns; the events of the last."""
        events: list[Event] = []
        for line in lines:
            events = await self.hear(line)
        return events


def call(
    caller: str = STRANGER,
    *,
    shop: Shop | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    **kw: Any,
) -> Call:
    """A call from `caller`; with direction="outbound", a call we place to them."""
    shop = shop or Shop()
    policy = kw.pop("policy", None)
    flows = kw.pop("flows", None)
    timeout = kw.pop("timeout", 8.0)
    ends = (caller, "+18005550100")
    if kw.get("direction") == "outbound":
        ends = ends[::-1]
    info = CallInfo("CA123", *ends, **kw)
    agent = Agent(flows, shop.services(), info, policy=policy, clock=clock, timeout=timeout)
    return Call(agent, shop)


def said(events: list[Event]) -> str:
    """Everything said, as one string."""
    return " ".join(e.text for e in events if isinstance(e, Say))


def hints(events: list[Event]) -> list[Hints]:
    """The hints among the events."""
    return [e for e in events if isinstance(e, Hints)]


def transferred(events: list[Event]) -> Transfer | None:
    """The transfer among the events, if any."""
    return next((e for e in events if isinstance(e, Transfer)), None)
