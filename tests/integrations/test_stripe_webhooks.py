"""Stripe webhooks: only Stripe's signed, recent deliveries count, and each event counts once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import stripe
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from integrations.stripe_webhooks import (
    SignatureError,
    SqlSeenEvents,
    handle_stripe_event,
    sign_stripe_payload,
    verify_stripe_signature,
)
from tests.integrations.fakes_http import localstripe_server

SECRET = "whsec_test_secret"
T = 1_741_000_000
EVENT = {
    "id": "evt_1PabcXYZ",
    "object": "event",
    "type": "refund.updated",
    "created": T,
    "data": {"object": {"id": "re_1", "object": "refund", "status": "succeeded"}},
}
PAYLOAD = json.dumps(EVENT).encode()


def test_a_genuine_signature_is_accepted():
    header = sign_stripe_payload(PAYLOAD, SECRET, T)
    assert verify_stripe_signature(PAYLOAD, header, SECRET, now=T + 10) == T


def test_the_sdk_and_we_agree_on_the_scheme():
    header = sign_stripe_payload(PAYLOAD, SECRET, T)
    stripe.WebhookSignature.verify_header(PAYLOAD.decode(), header, SECRET, tolerance=None)


@pytest.mark.parametrize(
    ("payload", "header", "now", "why"),
    [
        (PAYLOAD + b" ", sign_stripe_payload(PAYLOAD, SECRET, T), T, "no signature matches"),
        (PAYLOAD, sign_stripe_payload(PAYLOAD, "whsec_other", T), T, "no signature matches"),
        (PAYLOAD, sign_stripe_payload(PAYLOAD, SECRET, T), T + 301, "tolerance is 300"),
        (PAYLOAD, sign_stripe_payload(PAYLOAD, SECRET, T), T - 301, "tolerance is 300"),
        (PAYLOAD, f"v1={'0' * 64}", T, "no timestamp"),
        (PAYLOAD, f"t={T},v0=abc", T, "no v1 scheme"),
        (PAYLOAD, "t=soon,v1=abc", T, "not a number"),
        (PAYLOAD, "", T, "no Stripe-Signature"),
    ],
)
def test_forged_tampered_or_stale_deliveries_are_refused(payload, header, now, why):
    with pytest.raises(SignatureError, match=why):
        verify_stripe_signature(payload, header, SECRET, now=now)


def test_the_edge_of_the_tolerance_is_still_accepted():
    header = sign_stripe_payload(PAYLOAD, SECRET, T)
    assert verify_stripe_signature(PAYLOAD, header, SECRET, now=T + 300) == T


def test_one_good_signature_among_several_suffices():
    good = sign_stripe_payload(PAYLOAD, SECRET, T).split(",")[1]
    header = f"t={T},v1={'f' * 64},{good}"
    assert verify_stripe_signature(PAYLOAD, header, SECRET, now=T) == T


@pytest.fixture
def seen() -> SqlSeenEvents:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    table = SqlSeenEvents(engine)
    table.create_all()
    return table


async def test_each_event_is_handled_once(seen: SqlSeenEvents):
    handled: list[str] = []

    async def on_event(event):
        handled.append(event["id"])

    header = sign_stripe_payload(PAYLOAD, SECRET, T)
    first = await handle_stripe_event(PAYLOAD, header, SECRET, seen, on_event=on_event, now=T)
    again = await handle_stripe_event(PAYLOAD, header, SECRET, seen, on_event=on_event, now=T)
    assert (first.status, first.event_id, first.event_type) == (
        "processed",
        "evt_1PabcXYZ",
        "refund.updated",
    )
    assert (again.status, again.http_status) == ("duplicate", 200)
    assert handled == ["evt_1PabcXYZ"]


async def test_a_plain_function_may_say_what_was_seen():
    ids: set[str] = set()

    def remember(event_id: str) -> bool:
        known = event_id in ids
        ids.add(event_id)
        return known

    header = sign_stripe_payload(PAYLOAD, SECRET, T)
    assert (await handle_stripe_event(PAYLOAD, header, SECRET, remember, now=T)).status == (
        "processed"
    )
    assert (await handle_stripe_event(PAYLOAD, header, SECRET, remember, now=T)).status == (
        "duplicate"
    )


async def test_refused_deliveries_record_nothing(seen: SqlSeenEvents):
    bad = await handle_stripe_event(PAYLOAD, "t=1,v1=00", SECRET, seen, now=T)
    assert (bad.status, bad.http_status) == ("rejected", 400)
    not_json = b"<html>"
    header = sign_stripe_payload(not_json, SECRET, T)
    assert (await handle_stripe_event(not_json, header, SECRET, seen, now=T)).status == "rejected"
    # The genuine delivery afterwards is still new.
    header = sign_stripe_payload(PAYLOAD, SECRET, T)
    assert (await handle_stripe_event(PAYLOAD, header, SECRET, seen, now=T)).status == "processed"


class Receiver:
    """A minimal HTTP endpoint on loopback that keeps what is POSTed to it."""

    def __init__(self) -> None:
        self.deliveries: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        await self.deliveries.put((headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def stripe_url() -> Iterator[str]:
    with localstripe_server() as url:
        yield url


async def test_a_real_delivery_from_localstripe_verifies(stripe_url, seen):
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=stripe_url, auth=("sk_test_x", "")) as http:
        registered = await http.post(
            "/_config/webhooks/postvoice",
            data={
                "url": f"http://127.0.0.1:{port}/stripe/webhook",
                "secret": SECRET,
                "events[]": "customer.created",
            },
        )
        assert registered.status_code == 200
        created = await http.post("/v1/customers", data={"email": "lena@example.com"})
        assert created.status_code == 200
    headers, body = await asyncio.wait_for(receiver.deliveries.get(), timeout=15)
    server.close()
    event_time = json.loads(body)["created"]
    outcome = await handle_stripe_event(
        body, headers["stripe-signature"], SECRET, seen, now=event_time + 5
    )
    assert (outcome.status, outcome.event_type) == ("processed", "customer.created")
    forged = await handle_stripe_event(
        body, headers["stripe-signature"], "whsec_wrong", seen, now=event_time + 5
    )
    assert forged.status == "rejected"
