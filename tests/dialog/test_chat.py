"""`postvoice chat`: the same dialog typed in a terminal (voice/chat.py), over injected streams."""

from __future__ import annotations

import io

from dialog.agent import Agent
from dialog.events import CallInfo
from integrations.demo import DemoShop
from tests.dialog.calls import LENA, MARIA, NOW, Events, demo_shop, services
from voice.chat import run_chat


def factory(shop: DemoShop):
    def make(info: CallInfo) -> Agent:
        return Agent(None, services(shop, Events()), info, clock=lambda: NOW)

    return make


async def test_a_typed_call_from_greeting_to_goodbye():
    shop = demo_shop()
    out = io.StringIO()
    lines = io.StringIO("where is my order\nyes please\nno that's all\nthis is never read\n")
    summary = await run_chat(factory(shop), MARIA, input=lines, output=out)
    text = out.getvalue()
    assert text.startswith("agent> Hi Maria, thanks for calling Acme Goods.")
    assert "agent> Your linen shirt shipped with UPS and should arrive tomorrow." in text
    assert "agent> [hangs up: caller_done]" in text
    assert "Maria Lopez" in summary and "sms.sent" in summary
    assert [sms["to"] for sms in shop.messenger.sent()] == [MARIA]


async def test_keypad_silence_and_end_of_input():
    shop = demo_shop()
    out = io.StringIO()
    lines = io.StringIO("where is my order\n#1010#\n/silence\n")
    summary = await run_chat(factory(shop), "+14155550999", input=lines, output=out)
    text = out.getvalue()
    assert "Order ten ten is being prepared and hasn't shipped yet." in text
    assert "agent> Are you still there? Is there anything else I can help with?" in text
    assert "call ended (caller_hangup)" in text
    assert "Outcome: caller_hangup" in summary


async def test_a_transfer_ends_the_chat():
    out = io.StringIO()
    await run_chat(
        factory(demo_shop()), MARIA, input=io.StringIO("a real person please\n"), output=out
    )
    assert "agent> [transferring to +18005550199]" in out.getvalue()


async def test_an_outbound_call_and_the_hints():
    out = io.StringIO()
    await run_chat(
        factory(demo_shop()),
        LENA,
        direction="outbound",
        purpose="delivery_confirmation",
        order_ref="1009",
        input=io.StringIO("yes\n"),
        output=out,
        show_hints=True,
    )
    text = out.getvalue()
    assert "calling about your order ten oh nine" in text
    assert "(expecting yes_no)" in text
