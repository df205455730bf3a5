"""Shopify as the agent's `OrderSource`, over the Admin GraphQL API.

One endpoint, `POST https://{shop}.myshopify.com/admin/api/{version}/graphql.json`, with the
app's `X-Shopify-Access-Token`. Queries are reads and are retried under the shared policy
(`integrations.http`), including Shopify's `THROTTLED` answer; the address mutation is not
retried unless the request never left (setting the same address twice would be harmless, but a
mutation is a mutation).

Mapping into our models:
- customer: `phone` (E.164), `email`, the default address's ZIP; the numeric id of its GID;
- order: `name` without "#" is the number; line items keep their numeric id as `line_id`,
  `productType` (lower-case) as the category, the product tag `final-sale` (or "final sale")
  as final sale; the latest fulfillment's first tracking info gives carrier and number;
- fulfillment state: cancelled, refunded (financial status), returned (return status),
  fulfilled, else unfulfilled;
- payment: the first successful sale or capture: card brand and last four as said to a caller,
  and its payment id as `payment_ref`;
- refunds already made in Shopify are read back as `Refund`s (`refunds_of`).

`ShopifyOrderFeed` is the outbound scheduler's `OrderFeed` over the same client: shipped orders
of the last `lookback_days`, page by page, sorted out by their fulfillments (delivered: a
DELIVERED fulfillment's `deliveredAt`; in flight: the latest tracked one not delivered).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from integrations import phones
from integrations.clock import Clock, utc_now
from integrations.http import (
    DEFAULT_POLICY,
    DEFAULT_TIMEOUT,
    ProviderHttp,
    RetryPolicy,
    Sleep,
    with_retries,
)
from integrations.models import Address, Customer, Order, OrderLine, Refund
from integrations.protocols import ProviderError

__all__ = ["ShopifyOrderFeed", "ShopifyOrders", "shopify_search_value"]

_CUSTOMER_FIELDS = """
  id displayName firstName lastName email phone
  defaultAddress { zip }
"""

_ORDER_FIELDS = """
  id name createdAt cancelledAt
  displayFinancialStatus displayFulfillmentStatus returnStatus
  customer { id }
  shippingAddress { address1 address2 city provinceCode zip countryCodeV2 }
  lineItems(first: 50) {
    nodes {
      id sku name title quantity variantTitle
      originalUnitPriceSet { shopMoney { amount currencyCode } }
      product { productType tags }
    }
  }
  fulfillments(first: 10) {
    createdAt deliveredAt status displayStatus
    trackingInfo(first: 1) { company number url }
  }
  transactions(first: 10) {
    kind status gateway paymentId
    paymentDetails { ... on CardPaymentDetails { company number } }
  }
  refunds(first: 20) {
    id createdAt
    totalRefundedSet { shopMoney { amount currencyCode } }
    refundLineItems(first: 50) {
      nodes { quantity lineItem { id } subtotalSet { shopMoney { amount } } }
    }
  }
"""

CUSTOMERS_QUERY = f"""
query Customers($query: String!) {{
  customers(first: 1, query: $query) {{ nodes {{ {_CUSTOMER_FIELDS} }} }}
}}
"""

CUSTOMER_QUERY = f"""
query Customer($id: ID!) {{
  customer(id: $id) {{ {_CUSTOMER_FIELDS} }}
}}
"""

ORDERS_QUERY = f"""
query Orders($query: String!, $first: Int!) {{
  orders(first: $first, query: $query, sortKey: CREATED_AT, reverse: true) {{
    nodes {{ {_ORDER_FIELDS} }}
  }}
}}
"""

STOCK_QUERY = """
query Stock($query: String!) {
  productVariants(first: 1, query: $query) {
    nodes {
      product {
        variants(first: 100) { nodes { title sku inventoryQuantity } }
      }
    }
  }
}
"""

ADDRESS_MUTATION = """
mutation SetShippingAddress($input: OrderInput!) {
  orderUpdate(input: $input) {
    order { id }
    userErrors { field message }
  }
}
"""

SHOP_QUERY = "query Shop { shop { name } }"

FEED_QUERY = """
query OrderFeed($query: String!, $first: Int!, $after: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      name cancelledAt
      fulfillments(first: 10) {
        createdAt deliveredAt inTransitAt status displayStatus
        trackingInfo(first: 1) { company number }
      }
    }
  }
}
"""

_FINAL_SALE_TAGS = frozenset({"final-sale", "final sale", "finalsale"})


def shopify_search_value(value: str) -> str:
    """`value` quoted for Shopify's search syntax (`phone:"+1415…"`)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _numeric_id(gid: str | None) -> str:
    return (gid or "").rsplit("/", 1)[-1]


def _gid(kind: str, value: str) -> str:
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


