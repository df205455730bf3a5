"""Zendesk tickets with the call's summary and transcript, opened once per key."""

from __future__ import annotations

import json

import httpx
import pytest

from integrations.protocols import Helpdesk, ProviderError
from integrations.zendesk import ZendeskHelpdesk, call_ticket_body
from tests.integrations.fakes_http import FakeZendesk, Flaky

SUMMARY = call_ticket_body(
    "Caller wants a refund for order 1012 (studio headphones, $250): needs approval.",
    [
        ("agent", "Thanks for calling Northwind Goods. How can I help?"),
        ("caller", "I sent my headphones back and want my money."),
        ("caller", "  "),
    ],
)


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def zendesk() -> FakeZendesk:
    return FakeZendesk()


def helpdesk(fake: FakeZendesk, handler=None) -> ZendeskHelpdesk:
    return ZendeskHelpdesk(
        fake.subdomain,
        fake.email,
        fake.token,
        transport=httpx.MockTransport(handler or fake),
        sleep=_no_sleep,
    )


async def open_ticket(desk: ZendeskHelpdesk, key: str = "CA123:ticket:refund", **overrides):
    args = {
        "requester_phone": "+14155550106",
        "requester_email": "omar.haddad@example.com",
        "tags": ["refund approval", "order_1012"],
        "priority": "high",
        "idempotency_key": key,
    }
    args.update(overrides)
    return await desk.create_ticket("Refund approval: order 1012", SUMMARY, **args)


async def test_a_ticket_carries_summary_transcript_tags_and_requester(zendesk: FakeZendesk):
    desk = helpdesk(zendesk)
    assert isinstance(desk, Helpdesk)
    ticket = await open_ticket(desk)
    assert ticket.id == "35436"
    assert ticket.status == "new"
    assert ticket.url == "https://northwind.zendesk.com/agent/tickets/35436"
    (stored,) = zendesk.tickets
    assert "Transcript:\nagent: Thanks for calling" in stored["description"]
    assert "caller: I sent my headphones back" in stored["description"]
    assert stored["description"].endswith("Caller's phone: +14155550106")
    assert stored["tags"] == ["order_1012", "postvoice", "refund_approval"]
    assert stored["priority"] == "high"
    assert stored["_comment_public"] is False  # the caller's words are not emailed out
    assert stored["_requester"]["email"] == "omar.haddad@example.com"
    await desk.aclose()


async def test_the_same_key_opens_one_ticket(zendesk: FakeZendesk):
    desk = helpdesk(zendesk)
    first = await open_ticket(desk)
    again = await open_ticket(desk)
    assert again == first
    assert len(zendesk.tickets) == 1
    assert zendesk.posts == 1  # found by external_id before posting
    await desk.aclose()


async def test_a_lost_answer_is_retried_with_zendesks_idempotency_key(zendesk: FakeZendesk):
    class LostAnswer:
        def __init__(self) -> None:
            self.lose = True

        def __call__(self, request: httpx.Request) -> httpx.Response:
            response = zendesk(request)
            if request.method == "POST" and self.lose:
                self.lose = False
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    desk = helpdesk(zendesk, LostAnswer())
    ticket = await open_ticket(desk)
    assert len(zendesk.tickets) == 1
    assert zendesk.posts == 2  # the retry was answered with the ticket already made
    assert ticket.id == "35436"
    await desk.aclose()


async def test_without_an_email_the_phone_is_in_the_body(zendesk: FakeZendesk):
    desk = helpdesk(zendesk)
    await open_ticket(desk, requester_email=None, priority="whatever")
    (stored,) = zendesk.tickets
    assert stored["_requester"] is None
    assert "+14155550106" in stored["description"]
    assert stored["priority"] == "normal"
    await desk.aclose()


async def test_zendesk_refusals_are_reported(zendesk: FakeZendesk):
    desk = helpdesk(zendesk)
    with pytest.raises(ProviderError) as raised:
        await desk.create_ticket(
            "",
            "",
            requester_phone=None,
            requester_email=None,
            tags=[],
            priority="low",
            idempotency_key="k",
        )
    assert raised.value.code == "invalid_ticket"
    assert not raised.value.retryable
    wrong = ZendeskHelpdesk(
        "northwind", zendesk.email, "nope", transport=httpx.MockTransport(zendesk)
    )
    with pytest.raises(ProviderError) as denied:
        await open_ticket(wrong)
    assert denied.value.code == "auth"
    await desk.aclose()
    await wrong.aclose()


async def test_an_outage_is_retryable(zendesk: FakeZendesk):
    desk = helpdesk(zendesk, Flaky(zendesk, failures=10, error=503))
    with pytest.raises(ProviderError) as raised:
        await open_ticket(desk)
    assert raised.value.code == "unavailable"
    assert raised.value.retryable
    await desk.aclose()


async def test_the_doctor_check(zendesk: FakeZendesk):
    desk = helpdesk(zendesk)
    assert await desk.check() == zendesk.email
    await desk.aclose()


async def test_ticket_body_is_json_the_api_documents(zendesk: FakeZendesk):
    seen: list[httpx.Request] = []

    def spy(request):
        seen.append(request)
        return zendesk(request)

    desk = helpdesk(zendesk, spy)
    await open_ticket(desk, key="k-json")
    await desk.aclose()
    post = next(r for r in seen if r.method == "POST")
    assert post.url.path == "/api/v2/tickets.json"
    assert post.headers["Idempotency-Key"] == "k-json"
    body = json.loads(post.content)["ticket"]
    assert set(body) >= {"subject", "comment", "priority", "tags", "external_id", "requester"}
