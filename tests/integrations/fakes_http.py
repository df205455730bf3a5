"""Fake providers for `httpx.MockTransport`: each plays the provider's documented responses.

The payload shapes follow the providers' API references (Shopify Admin GraphQL, EasyPost
Trackers and Shipments, AfterShip Tracking, Twilio Messages, Zendesk Tickets). Each fake
records the requests it got, so a test can assert what left the machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from harness.target import free_port

__all__ = [
    "FakeAfterShip",
    "FakeEasyPost",
    "FakeShopify",
    "FakeTwilio",
    "FakeZendesk",
    "Flaky",
    "free_port",
    "hanging",
    "localstripe_server",
    "transport",
]


def basic(user: str, password: str) -> str:
    """The `Authorization` header value of HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def transport(handler: Callable[[httpx.Request], Any]) -> httpx.MockTransport:
    """A MockTransport over a fake's handler."""
    return httpx.MockTransport(handler)


@dataclass
class Flaky:
    """Fails the first `failures` requests with `error` (an exception or a status), then
    hands requests to `inner`."""

    inner: Callable[[httpx.Request], Any]
    failures: int
    error: type[Exception] | int = httpx.ConnectError
    retry_after: str | None = None
    seen: int = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen <= self.failures:
            if isinstance(self.error, int):
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return httpx.Response(self.error, json={"error": "busy"}, headers=headers)
            raise self.error("injected failure", request=request)
        answer = self.inner(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer


async def hanging(request: httpx.Request) -> httpx.Response:
    """A provider that never answers."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


# -- Shopify Admin GraphQL ------------------------------------------------------------------


def _money(amount: str) -> dict:
    return {"shopMoney": {"amount": amount, "currencyCode": "USD"}}


def shopify_order(
    number: str,
    customer_id: str,
    *,
    lines: list[dict],
    fulfillment_status: str = "UNFULFILLED",
    financial_status: str = "PAID",
    tracking: tuple[str, str] | None = None,
    created_at: str = "2025-03-01T15:04:05Z",
    refunds: list[dict] | None = None,
    payment_id: str | None = "pi_3Pabc",
) -> dict:
    """An `Order` node as the Admin API returns it for our query."""
    fulfillments = []
    if tracking:
        fulfillments.append(
            {
                "createdAt": "2025-03-02T10:00:00Z",
                "deliveredAt": None,
                "status": "SUCCESS",
                "displayStatus": "IN_TRANSIT",
                "trackingInfo": [
                    {
                        "company": tracking[0],
                        "number": tracking[1],
                        "url": f"https://www.ups.com/track?tracknum={tracking[1]}",
                    }
                ],
            }
        )
    return {
        "id": f"gid://shopify/Order/5{number}",
        "name": f"#{number}",
        "createdAt": created_at,
        "cancelledAt": None,
        "displayFinancialStatus": financial_status,
        "displayFulfillmentStatus": fulfillment_status,
        "returnStatus": "NO_RETURN",
        "customer": {"id": f"gid://shopify/Customer/{customer_id}"},
        "shippingAddress": {
            "address1": "350 Valencia St",
            "address2": None,
            "city": "San Francisco",
            "provinceCode": "CA",
            "zip": "94110",
            "countryCodeV2": "US",
        },
        "lineItems": {"nodes": lines},
        "fulfillments": fulfillments,
        "transactions": [
            {
                "kind": "SALE",
                "status": "SUCCESS",
                "gateway": "shopify_payments",
                "paymentId": payment_id,
                "paymentDetails": {"company": "Visa", "number": "•••• •••• •••• 4242"},
            }
        ],
        "refunds": refunds or [],
    }


def shopify_line(
    line_id: str, title: str, price: str, *, sku: str, product_type: str, tags: list[str] = ()
) -> dict:
    """A `LineItem` node."""
    return {
        "id": f"gid://shopify/LineItem/{line_id}",
        "sku": sku,
        "name": title,
        "title": title,
        "quantity": 1,
        "variantTitle": "M",
        "originalUnitPriceSet": _money(price),
        "product": {"productType": product_type, "tags": list(tags)},
    }


@dataclass
class FakeShopify:
    """The Admin GraphQL endpoint of one store, over an in-memory catalogue."""

    token: str = "shpat_test"
    customers: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    variants: dict[str, list[dict]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    throttle_next: int = 0

    @classmethod
    def with_demo_data(cls) -> FakeShopify:
        """Maria Lopez with a shipped order and a refunded one; James Chen with a final sale."""
        maria = {
            "id": "gid://shopify/Customer/7001",
            "displayName": "Maria Lopez",
            "firstName": "Maria",
            "lastName": "Lopez",
            "email": "Maria.Lopez@example.com",
            "phone": "+14155550101",
            "defaultAddress": {"zip": "94110"},
        }
        james = {
            "id": "gid://shopify/Customer/7002",
            "displayName": "James Chen",
            "firstName": "James",
            "lastName": "Chen",
            "email": "james.chen@example.com",
            "phone": "+14155550102",
            "defaultAddress": {"zip": "10001"},
        }
        shirt = shopify_line("11", "Linen shirt", "48.00", sku="LS-M", product_type="Apparel")
        shoes = shopify_line("12", "Trail shoes", "120.00", sku="TS-9", product_type="Apparel")
        jacket = shopify_line(
            "13", "Rain jacket", "30.00", sku="RJ-L", product_type="Apparel", tags=["Final-Sale"]
        )
        refund = {
            "id": "gid://shopify/Refund/901",
            "createdAt": "2025-02-10T09:00:00Z",
            "totalRefundedSet": _money("120.00"),
            "refundLineItems": {
                "nodes": [
                    {
                        "quantity": 1,
                        "lineItem": {"id": "gid://shopify/LineItem/12"},
                        "subtotalSet": _money("120.00"),
                    }
                ]
            },
        }
        return cls(
            customers=[maria, james],
            orders=[
                shopify_order(
                    "1001",
                    "7001",
                    lines=[shirt],
                    fulfillment_status="FULFILLED",
                    tracking=("UPS", "1Z999AA10123456784"),
                    created_at="2025-03-01T15:04:05Z",
                ),
                shopify_order(
                    "1002",
                    "7001",
                    lines=[shoes],
                    fulfillment_status="FULFILLED",
                    financial_status="REFUNDED",
                    created_at="2025-01-20T15:04:05Z",
                    refunds=[refund],
                ),
                shopify_order("1004", "7002", lines=[jacket]),
            ],
            variants={
                "LS-M": [
                    {"title": "S", "sku": "LS-S", "inventoryQuantity": 4},
                    {"title": "M", "sku": "LS-M", "inventoryQuantity": 0},
                    {"title": "L", "sku": "LS-L", "inventoryQuantity": -2},
                ]
            },
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return httpx.Response(
                401,
                json={
                    "errors": "[API] Invalid API key or access token (unrecognized login or "
                    "wrong password)"
                },
            )
        if not request.url.path.endswith("/graphql.json"):
            return httpx.Response(404, json={"errors": "Not Found"})
        body = json.loads(request.content)
        self.requests.append(body)
        if self.throttle_next:
            self.throttle_next -= 1
            return httpx.Response(
                200,
                json={
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": {"cost": {"requestedQueryCost": 52}},
                },
            )
        operation = re.search(r"(query|mutation)\s+(\w+)", body["query"]).group(2)
        variables = body.get("variables") or {}
        data = getattr(self, f"_{operation.lower()}")(variables)
        return httpx.Response(200, json={"data": data})

    @staticmethod
    def _term(query: str) -> tuple[str, str]:
        field_name, _, value = query.partition(":")
        return field_name, value.strip().strip('"')

    def _customers(self, variables: dict) -> dict:
        key, value = self._term(variables["query"])
        found = [c for c in self.customers if (c.get(key) or "").lower() == value.lower()]
        return {"customers": {"nodes": found[:1]}}

    def _customer(self, variables: dict) -> dict:
        found = [c for c in self.customers if c["id"] == variables["id"]]
        return {"customer": found[0] if found else None}

    def _orders(self, variables: dict) -> dict:
        key, value = self._term(variables["query"])
        if key == "customer_id":
            found = [o for o in self.orders if o["customer"]["id"].endswith(f"/{value}")]
        else:  # name: a prefix search, as Shopify's is
            found = [o for o in self.orders if o["name"].startswith(value)]
        found.sort(key=lambda o: o["createdAt"], reverse=True)
        return {"orders": {"nodes": found[: variables["first"]]}}

    def _stock(self, variables: dict) -> dict:
        _, sku = self._term(variables["query"])
        variants = self.variants.get(sku)
        if variants is None:
            return {"productVariants": {"nodes": []}}
        return {"productVariants": {"nodes": [{"product": {"variants": {"nodes": variants}}}]}}

    def _setshippingaddress(self, variables: dict) -> dict:
        data = variables["input"]
        for order in self.orders:
            if order["id"] == data["id"]:
                new = data["shippingAddress"]
                order["shippingAddress"] = {
                    "address1": new["address1"],
                    "address2": new.get("address2"),
                    "city": new["city"],
                    "provinceCode": new["provinceCode"],
                    "zip": new["zip"],
                    "countryCodeV2": new["countryCode"],
                }
                return {"orderUpdate": {"order": {"id": order["id"]}, "userErrors": []}}
        return {
            "orderUpdate": {
                "order": None,
                "userErrors": [{"field": ["id"], "message": "Order does not exist"}],
            }
        }

    def _shop(self, variables: dict) -> dict:
        return {"shop": {"name": "Northwind Goods"}}


# -- EasyPost -------------------------------------------------------------------------------


def easypost_tracker(
    code: str,
    carrier: str,
    status: str,
    *,
    status_detail: str = "",
    details: list[tuple[str, str, str, str]] = (),
    est_delivery_date: str | None = None,
) -> dict:
    """A Tracker object; `details` are (datetime, status, status_detail, message) scans."""
    return {
        "id": f"trk_{code[-8:].lower()}",
        "object": "Tracker",
        "mode": "test",
        "tracking_code": code,
        "status": status,
        "status_detail": status_detail,
        "signed_by": None,
        "weight": None,
        "est_delivery_date": est_delivery_date,
        "shipment_id": None,
        "carrier": carrier,
        "tracking_details": [
            {
                "object": "TrackingDetail",
                "message": message,
                "description": "",
                "status": scan_status,
                "status_detail": detail,
                "datetime": at,
                "source": carrier,
                "carrier_code": "",
                "tracking_location": {
                    "object": "TrackingLocation",
                    "city": "Oakland",
                    "state": "CA",
                    "country": "US",
                    "zip": "94607",
                },
            }
            for at, scan_status, detail, message in details
        ],
        "carrier_detail": None,
        "public_url": f"https://track.easypost.com/djE6dHJrXz{code[-6:]}",
        "fees": [],
        "created_at": "2025-03-02T10:00:00Z",
        "updated_at": "2025-03-04T08:00:00Z",
    }


@dataclass
class FakeEasyPost:
    """EasyPost's Trackers and return Shipments (create, retrieve, buy)."""

    api_key: str = "EZTK_test"
    trackers: dict[tuple[str, str], dict] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    shipments: dict[str, dict] = field(default_factory=dict)
    purchases: int = 0

    def _authorized(self, request: httpx.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth == basic(self.api_key, "")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._authorized(request):
            return httpx.Response(
                401,
                json={
                    "error": {
                        "code": "APIKEY.INACTIVE",
                        "message": "This api key is no longer active.",
                        "errors": [],
                    }
                },
            )
        path = request.url.path.removeprefix("/v2")
        if path == "/trackers" and request.method == "POST":
            return self._create_tracker(json.loads(request.content)["tracker"])
        if path == "/trackers" and request.method == "GET":
            return httpx.Response(200, json={"trackers": [], "has_more": False})
        if path == "/shipments" and request.method == "POST":
            return self._create_shipment(json.loads(request.content)["shipment"])
        if path == "/shipments" and request.method == "GET":
            return httpx.Response(200, json={"shipments": [], "has_more": False})
        match = re.fullmatch(r"/shipments/(shp_\w+)(/buy)?", path)
        if match and match.group(2) and request.method == "POST":
            return self._buy(match.group(1), json.loads(request.content)["rate"]["id"])
        if match and request.method == "GET":
            return httpx.Response(200, json=self.shipments[match.group(1)])
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": path}})

    def _create_tracker(self, body: dict) -> httpx.Response:
        key = (body.get("carrier", ""), body["tracking_code"])
        tracker = self.trackers.get(key) or next(
            (t for (c, n), t in self.trackers.items() if n == body["tracking_code"] and not key[0]),
            None,
        )
        if tracker is None:
            return httpx.Response(
                422,
                json={
                    "error": {
                        "code": "TRACKER.CARRIER.INVALID",
                        "message": "Unable to determine carrier for this tracking code.",
                        "errors": [],
                    }
                },
            )
        return httpx.Response(200, json=tracker)

    def _create_shipment(self, body: dict) -> httpx.Response:
        shipment_id = f"shp_{len(self.shipments) + 1:04d}"
        shipment = {
            "id": shipment_id,
            "object": "Shipment",
            "mode": "test",
            "reference": body.get("reference"),
            "is_return": body.get("is_return", False),
            "to_address": {"object": "Address", **body["to_address"]},
            "from_address": {"object": "Address", **body["from_address"]},
            "parcel": {"object": "Parcel", **body["parcel"]},
            "rates": [
                {
                    "id": f"rate_{shipment_id}_ups",
                    "object": "Rate",
                    "carrier": "UPS",
                    "service": "Ground",
                    "rate": "11.24",
                    "currency": "USD",
                    "shipment_id": shipment_id,
                },
                {
                    "id": f"rate_{shipment_id}_usps",
                    "object": "Rate",
                    "carrier": "USPS",
                    "service": "GroundAdvantage",
                    "rate": "6.07",
                    "currency": "USD",
                    "shipment_id": shipment_id,
                },
            ],
            "selected_rate": None,
            "postage_label": None,
            "tracking_code": None,
            "messages": [],
        }
        self.shipments[shipment_id] = shipment
        return httpx.Response(201, json=shipment)

    def _buy(self, shipment_id: str, rate_id: str) -> httpx.Response:
        shipment = self.shipments[shipment_id]
        if shipment["postage_label"]:
            return httpx.Response(
                422,
                json={
                    "error": {
                        "code": "SHIPMENT.POSTAGE.EXISTS",
                        "message": "Postage already exists for this shipment.",
                        "errors": [],
                    }
                },
            )
        self.purchases += 1
        rate = next(r for r in shipment["rates"] if r["id"] == rate_id)
        shipment["selected_rate"] = rate
        shipment["tracking_code"] = f"9434600208303{self.purchases:09d}"
        shipment["postage_label"] = {
            "object": "PostageLabel",
            "label_file_type": "application/pdf",
            "label_url": f"https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label/{shipment_id}.pdf",
        }
        return httpx.Response(200, json=shipment)


# -- AfterShip ------------------------------------------------------------------------------


@dataclass
class FakeAfterShip:
    """AfterShip's dated Tracking API: list by number, create."""

    api_key: str = "asat_test"
    trackings: list[dict] = field(default_factory=list)
    created: list[dict] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("as-api-key") != self.api_key:
            return httpx.Response(
                401,
                json={
                    "meta": {
                        "code": 401,
                        "type": "Unauthorized",
                        "message": "Invalid API key.",
                    },
                    "data": {},
                },
            )
        if request.method == "GET":
            numbers = request.url.params.get("tracking_numbers")
            slug = request.url.params.get("slug")
            found = [
                t
                for t in self.trackings
                if (not numbers or t["tracking_number"] == numbers)
                and (not slug or t["slug"] == slug)
            ]
            return httpx.Response(
                200,
                json={
                    "meta": {"code": 200, "message": "OK", "type": "OK"},
                    "data": {
                        "pagination": {"total": len(found), "next_cursor": None},
                        "trackings": found,
                    },
                },
            )
        body = json.loads(request.content)
        tracking = {
            "id": f"as{len(self.created)}",
            "tracking_number": body["tracking_number"],
            "slug": body.get("slug") or "usps",
            "tag": "Pending",
            "subtag": "Pending_001",
            "subtag_message": "No information yet",
            "checkpoints": [],
        }
        self.created.append(tracking)
        return httpx.Response(
            201, json={"meta": {"code": 201, "message": "Created"}, "data": {"tracking": tracking}}
        )


def aftership_tracking(
    number: str,
    slug: str,
    tag: str,
    *,
    subtag_message: str = "",
    checkpoints: list[tuple[str, str, str, str]] = (),
    eta: str | None = None,
) -> dict:
    """An AfterShip tracking; `checkpoints` are (time, tag, message, location)."""
    return {
        "id": f"as-{number[-6:]}",
        "tracking_number": number,
        "slug": slug,
        "tag": tag,
        "subtag": f"{tag}_001",
        "subtag_message": subtag_message or tag,
        "courier_tracking_link": f"https://www.fedex.com/fedextrack/?trknbr={number}",
        "courier_estimated_delivery_date": {
            "estimated_delivery_date": eta,
            "estimated_delivery_date_min": None,
            "estimated_delivery_date_max": None,
        },
        "checkpoints": [
            {
                "checkpoint_time": at,
                "tag": cp_tag,
                "subtag": f"{cp_tag}_001",
                "message": message,
                "location": location,
                "slug": slug,
            }
            for at, cp_tag, message, location in checkpoints
        ],
    }


# -- Twilio ---------------------------------------------------------------------------------


@dataclass
class FakeTwilio:
    """Twilio's 2010-04-01 REST API: Messages (create, list), the Account, and numbers."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "twilio-token"
    voice_url: str = "https://shop.example.com/twilio/voice"
    number: str = "+18005550100"
    messages: list[dict] = field(default_factory=list)
    posts: int = 0
    refuse_with: tuple[int, int, str] | None = None  # (HTTP status, Twilio code, message)
    # WhatsApp: numbers whose 24-hour window is open, and the approved templates by ContentSid
    whatsapp_open: set[str] = field(default_factory=set)
    templates: dict[str, str] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        expected = basic(self.account_sid, self.auth_token)
        if request.headers.get("Authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        base = f"/2010-04-01/Accounts/{self.account_sid}"
        path = request.url.path
        if path == f"{base}.json":
            return httpx.Response(
                200,
                json={
                    "sid": self.account_sid,
                    "friendly_name": "Northwind Goods",
                    "status": "active",
                    "type": "Full",
                    "date_created": "Thu, 01 Feb 2024 10:00:00 +0000",
                    "date_updated": "Thu, 01 Feb 2024 10:00:00 +0000",
                    "owner_account_sid": self.account_sid,
                    "uri": f"{base}.json",
                    "subresource_uris": {},
                },
            )
        if path == f"{base}/IncomingPhoneNumbers.json":
            wanted = request.url.params.get("PhoneNumber")
            numbers = (
                [
                    {
                        "sid": "PN" + "1" * 32,
                        "account_sid": self.account_sid,
                        "phone_number": self.number,
                        "voice_url": self.voice_url,
                        "voice_method": "POST",
                        "sms_url": "",
                        "capabilities": {"voice": True, "sms": True},
                    }
                ]
                if wanted in (None, self.number)
                else []
            )
            return httpx.Response(200, json=self._page(path, "incoming_phone_numbers", numbers))
        if path == f"{base}/Messages.json" and request.method == "POST":
            return self._create(parse_qs(request.content.decode()))
        if path == f"{base}/Messages.json" and request.method == "GET":
            to = request.url.params.get("To")
            sender = request.url.params.get("From")
            found = [
                m
                for m in reversed(self.messages)
                if (not to or m["to"] == to) and (not sender or m["from"] == sender)
            ]
            return httpx.Response(200, json=self._page(path, "messages", found))
        return self._error(404, 20404, "The requested resource was not found")

    def _create(self, form: dict[str, list[str]]) -> httpx.Response:
        self.posts += 1
        if self.refuse_with:
            status, code, message = self.refuse_with
            return self._error(status, code, message)
        to, sender = form["To"][0], form["From"][0]
        if to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
            return self._error(400, 21910, "Invalid From and To pair")
        if "ContentSid" in form:
            template = self.templates.get(form["ContentSid"][0])
            if template is None:
                return self._error(400, 21655, "The ContentSid is Invalid")
            variables = json.loads(form.get("ContentVariables", ["{}"])[0])
            body = re.sub(r"\{\{(\w+)\}\}", lambda m: variables.get(m[1], ""), template)
        else:
            body = form["Body"][0]
            closed = to.removeprefix("whatsapp:") not in self.whatsapp_open
            if to.startswith("whatsapp:") and closed:
                why = "Failed to send freeform message because you are outside the allowed window."
                return self._error(400, 63016, why)
        sid = f"SM{len(self.messages) + 1:032x}"
        message = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "date_created": "Mon, 03 Mar 2025 10:00:00 +0000",
            "date_updated": "Mon, 03 Mar 2025 10:00:00 +0000",
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "status_callback": form.get("StatusCallback", [None])[0],
        }
        self.messages.append(message)
        return httpx.Response(201, json=message)

    @staticmethod
    def _page(path: str, key: str, items: list[dict]) -> dict:
        return {
            key: items,
            "end": max(len(items) - 1, 0),
            "first_page_uri": f"{path}?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?PageSize=50&Page=0",
        }

    @staticmethod
    def _error(status: int, code: int, message: str) -> httpx.Response:
        return httpx.Response(
            status,
            json={
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )


# -- Zendesk --------------------------------------------------------------------------------


@dataclass
class FakeZendesk:
    """Zendesk Support: tickets (create with Idempotency-Key, list by external_id), users/me,
    file uploads (`POST /uploads.json`, sharing a token), and comments (a `PUT` of the ticket
    adds one, naming upload tokens; `GET …/comments.json` lists them)."""

    subdomain: str = "northwind"
    email: str = "agent@northwind.example"
    token: str = "zd-token"
    tickets: list[dict] = field(default_factory=list)
    posts: int = 0
    by_idempotency_key: dict[str, dict] = field(default_factory=dict)
    uploads: dict[str, list[dict]] = field(default_factory=dict)  # token -> attachments
    comments: dict[str, list[dict]] = field(default_factory=dict)  # ticket id -> comments
    upload_posts: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        expected = basic(f"{self.email}/token", self.token)
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, json={"error": "Couldn't authenticate you"})
        path = request.url.path
        if path == "/api/v2/users/me.json":
            return httpx.Response(
                200,
                json={
                    "user": {
                        "id": 361,
                        "email": self.email,
                        "name": "Support Agent",
                        "role": "agent",
                    }
                },
            )
        if path == "/api/v2/tickets.json" and request.method == "GET":
            wanted = request.url.params.get("external_id")
            found = [t for t in self.tickets if t["external_id"] == wanted]
            return httpx.Response(
                200,
                json={"tickets": found, "count": len(found), "next_page": None},
            )
        if path == "/api/v2/tickets.json" and request.method == "POST":
            return self._create(request)
        if path == "/api/v2/uploads.json" and request.method == "POST":
            return self._upload(request)
        parts = path.removeprefix("/api/v2/tickets/").split("/")
        known = {str(t["id"]) for t in self.tickets}
        if path.startswith("/api/v2/tickets/") and parts[0].removesuffix(".json") in known:
            ticket_id = parts[0].removesuffix(".json")
            if parts[1:] == ["comments.json"] and request.method == "GET":
                found = [
                    {k: v for k, v in c.items() if not k.startswith("_")}
                    for c in self.comments.get(ticket_id, [])
                ]
                if request.url.params.get("sort_order") == "desc":
                    found.reverse()
                return httpx.Response(200, json={"comments": found, "next_page": None})
            if len(parts) == 1 and request.method == "PUT":
                return self._comment(ticket_id, json.loads(request.content)["ticket"])
        return httpx.Response(404, json={"error": "InvalidEndpoint"})

    def _upload(self, request: httpx.Request) -> httpx.Response:
        self.upload_posts += 1
        filename = request.url.params.get("filename")
        if not filename or not request.content:
            return httpx.Response(422, json={"error": "RecordInvalid"})
        token = request.url.params.get("token") or f"tok{len(self.uploads) + 1}"
        attachment = {
            "id": 9000 + sum(len(a) for a in self.uploads.values()),
            "file_name": filename,
            "content_type": request.headers.get("Content-Type"),
            "size": len(request.content),
            "_content": request.content,
        }
        self.uploads.setdefault(token, []).append(attachment)
        shown = [{k: v for k, v in a.items() if not k.startswith("_")} for a in self.uploads[token]]
        return httpx.Response(201, json={"upload": {"token": token, "attachments": shown}})

    def _comment(self, ticket_id: str, body: dict) -> httpx.Response:
        comment = body.get("comment") or {}
        attachments = [a for t in comment.get("uploads", []) for a in self.uploads.pop(t, [])]
        self.comments.setdefault(ticket_id, []).append(
            {
                "id": 7000 + sum(len(c) for c in self.comments.values()),
                "body": comment.get("body", ""),
                "public": comment.get("public", True),
                "attachments": [
                    {k: v for k, v in a.items() if not k.startswith("_")} for a in attachments
                ],
                "_files": attachments,
            }
        )
        ticket = next(t for t in self.tickets if str(t["id"]) == ticket_id)
        return httpx.Response(200, json={"ticket": ticket})

    def _create(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        key = request.headers.get("Idempotency-Key")
        if key and key in self.by_idempotency_key:
            return httpx.Response(
                201,
                json={"ticket": self.by_idempotency_key[key]},
                headers={"x-idempotency-lookup": "hit"},
            )
        body = json.loads(request.content)["ticket"]
        if not body.get("subject") or not body.get("comment", {}).get("body"):
            return httpx.Response(
                422,
                json={
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {"base": [{"description": "Description: cannot be blank"}]},
                },
            )
        ticket_id = 35436 + len(self.tickets)
        ticket = {
            "id": ticket_id,
            "url": f"https://{self.subdomain}.zendesk.com/api/v2/tickets/{ticket_id}.json",
            "subject": body["subject"],
            "description": body["comment"]["body"],
            "status": "new",
            "priority": body.get("priority"),
            "tags": body.get("tags", []),
            "external_id": body.get("external_id"),
            "requester_id": 20978392,
            "created_at": "2025-03-03T10:00:00Z",
            "_comment_public": body["comment"].get("public", True),
            "_requester": body.get("requester"),
        }
        self.tickets.append(ticket)
        if key:
            self.by_idempotency_key[key] = ticket
        return httpx.Response(
            201,
            json={"ticket": ticket},
            headers={"Location": ticket["url"], "x-idempotency-lookup": "miss"},
        )


# -- localstripe ----------------------------------------------------------------------------

# localstripe's own CLI listens on every interface and saves its state to a fixed file in /tmp;
# this starts the same server on loopback only, with nothing written to disk.
_LOCALSTRIPE = """
import sys
from aiohttp import web
from localstripe import resources
resources.Store.dump_to_disk = lambda self: None
from localstripe.server import app
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


@contextmanager
def localstripe_server() -> Iterator[str]:
    """A real localstripe server on loopback for the duration; yields its base URL."""
    import socket
    import subprocess
    import sys
    import time

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCALSTRIPE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"localstripe did not start: {err[-500:]}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
