"""Text messages: the same flows worded for a screen, each reply one short message.

Every shipped procedure is held as a typed conversation over the demo shop with
`channel="sms"`: each reply fits in two SMS segments, writes facts as a screen shows them
("#1003", "$89", "Thu 19 Jun"), never offers the keypad or asks to say it again, and carries a
texted link in the message itself. The same conversations by voice are what they were before
any line had a text wording.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialog import alerts
from dialog.events import Event, Hints, Say
from dialog.flow_files import CONVERSATION_FILE
from dialog.loader import DEFAULT_FLOWS, check_flows, load_flows
from dialog.policy import load_policy
from dialog.schema import Conversation
from dialog.screen import message, sms_segments
from dialog.wording import Worded
from dialog.yaml_lines import load_yaml
from integrations.photos import PhotoDesk, PhotoOptions
from tests.dialog.calls import (
    AISHA,
    JAMES,
    LENA,
    MARIA,
    NOW,
    OMAR,
    STRANGER,
    TOM,
    call,
    demo_shop,
)

# --- what a reply on a screen must not hold ----------------------------------------------------

_SPOKEN = re.compile(
    r"\b(ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|"
    r"oh (one|two|three|four|five|six|seven|eight|nine)|dollars?|cents?|percent|"
    r"[0-9]+(st|nd|rd|th)\b|dot com| at example)",
    re.IGNORECASE,
)
"""Facts put into words for the ear: numbers, money, ordinals, spoken emails."""

_EAR = re.compile(
    r"keypad|press pound|\bpound\b|didn't catch|say (it|that) again|you can say|"
    r"\bi heard\b|let me look|one moment|calling from|thanks for calling|texted|"
    r"connect you",
    re.IGNORECASE,
)
"""Wording made for a phone call: the keypad, mishearing, fillers, "I've texted you"."""

# One conversation per shipped procedure a customer can text about, typed the way people
# type: hesitations, typos, two requests at once, a correction.
CONVERSATIONS: dict[str, tuple[str, list[str]]] = {
    "order_status": (MARIA, ["hey, where's my order?? it's 1001", "yes pls", "nope thats all"]),
    "order_status_stranger": (STRANGER, ["where is order 1003", "no thanks"]),
    "order_number_typo": (STRANGER, ["hi my package hasnt arrived", "10o3, sorry 1003", "no"]),
    "returns_refund": (
        JAMES,
        [
            "I want to return the earbuds from 1003, they stopped working",
            "10001",
            "refund",
            "yes go ahead",
            "no thanks",
        ],
    ),
    "exchange": (
        AISHA,
        ["can i exchange my sweater from order 1005 for a large", "60614", "yes", "no"],
    ),
    "final_sale": (JAMES, ["return the rain jacket, order 1004", "no"]),
    "refund_status": (OMAR, ["did my refund for 1011 go through?", "ok and 1012?", "no thanks"]),
    "coupon": (MARIA, ["my coupon SAVE20 didnt work on order 1001", "no thats it"]),
    "coupon_used": (TOM, ["why doesnt VIP50 work", "1008", "no"]),
    "delivery_failed": (
        AISHA,
        ["the delivery of 1006 failed, can I pick another day", "60614", "friday", "yes", "no"],
    ),
    "damaged": (
        LENA,
        ["hi, my vase from order 1009 arrived broken", "02139", "a replacement pls", "yes", "no"],
    ),
    "damaged_refund": (
        LENA,
        ["the vase (1009) came cracked", "lena.novak@example.com", "refund it please", "yes", "no"],
    ),
    "lost": (TOM, ["my espresso machine 1007 never showed up", "73301", "yes", "no"]),
    "not_received": (LENA, ["it says 1009 was delivered but i dont have it", "02139", "no"]),
    "address_change": (
        LENA,
        [
            "i need to change the address for order 1010",
            "02139",
            "40 Prospect Street",
            "02143",
            "Somerville, MA",
            "yes",
            "no",
        ],
    ),
    "verify_fails": (STRANGER, ["i want to return order 1005", "94110", "11111", "22222"]),
    "handoff": (MARIA, ["can i talk to a real person please"]),
    "escalation": (
        TOM,
        ["this is ridiculous, third time im asking, where is my grinder 1008??", "no", "no"],
    ),
    "fallback": (MARIA, ["asdfgh", "qwerty zxc", "hmm"]),
    "faq": (MARIA, ["what's your return policy", "and how do i reach you", "bye"]),
}


def _link_shortened(text: str) -> str:
    """`text` with each link as long as a shortened one (23 characters): a label's or a
    carrier's link is as long as they make it, and the words around it are what must be short."""
    return re.sub(r"https?://\S+", "https://sho.rt/" + "x" * 8, text)


