"""Photos of damage in Chromium: a typed call about a damaged vase texts an upload link; the
page, opened from that text, takes two phone photos; the replacement is arranged and said to;
the photos show on the ticket in the dashboard, and the link takes no more."""

from __future__ import annotations

import io
import re
import subprocess
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from dialog.policy import DEFAULT_POLICY
from harness.bench_server import postvoice_command
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LENA = "+14155550105"  # her ceramic vase ($55), delivered yesterday (docs/DESIGN.md)
DELIVERY_TIMEOUT_S = 30
LINK = re.compile(r"https?://\S+/photos/\S+")


def phone_photo(colour: tuple[int, int, int]) -> bytes:
    """A JPEG as a phone takes it: with the camera and the place it was taken in its EXIF."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (37.0, 46.0, 30.0)
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), colour).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _damaged_call(live_server, tmp_path) -> None:
    """Lena reports her vase damaged in a typed call, with a policy that wants photos of
    items above $50: she agrees to send photos."""
    policy = tmp_path / "policy.yaml"
    text = DEFAULT_POLICY.read_text().replace("photos_above: 100.00", "photos_above: 50.00")
    assert "photos_above: 50.00" in text
    policy.write_text(text)
    chat = subprocess.run(
        [*postvoice_command(), "chat", "--from", LENA],
        input="my vase arrived damaged\nzero two one three nine\na replacement please\nyes\n",
        env={**live_server.env, "POSTVOICE_POLICY_FILE": str(policy), "COLUMNS": "200"},
        cwd=live_server.tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert chat.returncode == 0, chat.stdout + chat.stderr
    assert "we need photos of the damage first" in chat.stdout, chat.stdout
    assert "I've texted you the link" in chat.stdout, chat.stdout
    assert "replacement is on its way" not in chat.stdout.lower()


def _texted(live_server, words: str) -> str:
    """The body of the text to Lena holding `words`, once the outbox has delivered it."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        items = live_server.api("/api/outbox", status="delivered")["items"]
        for item in items:
            body = str(item["payload"].get("body", ""))
            if item["kind"] == "sms" and item["payload"].get("to") == LENA and words in body:
                return body
        assert time.monotonic() < deadline, f"no text with {words!r} was delivered"
        time.sleep(0.3)


def test_photos_of_damage_from_the_texted_link_to_the_ticket(
    page, context, live_server, tmp_path, screenshot
):
    _damaged_call(live_server, tmp_path)
    link = LINK.search(_texted(live_server, "/photos/")).group(0)
    assert link.startswith(live_server.base + "/photos/")

    # The customer's phone: a narrow screen, no dashboard login.
    phone = context.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        customer = phone.new_page()
        customer.goto(link)
        picker = customer.locator("form#upload input[type=file][name=photos]")
        expect(picker).to_be_visible()
        screenshot(customer, "photos-upload")
        picker.set_input_files(
            [
                {
                    "name": "vase.jpg",
                    "mimeType": "image/jpeg",
                    "buffer": phone_photo((190, 30, 30)),
                },
                {"name": "box.jpg", "mimeType": "image/jpeg", "buffer": phone_photo((30, 30, 190))},
            ]
        )
        customer.click("form#upload button[type=submit]")
        reply = customer.locator("#reply")
        expect(reply).to_contain_text("Thanks, we've got your photos — a replacement for your")
        expect(reply).to_contain_text("is on its way")
        expect(customer.locator("form#upload")).to_have_count(0)
        screenshot(customer, "photos-received")

        # The link again: done, and it takes no more.
        customer.goto(link)
        expect(customer.locator("#reply")).to_contain_text("We already have your photos")
        expect(customer.locator("form#upload")).to_have_count(0)

        # A forged link shows nothing of the request.
        customer.goto(link[:-4] + "AAAA")
        expect(customer.locator("#invalid")).to_be_visible()
    finally:
        phone.close()

    # The replacement exists: its reference is texted too.
    assert re.search(r"reference RMA-\d+", _texted(live_server, "we've got your photos"))

    # A person sees the photos on the ticket.
    log_in(page, live_server.admin_token, "/dashboard/tickets")
    page.wait_for_url("**/dashboard/tickets")
    row = page.locator("table#tickets tr", has=page.locator("td.photos img"))
    expect(row).to_have_count(1)
    expect(row.locator("td.photos img")).to_have_count(2)
    # Each image once it has loaded (or 0 if it cannot): read at once, a lazy image may not be.
    widths = row.locator("td.photos img").evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth, () => 0)))"
    )
    assert all(w > 0 for w in widths), widths
    screenshot(page, "photos-ticket")
    src = row.locator("td.photos img").first.get_attribute("src")
    served = page.request.get(src)
    assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
    assert b"PhoneMaker" not in served.body() and b"Exif" not in served.body()
    # Without the login, the same photo is not served.
    anonymous = context.browser.new_context(base_url=live_server.base)
    try:
        refused = anonymous.request.get(src, max_redirects=0)
        assert refused.status in (303, 401)
    finally:
        anonymous.close()
