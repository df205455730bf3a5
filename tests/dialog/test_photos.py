"""Photos of damage in the damaged-item flow: above the policy's photo line a replacement waits
for photos uploaded through a texted link, and goes out (and is said to) only once it exists."""

from __future__ import annotations

import io
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from PIL import Image

from dialog.evidence import DamageEvidence
from dialog.loader import load_flows
from dialog.policy import PolicyError, load_policy
from integrations.demo import shop_sms
from integrations.photos import PhotoDesk, PhotoOptions, Upload
from tests.dialog.calls import LENA, NOW, Events, call, demo_shop, said, services, transferred

SECRET = b"test-photo-secret"


def _policy(photos_above: str | None):
    policy = load_policy()
    line = None if photos_above is None else Decimal(photos_above)
    return policy.model_copy(
        update={"damaged": policy.damaged.model_copy(update={"photos_above": line})}
    )


def _jpeg(colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "JPEG")
    return out.getvalue()


def _texts(shop) -> list[dict]:
    with shop.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(shop_sms.select().order_by(shop_sms.c.seq))]


class Setup:
    """A call from Lena about her $55 vase, with a photo desk over the same shop."""

    def __init__(self, photos_above: str | None = "50", **swapped) -> None:
        self.shop = demo_shop()
        self.events = Events()
        self.policy = _policy(photos_above)
        self.desk = PhotoDesk(
            self.shop.engine, SECRET, "https://shop.test", PhotoOptions(), clock=lambda: NOW
        )
        self.desk.create_all()
        self.swapped = {"photos": self.desk, **swapped}
        self.desk.follow_up = DamageEvidence(
            lambda _request: services(self.shop, self.events, **self.swapped),
            self.policy,
            load_flows().sms,
            clock=lambda: NOW,
        )
        self.call = call(
            LENA, shop=self.shop, events=self.events, policy=self.policy, swapped=self.swapped
        )

    async def to_the_photo_question(self) -> str:
        await self.call.start()
        await self.call.say("my vase arrived damaged", "zero two one three nine")
        return said(await self.call.hear("a replacement please"))


async def test_above_the_photo_line_the_replacement_waits_for_photos_then_goes_out():
    s = Setup("50")
    asked = await s.to_the_photo_question()
    assert "we need photos of the damage first" in asked
    events = await s.call.hear("yes")
    assert "I've texted you the link. It works for three days." in said(events)
    assert "replacement is on its way" not in said(events).lower()
    assert not s.events.of("replacement.created")
    [link_text] = [t for t in _texts(s.shop) if "/photos/" in t["body"]]
    assert link_text["to"] == LENA
    url = next(w for w in link_text["body"].split() if w.startswith("https://shop.test/photos/"))
    parsed = urlparse(url)
    request_id = parsed.path.rsplit("/", 1)[-1]
    query = dict(p.split("=", 1) for p in parsed.query.split("&"))
    request = await s.desk.open(request_id, query["expires"], query["sig"])
    assert request is not None and request.status == "pending" and request.order_number == "1009"

    accepted = await s.desk.accept(request, [Upload(_jpeg(), "image/jpeg", "vase.jpg")])

    assert accepted.stored == 1
    assert accepted.reply.startswith("Thanks, we've got your photos — a replacement for your ")
    assert "is on its way" in accepted.reply
    [made] = s.events.of("replacement.created")
    assert made["rma"] in accepted.reply
    assert s.events.of("photos.received")[0]["photos"] == 1
    assert (await s.desk.get(request_id)).status == "fulfilled"
    ticket = request.ticket_id
    [attached] = s.shop.helpdesk.attachments(ticket)
    assert attached["content_type"] == "image/jpeg" and attached["data"][:2] == b"\xff\xd8"
    assert any("we've got your photos" in t["body"] for t in _texts(s.shop))

    again = await s.desk.accept(request, [Upload(_jpeg((0, 0, 255)), "image/jpeg", "b.jpg")])
    assert again.already and again.stored == 0
    assert "We already have your photos for order 1009" in again.reply
    assert len(s.events.of("replacement.created")) == 1


async def test_below_the_photo_line_the_replacement_goes_out_on_the_call():
    s = Setup("100")
    asked = await s.to_the_photo_question()
    assert "So I'll send you a free replacement for your ceramic vase" in asked
    events = await s.call.hear("yes")
    assert "A replacement is on its way" in said(events)
    assert not [t for t in _texts(s.shop) if "/photos/" in t["body"]]


async def test_photos_in_but_no_replacement_possible_says_so_and_keeps_the_request_open():
    s = Setup("50")
    await s.to_the_photo_question()
    await s.call.hear("yes")
    request = await s.desk.waiting_for(LENA)
    s.swapped["returns"] = None  # the returns service has gone away since the call
    accepted = await s.desk.accept(request, [Upload(_jpeg(), "image/jpeg", "vase.jpg")])
    assert accepted.stored == 1
    assert "couldn't arrange the replacement" in accepted.reply
    assert "on its way" not in accepted.reply
    assert not s.events.of("replacement.created")
    assert (await s.desk.get(request.id)).status == "received"


async def test_a_caller_without_a_number_to_text_goes_to_a_person():
    s = Setup("50")
    s.call = call("anonymous", shop=s.shop, events=s.events, policy=s.policy, swapped=s.swapped)
    await s.call.start()
    await s.call.say("my vase arrived damaged", "order one zero zero nine")
    events = await s.call.say("zero two one three nine", "a replacement please")
    text = said(events)
    assert "we need photos of the damage first, and I can't text you a link" in text
    assert "Shall I go ahead" not in text
    assert transferred(events) is not None
    assert not s.events.of("replacement.created")


@pytest.mark.parametrize("files", [6, 0])
async def test_too_many_or_no_photos_keep_nothing(files):
    s = Setup("50")
    await s.to_the_photo_question()
    await s.call.hear("yes")
    request = await s.desk.waiting_for(LENA)
    uploads = [Upload(_jpeg((i * 40, 0, 0)), "image/jpeg", f"{i}.jpg") for i in range(files)]
    accepted = await s.desk.accept(request, uploads)
    assert accepted.stored == 0
    assert not s.events.of("replacement.created")
    if files:
        assert "more photos than we can take" in accepted.reply


def test_the_photo_line_is_policy_and_can_be_turned_off(tmp_path):
    damaged = load_policy().damaged
    assert damaged.photos_above == Decimal("100")
    assert not damaged.needs_photos(10000) and damaged.needs_photos(10001)
    text = tmp_path / "p.yaml"
    text.write_text("damaged:\n  photos_above: null\n")
    assert not load_policy(text).damaged.needs_photos(10**9)
    text.write_text("damaged:\n  photos_above: -1\n")
    with pytest.raises(PolicyError, match="photos_above"):
        load_policy(text)