async def _replies(caller: str, lines: list[str], channel: str, **kw: Any) -> list[list[Event]]:
    """The agent's events for the greeting and each message, in order."""
    conversation = call(caller, channel=channel, shop=demo_shop(), **kw)
    replies = [await conversation.start()]
    for line in lines:
        replies.append(await conversation.hear(line, 1.0))
    return replies


def _said(events: list[Event]) -> list[str]:
    """What the agent said, fillers left out: "Okay, let me set that up." comes only when the
    action is slow on this machine at this moment, so two runs may differ in it."""
    return [e.text for e in events if isinstance(e, Say) and not e.filler]


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
async def test_every_reply_is_one_short_message_worded_for_a_screen(name: str) -> None:
    caller, lines = CONVERSATIONS[name]
    replies = await _replies(caller, lines, "sms")
    for said, events in zip(["(start)", *lines], replies, strict=False):
        text = message(events)
        assert sms_segments(_link_shortened(text)) <= 2, f"{said!r} → {text!r}"
        assert not _SPOKEN.search(text), f"{said!r} → {text!r}"
        assert not _EAR.search(text), f"{said!r} → {text!r}"
        assert not any(isinstance(e, Say) and e.filler for e in events)
    assert message(replies[0])  # greeted


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
async def test_the_same_conversations_by_voice_are_as_they_were(name: str, tmp_path: Path) -> None:
    caller, lines = CONVERSATIONS[name]
    voice_only = load_flows(_voice_only_copy(tmp_path))
    before = await _replies(caller, lines, "voice", flows=voice_only)
    after = await _replies(caller, lines, "voice")
    assert [_said(e) for e in after] == [_said(e) for e in before]