def _cents(money: Mapping[str, Any] | None) -> int:
    amount = ((money or {}).get("shopMoney") or {}).get("amount") or "0"
    return int((Decimal(str(amount)) * 100).to_integral_value())


def _when(raw: str | None) -> datetime | None:
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


class ShopifyOrders:
    """`OrderSource` over a Shopify store's Admin GraphQL API."""

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        api_version: str = "2025-01",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        normalize_phone: Callable[[str], str | None] | None = None,
    ) -> None:
        domain = shop_domain.strip().removeprefix("https://").rstrip("/")
        if "." not in domain:
            domain = f"{domain}.myshopify.com"
        self.shop_domain = domain
        self.http = ProviderHttp(
            "Shopify",
            f"https://{domain}/admin/api/{api_version}",
            headers={"X-Shopify-Access-Token": access_token, "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
            policy=policy,
            sleep=sleep,
            rand=rand,
        )
        self._normalize_phone = normalize_phone or phones.normalize_phone
        self._sleep = sleep
        self._rand = rand

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    # -- OrderSource -----------------------------------------------------------------------

    async def customer_by_phone(self, phone: str) -> Customer | None:
        """The customer whose phone is this number, written any common way."""
        e164 = self._normalize_phone(phone)
        if e164 is None:
            return None
        return await self._one_customer(f"phone:{shopify_search_value(e164)}")

    async def customer_by_email(self, email: str) -> Customer | None:
        """The customer with this email address."""
        wanted = email.strip().lower()
        if not wanted:
            return None
        return await self._one_customer(f"email:{shopify_search_value(wanted)}")

    async def customer(self, customer_id: str) -> Customer | None:
        """The customer with this id (numeric or GID)."""
        data = await self._query(CUSTOMER_QUERY, {"id": _gid("Customer", customer_id)})
        node = data.get("customer")
        return _customer(node) if node else None

    async def orders_of(self, customer_id: str) -> list[Order]:
        """The customer's latest orders, newest first."""
        query = f"customer_id:{_numeric_id(customer_id)}"
        data = await self._query(ORDERS_QUERY, {"query": query, "first": 20})
        return [_order(node) for node in data["orders"]["nodes"]]

    async def order(self, number: str) -> Order | None:
        """The order with this number ("1001" or "#1001"), or None."""
        node = await self._order_node(number)
        return _order(node) if node else None

    async def stock(self, sku: str) -> dict[str, int]:
        """Units in stock per variant title of the product that has this SKU."""
        data = await self._query(STOCK_QUERY, {"query": f"sku:{shopify_search_value(sku)}"})
        nodes = data["productVariants"]["nodes"]
        if not nodes:
            return {}
        variants = nodes[0]["product"]["variants"]["nodes"]
        return {v["title"]: max(0, int(v.get("inventoryQuantity") or 0)) for v in variants}

    async def update_shipping_address(
        self, number: str, address: Address, *, idempotency_key: str
    ) -> Order:
        """Change where an unshipped order goes; refuses once it has shipped."""
        node = await self._order_node(number)
        if node is None:
            raise ProviderError(f"no order {number}", code="not_found")
        current = _order(node)
        if current.fulfillment != "unfulfilled" or current.tracking_number:
            raise ProviderError(
                f"order {number} has already shipped", code="already_shipped", retryable=False
            )
        variables = {
            "input": {
                "id": node["id"],
                "shippingAddress": {
                    "address1": address.line1,
                    "address2": address.line2 or None,
                    "city": address.city,
                    "provinceCode": address.region,
                    "zip": address.postal_code,
                    "countryCode": address.country,
                },
            }
        }
        data = await self._query(ADDRESS_MUTATION, variables, safe=False)
        errors = data["orderUpdate"]["userErrors"]
        if errors:
            raise ProviderError(
                "Shopify refused the address: " + "; ".join(e["message"] for e in errors),
                code="invalid_address",
            )
        updated = await self.order(number)
        assert updated is not None
        return updated

    # -- beyond the protocol ---------------------------------------------------------------

    async def refunds_of(self, order_number: str) -> list[Refund]:
        """Refunds already recorded in Shopify for this order, one per refunded line."""
        node = await self._order_node(order_number)
        return _refunds(node["name"].lstrip("#"), node) if node else []

    async def shop_name(self) -> str:
        """The store's name: the cheapest authenticated call, used by `doctor`."""
        data = await self._query(SHOP_QUERY, {})
        return data["shop"]["name"]

    # -- transport -------------------------------------------------------------------------

    async def _order_node(self, number: str) -> dict[str, Any] | None:
        key = number.strip().lstrip("#").strip()
        if not key:
            return None
        query = f"name:{shopify_search_value('#' + key)}"
        data = await self._query(ORDERS_QUERY, {"query": query, "first": 5})
        # Shopify's name search is a prefix search: "#100" would also match "#1001".
        for node in data["orders"]["nodes"]:
            if (node.get("name") or "").lstrip("#") == key:
                return node
        return None

    async def _one_customer(self, query: str) -> Customer | None:
        data = await self._query(CUSTOMERS_QUERY, {"query": query})
        nodes = data["customers"]["nodes"]
        return _customer(nodes[0]) if nodes else None

    async def _query(
        self, query: str, variables: Mapping[str, Any], *, safe: bool = True
    ) -> dict[str, Any]:
        if not safe:
            return await self._query_once(query, variables, safe=False)
        # Shopify says THROTTLED in a 200 answer's errors, which the HTTP layer cannot see.
        return await with_retries(
            lambda: self._query_once(query, variables, safe=True),
            retryable=lambda exc: isinstance(exc, ProviderError) and exc.code == "rate_limited",
            policy=self.http.policy,
            sleep=self._sleep,
            rand=self._rand,
            what="Shopify query",
        )

    async def _query_once(
        self, query: str, variables: Mapping[str, Any], *, safe: bool
    ) -> dict[str, Any]:
        body = {"query": query, "variables": dict(variables)}
        response = await self.http.request("POST", "/graphql.json", json=body, safe=safe)
        if response.status_code in (401, 403):
            raise ProviderError(
                "Shopify refused the access token (check the app's token and scopes)",
                code="auth",
            )
        if response.status_code == 404:
            raise ProviderError("no such Shopify store or API version", code="not_found")
        if response.status_code >= 300:
            raise ProviderError(
                f"Shopify answered HTTP {response.status_code}",
                code=f"http_{response.status_code}",
            )
        payload = response.json()
        errors = payload.get("errors")
        if errors:
            raise _graphql_error(errors)
        return payload["data"]


def _graphql_error(errors: Any) -> ProviderError:
    if isinstance(errors, str):
        return ProviderError(f"Shopify: {errors}", code="error")
    codes = {((e.get("extensions") or {}).get("code") or "") for e in errors}
    message = "; ".join(e.get("message", "") for e in errors)
    if "THROTTLED" in codes:
        return ProviderError(f"Shopify: {message}", code="rate_limited", retryable=True)
    if "ACCESS_DENIED" in codes:
        return ProviderError(f"Shopify: {message}", code="auth")
    return ProviderError(f"Shopify: {message}", code="graphql_error")


class ShopifyOrderFeed:
    """`OrderFeed` over a Shopify store: which orders were delivered in a window, which are on
    their way. Shares the `ShopifyOrders` client, its timeouts and retries (closing that client
    closes this feed's connections too).

    Only orders created in the last `lookback_days` before the window are read: Shopify shows
    an app 60 days of orders without the `read_all_orders` scope, and an order shipped long
    ago whose carrier never reported delivery must not count as in flight forever (the
    scheduler would tell its customer the parcel is lost). The window is by creation date
    because Shopify does not always bump `updated_at` when a fulfillment's status changes.
    """

    def __init__(
        self,
        orders: ShopifyOrders,
        *,
        lookback_days: int = 60,
        page_size: int = 50,
        max_pages: int = 40,
        clock: Clock = utc_now,
    ) -> None:
        self.orders = orders
        self.lookback = timedelta(days=lookback_days)
        self.page_size = page_size
        self.max_pages = max_pages
        self.clock = clock

    async def delivered_between(self, start: datetime, end: datetime) -> list[str]:
        """Numbers of orders with a fulfillment delivered in [start, end)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        found: set[str] = set()
        async for node in self._shipped_since(start - self.lookback):
            for fulfillment in _live_fulfillments(node):
                delivered = _when(fulfillment.get("deliveredAt"))
                if (
                    fulfillment.get("displayStatus") == "DELIVERED"
                    and delivered is not None
                    and start <= delivered < end
                ):
                    found.add(node["name"].lstrip("#"))
        return sorted(found)

    async def in_flight(self) -> list[str]:
        """Numbers of orders whose latest tracked shipment is not delivered yet."""
        found: set[str] = set()
        async for node in self._shipped_since(self.clock().astimezone(UTC) - self.lookback):
            # The same shipment `ShopifyOrders.order` reports, so tracking follows that one.
            tracked = [f for f in _live_fulfillments(node) if f.get("trackingInfo")]
            if not tracked:
                continue
            latest = tracked[-1]
            if latest.get("displayStatus") != "DELIVERED" and not latest.get("deliveredAt"):
                found.add(node["name"].lstrip("#"))
        return sorted(found)

    async def _shipped_since(self, since: datetime) -> AsyncIterator[dict[str, Any]]:
        query = (
            "(fulfillment_status:shipped OR fulfillment_status:partial) "
            f"created_at:>='{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        )
        after: str | None = None
        for _ in range(self.max_pages):
            variables = {"query": query, "first": self.page_size, "after": after}
            page = (await self.orders._query(FEED_QUERY, variables))["orders"]
            for node in page["nodes"]:
                if not node.get("cancelledAt"):
                    yield node
            info = page.get("pageInfo") or {}
            after = info.get("endCursor")
            if not info.get("hasNextPage") or not after:
                return
        raise ProviderError(
            f"Shopify: more than {self.max_pages * self.page_size} shipped orders in the window",
            code="too_many_orders",
        )


def _live_fulfillments(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The order's fulfillments that were not cancelled, oldest first."""
    fulfillments = sorted(node.get("fulfillments") or [], key=lambda f: f.get("createdAt") or "")
    return [f for f in fulfillments if f.get("status") != "CANCELLED"]


def _customer(node: Mapping[str, Any]) -> Customer:
    name = node.get("displayName") or " ".join(
        p for p in (node.get("firstName"), node.get("lastName")) if p
    )
    return Customer(
        id=_numeric_id(node["id"]),
        name=name,
        phone=node.get("phone") or "",
        email=(node.get("email") or "").lower(),
        zip=((node.get("defaultAddress") or {}).get("zip") or ""),
    )


def _order(node: Mapping[str, Any]) -> Order:
    lines = tuple(_line(item) for item in node["lineItems"]["nodes"])
    fulfillments = sorted(node.get("fulfillments") or [], key=lambda f: f.get("createdAt") or "")
    shipped = next(
        (
            f
            for f in reversed(fulfillments)
            if f.get("trackingInfo") and f.get("status") != "CANCELLED"
        ),
        None,
    )
    tracking = (shipped or {}).get("trackingInfo") or [{}]
    payment = _payment(node.get("transactions") or [])
    address = node.get("shippingAddress")
    return Order(
        number=(node.get("name") or "").lstrip("#"),
        customer_id=_numeric_id((node.get("customer") or {}).get("id")),
        placed_at=_when(node["createdAt"]) or datetime.now(UTC),
        lines=lines,
        fulfillment=_fulfillment(node),
        carrier=tracking[0].get("company") or None,
        tracking_number=tracking[0].get("number") or None,
        shipped_at=_when((shipped or {}).get("createdAt")),
        delivered_at=_when((shipped or {}).get("deliveredAt")),
        shipping_address=Address(
            line1=address.get("address1") or "",
            line2=address.get("address2") or "",
            city=address.get("city") or "",
            region=address.get("provinceCode") or "",
            postal_code=address.get("zip") or "",
            country=address.get("countryCodeV2") or "US",
        )
        if address
        else None,
        payment_method=payment[0],
        payment_ref=payment[1],
    )


def _line(item: Mapping[str, Any]) -> OrderLine:
    product = item.get("product") or {}
    tags = {t.lower() for t in product.get("tags") or []}
    return OrderLine(
        sku=item.get("sku") or "",
        name=item.get("title") or item.get("name") or "",
        category=(product.get("productType") or "").lower(),
        price_cents=_cents(item.get("originalUnitPriceSet")),
        quantity=int(item.get("quantity") or 1),
        final_sale=bool(tags & _FINAL_SALE_TAGS),
        variant=item.get("variantTitle") or None,
        line_id=_numeric_id(item.get("id")),
    )


def _fulfillment(node: Mapping[str, Any]) -> str:
    if node.get("cancelledAt"):
        return "cancelled"
    if node.get("displayFinancialStatus") == "REFUNDED":
        return "refunded"
    if node.get("returnStatus") in ("RETURNED", "IN_PROGRESS"):
        return "returned"
    if node.get("displayFulfillmentStatus") in ("FULFILLED", "PARTIALLY_FULFILLED"):
        return "fulfilled"
    return "unfulfilled"


def _payment(transactions: list[Mapping[str, Any]]) -> tuple[str, str | None]:
    for t in transactions:
        if t.get("kind") in ("SALE", "CAPTURE") and t.get("status") == "SUCCESS":
            card = t.get("paymentDetails") or {}
            brand = card.get("company") or ""
            last4 = re.sub(r"\D", "", card.get("number") or "")[-4:]
            said = f"your {brand} ending in {last4}" if brand and last4 else ""
            return said, t.get("paymentId") or None
    return "", None


def _refunds(number: str, node: Mapping[str, Any]) -> list[Refund]:
    found = []
    for refund in node.get("refunds") or []:
        created = _when(refund.get("createdAt")) or datetime.now(UTC)
        for item in refund["refundLineItems"]["nodes"]:
            found.append(
                Refund(
                    id=_numeric_id(refund["id"]),
                    order_number=number,
                    line_id=_numeric_id(item["lineItem"]["id"]),
                    amount_cents=_cents(item.get("subtotalSet")),
                    status="succeeded",
                    created_at=created,
                )
            )
    return found