def _plain_voice(data: Any) -> Any:
    """YAML data with every `{voice, text}` line reduced to its voice wording."""
    if isinstance(data, dict):
        if set(data) == {"voice", "text"}:
            return data["voice"]
        return {k: _plain_voice(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain_voice(v) for v in data]
    return data


def _voice_only_copy(tmp_path: Path) -> Path:
    """The shipped flows as they were before any line had a text wording."""
    out = tmp_path / "flows"
    out.mkdir()
    for path in DEFAULT_FLOWS.glob("*.yaml"):
        data = _plain_voice(load_yaml(path))
        (out / path.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


# --- particular screens ------------------------------------------------------------------------


async def test_the_tracking_link_is_in_the_message_and_no_separate_text_is_sent() -> None:
    conversation = call(MARIA, channel="sms")
    await conversation.start()
    status = message(await conversation.hear("where's my order 1001", 1.0))
    assert "should arrive tomorrow (Thu 19 Jun)" in status
    assert "the tracking link?" in status
    sent = message(await conversation.hear("yes please", 1.0))
    assert "https://www.ups.com/track?tracknum=" in sent
    assert conversation.shop.messenger.sent() == []
    [texted] = conversation.events.of("sms.sent")
    assert texted["in_reply"] is True and texted["purpose"] == "tracking"


async def test_by_voice_the_tracking_link_is_texted_and_never_said() -> None:
    conversation = call(MARIA)
    await conversation.start()
    await conversation.hear("where's my order 1001")
    said = " ".join(_said(await conversation.hear("yes please")))
    assert "I've texted the tracking link" in said and "https://" not in said
    [sms] = conversation.shop.messenger.sent()
    assert "https://www.ups.com/track?tracknum=" in sms["body"]


async def test_the_ticket_number_is_written_in_the_reply_not_texted_beside_it() -> None:
    conversation = call(MARIA, channel="whatsapp")
    await conversation.start()
    text = message(await conversation.hear("can i talk to a real person please", 1.0))
    assert re.search(r"Your ticket number is T-\d+, so you won't have to explain again", text)
    assert conversation.shop.messenger.sent() == []


async def test_a_photo_link_for_damage_is_the_message() -> None:
    policy = load_policy()
    policy = policy.model_copy(
        update={"damaged": policy.damaged.model_copy(update={"photos_above": Decimal("50")})}
    )
    shop = demo_shop()
    desk = PhotoDesk(
        shop.engine, b"test-photo-secret", "https://shop.test", PhotoOptions(), clock=lambda: NOW
    )
    desk.create_all()
    conversation = call(LENA, channel="sms", shop=shop, policy=policy, swapped={"photos": desk})
    await conversation.start()
    await conversation.hear("my vase arrived damaged", 1.0)
    await conversation.hear("02139", 1.0)
    asked = message(await conversation.hear("a replacement please", 1.0))
    assert "we need photos of the damage first. I'll send you a link for them." in asked
    sent = message(await conversation.hear("ok yes", 1.0))
    assert re.search(r"here: https://shop\.test/photos/\S+ \. You can also reply", sent), sent
    assert "works for 3 days" in sent and "texted" not in sent
    assert sms_segments(_link_shortened(sent)) <= 2
    assert shop.messenger.sent() == []


async def test_a_confirmation_the_reply_says_is_not_texted_beside_it() -> None:
    conversation = call(AISHA, channel="sms")
    await conversation.start()
    for line in ("my lamp delivery 1006 failed, can it come another day", "60614", "friday"):
        await conversation.hear(line, 1.0)
    done = message(await conversation.hear("yes please", 1.0))
    assert done.startswith("Done. FedEx will bring your desk lamp on Fri 20 Jun.")
    assert conversation.shop.messenger.sent() == []
    assert not conversation.events.of("sms.sent")
    assert conversation.events.of("delivery.rescheduled")


async def test_by_voice_the_same_confirmation_is_texted() -> None:
    conversation = call(AISHA)
    await conversation.start()
    for line in ("my lamp delivery 1006 failed, can it come another day", "60614", "friday"):
        await conversation.hear(line)
    done = " ".join(_said(await conversation.hear("yes please")))
    assert "I've texted you a confirmation." in done
    [sms] = conversation.shop.messenger.sent()
    assert "FedEx will deliver order 1006" in sms["body"]


async def test_a_typed_number_is_never_read_back() -> None:
    conversation = call(STRANGER, channel="sms")
    await conversation.start()
    await conversation.hear("where is my order", 1.0)
    text = message(await conversation.hear("1003", 1.0, guessed=True))
    assert "Is that right" not in text
    assert "Order #1003 was delivered" in text


async def test_a_text_wording_may_hold_a_link_but_the_voice_one_never(tmp_path: Path) -> None:
    flows = _copy_flows(tmp_path)
    goodbye = flows / "goodbye.yaml"
    goodbye.write_text(
        goodbye.read_text().replace(
            '    say: "Thanks for your time. Goodbye."',
            "    say:\n"
            '      voice: "Thanks for your time. Goodbye."\n'
            '      text: "Thanks! Our help pages: https://help.example.com/orders"',
        )
    )
    assert check_flows(flows) == []
    goodbye.write_text(
        goodbye.read_text().replace(
            'voice: "Thanks for your time. Goodbye."',
            'voice: "Thanks! See www.example.com"',
        )
    )
    [error] = check_flows(flows)
    assert re.fullmatch(r".*goodbye\.yaml:\d+: say\.voice: never read a URL aloud.*", error)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ('{voice: "Goodbye."}', "needs `text:` as well"),
        ('{voice: "Goodbye.", txt: "Bye!"}', "not `txt:`"),
        ('{voice: "Goodbye.", text: ""}', "`text:` must be a non-empty sentence"),
        ('{voice: "Goodbye.", text: [Bye]}', "`text:` must be a non-empty sentence"),
        ('{voice: "Goodbye {nobody}.", text: "Bye!"}', "say.voice: unknown slot {nobody}"),
        ('{voice: "Goodbye.", text: "Bye {nobody}!"}', "say.text: unknown slot {nobody}"),
    ],
)
def test_a_malformed_worded_line_is_reported_at_its_file_and_line(
    tmp_path: Path, line: str, complaint: str
) -> None:
    flows = _copy_flows(tmp_path)
    goodbye = flows / "goodbye.yaml"
    lines = goodbye.read_text().splitlines()
    at = next(i for i, text in enumerate(lines) if "Thanks for your time" in text)
    lines[at] = f"    say: {line}"
    goodbye.write_text("\n".join(lines) + "\n")
    errors = check_flows(flows)
    assert errors, "a malformed line passed the check"
    # The line of the step (the slots it names are checked per step), or of the line itself.
    where = (f"goodbye.yaml:{at}:", f"goodbye.yaml:{at + 1}:")
    assert any(e.split(" ", 1)[0].endswith(where) and complaint in e for e in errors), errors


def test_a_conversation_line_may_be_worded_and_a_plain_one_is_both() -> None:
    conv = Conversation(
        open={"voice": "How can I help?", "text": "How can I help? Reply with your question."},
        anything_else="Anything else?",
    )
    assert isinstance(conv.open, Worded)
    assert conv.open == "How can I help?" and conv.open.text.startswith("How can I help? Reply")
    assert conv.anything_else == "Anything else?" and not isinstance(conv.anything_else, Worded)
    with pytest.raises(ValueError, match="not known outside a call"):
        Conversation(voicemail={"voice": "Hi from {shop}.", "text": "Hi {first_name}."})


def test_merchant_flows_without_text_wording_load_unchanged(tmp_path: Path) -> None:
    flows = load_flows(_voice_only_copy(tmp_path))
    screen = flows.on_screen
    assert screen.conversation.open == flows.conversation.open
    known = flows["start"].spec.steps[1]
    assert screen["start"].spec.steps[1] == known


def test_on_screen_flows_take_the_text_wording() -> None:
    flows = load_flows()
    ask = flows["identify_order"].spec.steps[flows["identify_order"].index["ask_number"]]
    screen = flows.on_screen["identify_order"].spec.steps[
        flows["identify_order"].index["ask_number"]
    ]
    assert "keypad" in ask.ask and ask.ask.text == screen.ask == "What's your order number?"
    assert flows.on_screen is flows.on_screen  # worked out once


def _copy_flows(tmp_path: Path) -> Path:
    out = tmp_path / "flows"
    out.mkdir()
    for path in DEFAULT_FLOWS.glob("*.yaml"):
        (out / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert (out / CONVERSATION_FILE).exists()
    return out


# --- SMS segments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # two septets each: exactly 160
        ("€" * 81, 2),
        ("ü" * 160, 1),  # in the GSM alphabet
        ("ł" * 70, 1),  # not: UCS-2
        ("ł" * 71, 2),
        ("ł" * 134, 2),
        ("ł" * 135, 3),
        ("Your order #1003 — delivered.", 1),  # the dash alone makes it UCS-2
        ("a" * 69 + "😀", 2),  # an emoji is two UTF-16 units: 71
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_a_message_leaves_fillers_and_hints_out() -> None:
    events: list[Event] = [
        Say("Let me look that up.", filler=True),
        Say("Order #1003 was delivered."),
        Hints(slot="yes_no"),
        Say("Anything else?"),
    ]
    assert message(events) == "Order #1003 was delivered. Anything else?"


async def test_the_texted_alerts_take_their_text_wording() -> None:
    lines = Conversation(
        alert_lost={
            "voice": "{shop}: your order {order_number} may be lost.",
            "text": "{shop}: order #{order_number} may be lost. Reply to sort it out.",
        },
        voicemail_text="{shop} called about order {order_number}.",
    )
    order = await demo_shop().orders.order("1007")
    assert order is not None
    texted = alerts.alert_text("Acme", order, "lost", lines)
    assert texted == "Acme: order #1007 may be lost. Reply to sort it out."
    assert alerts.voicemail_text("Acme", "1009", lines) == "Acme called about order 1009."
