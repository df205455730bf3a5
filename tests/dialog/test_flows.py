"""Each procedure of `dialog/flows/`, as a caller meets it, over the embedded demo shop."""

from __future__ import annotations

from dialog.events import EndCall, Hints
from tests.dialog.calls import (
    AISHA,
    JAMES,
    LENA,
    MARIA,
    OMAR,
    STRANGER,
    TODAY,
    TOM,
    call,
    carrier_requests,
    demo_shop,
    hints,
    refunds,
    said,
    transferred,
)
from tests.dialog.wrappers import Failing

# --- identify and verify --------------------------------------------------------------------


async def test_verification_asks_for_the_zip_with_a_neutral_hint():
    c = call(JAMES)
    await c.start()
    events = await c.hear("I want to return my earbuds")
    assert said(events).endswith(
        "First, for your security: what's the ZIP code on the order? The email address works too."
    )
    assert hints(events) == [Hints(slot="verification", prompt="ZIP code:", expect_dtmf=True)]


async def test_email_or_keypad_verifies_too():
    c = call(JAMES)
    await c.start()
    await c.hear("I want to return my earbuds")
    events = await c.hear("it's james dot chen at example dot com")
    assert said(events) == "What's the reason for the return?"  # the answer shows it matched
    assert c.events.of("caller.verified")[0]["method"] == "email"
    c = call(JAMES)
    await c.start()
    await c.hear("I want to return my earbuds")
    await c.keypad("10001")
    assert c.events.of("caller.verified")[0]["method"] == "zip"


async def test_two_wrong_factors_hand_over_and_change_nothing():
    c = call(JAMES)
    await c.start()
    await c.hear("I want to return my earbuds")
    events = await c.hear("nine nine nine nine nine")
    assert "doesn't match" in said(events)
    events = await c.hear("one two three four five")
    assert "can't confirm it's you" in said(events)
    assert transferred(events) is not None
    assert len(c.events.of("caller.verification_failed")) == 2
    assert await c.shop.returns.returns_of("1003") == []  # no return created


async def test_a_stranger_verifies_against_the_order_not_the_phone():
    c = call(STRANGER)
    await c.start()
    await c.hear("I want to return something")
    await c.hear("it's order ten oh three")
    events = await c.hear("one zero zero zero one")
    assert said(events) == "What's the reason for the return?"  # the answer shows it matched
    assert c.events.of("caller.verified")[0]["customer_id"] == "cust_002"


# --- returns and exchanges ------------------------------------------------------------------


async def test_return_outside_the_window_is_denied_with_the_numbers():
    c = call(MARIA)
    await c.start()
    events = await c.hear("I'd like to return my running shoes")
    assert "delivered thirty-five days ago" in said(events)
    assert "return window for apparel is thirty days" in said(events)
    assert c.events.of("return.denied")[0]["reason"] == "window"
    assert c.events.of("caller.verified") == []  # nothing to change, nothing to verify


async def test_final_sale_is_never_returned():
    c = call(JAMES)
    await c.start()
    events = await c.hear("I want to return the rain jacket")
    assert "final sale" in said(events)
    assert c.events.of("return.denied")[0]["reason"] == "final_sale"


async def test_not_delivered_yet():
    c = call(STRANGER)
    await c.start()
    await c.hear("I want to return order 1001")
    assert c.events.of("return.denied")[0]["reason"] == "not_delivered"


async def test_already_returned():
    c = call(OMAR)
    await c.start()
    events = await c.hear("I want to return the laptop stand")
    assert "already a return" in said(events)
    assert c.events.of("return.denied")[0]["reason"] == "already_returned"


async def test_store_credit_is_offered_before_the_refund():
    c = call(JAMES)
    await c.start()
    await c.say("I want to return my earbuds", "one zero zero zero one")
    events = await c.hear("I just don't need them anymore")
    assert said(events) == (
        "I can give you store credit of eighty-nine dollars right away, or a refund of "
        "eighty-nine dollars to your Mastercard ending in four four four four once we receive "
        "them. Which would you prefer?"
    )
    events = await c.hear("a refund please")
    assert said(events) == (
        "So I'll set up a return of your wireless earbuds with a free label, and refund "
        "eighty-nine dollars to your Mastercard ending in four four four four once we receive "
        "them. Shall I go ahead?"
    )
    assert c.events.of("return.created") == []  # nothing before the caller says yes
    events = await c.hear("yes")
    text = said(events)
    assert "Your return number is R M A, five zero zero one three." in text
    assert "texted you the prepaid return label" in text
    assert "we'll refund eighty-nine dollars" in text and "five to ten business days" in text
    (created,) = c.events.of("return.created")
    assert created["reason_code"] == "changed_mind" and created["resolution"] == "refund"
    (rma,) = await c.shop.returns.returns_of("1003")
    assert rma.rma == "RMA-50013" and rma.label is not None
    (sms,) = c.shop.messenger.sent()
    assert rma.label.url in sms["body"] and "RMA-50013" in sms["body"]
    assert "http" not in text
    assert c.events.of("refund.created") == []  # the refund waits for the warehouse


async def test_store_credit_taken():
    c = call(JAMES)
    await c.start()
    await c.say("I want to return my earbuds", "one zero zero zero one", "changed my mind")
    events = await c.hear("store credit is fine")
    assert "for store credit of eighty-nine dollars. Shall I go ahead?" in said(events)
    events = await c.hear("yes please")
    assert "store credit of eighty-nine dollars is added" in said(events)
    assert c.events.of("return.created")[0]["resolution"] == "store_credit"


async def test_wrong_size_is_offered_the_sizes_in_stock():
    c = call(AISHA)
    await c.start()
    await c.say("I want to return my sweater", "six zero six one four")
    events = await c.hear("it's too small")
    assert "We have small, large" not in said(events)
    assert "We have small and large in stock. Would you like to do that?" in said(events)
    events = await c.hear("yes, the large please")
    assert "for size large, with a free return label. Shall I go ahead?" in said(events)
    assert c.events.of("exchange.created") == []
    events = await c.hear("yes")
    assert "We'll send the large" in said(events)
    (exchange,) = c.events.of("exchange.created")
    assert exchange["variant"] == "L"


async def test_exchange_request_goes_straight_to_the_size():
    c = call(AISHA)
    await c.start()
    events = await c.say("can I exchange the sweater for a large", "six zero six one four")
    assert "size medium, for size large" in said(events)
    await c.hear("yes")
    assert c.events.of("exchange.created")[0]["variant"] == "L"


async def test_a_size_out_of_stock_is_not_offered():
    c = call(AISHA)
    await c.start()
    await c.say("I'd like to exchange my sweater", "six zero six one four")
    assert (await c.shop.orders.stock("AP-WOOL-SWEATER"))["XL"] == 0
    events = await c.hear("extra large")
    assert "Sorry, I didn't catch that. Which size would you like? We have small and large." in (
        said(events)
    )


async def test_faulty_item_is_offered_a_replacement():
    c = call(JAMES)
    await c.start()
    await c.say("I want to return my earbuds", "one zero zero zero one")
    events = await c.hear("they stopped working")
    assert "send you a replacement" in said(events)
    events = await c.hear("yes please")
    assert "send you a replacement once we have them back. Shall I go ahead?" in said(events)
    await c.hear("yes")
    assert c.events.of("replacement.created")
    assert c.events.of("return.created")[0]["reason_code"] == "defective"


# --- refunds --------------------------------------------------------------------------------


async def test_refund_status_says_when_how_much_and_to_what():
    c = call(OMAR)
    await c.start()
    events = await c.hear("has my refund for the laptop stand come through?")
    assert (
        "We refunded eighty dollars to your Mastercard ending in five one zero zero on Monday "
        "the 16th." in said(events)
    )
    assert c.events.of("refund.created") == []


async def test_refund_of_a_return_on_its_way_back_waits_for_the_warehouse():
    c = call(OMAR)
    await c.start()
    events = await c.hear("where's my refund for the headphones")
    text = said(events)
    assert "on its way back to us. UPS last scanned it yesterday." in text
    assert "As soon as the warehouse receives it, we'll refund two hundred fifty dollars" in text
    assert "over two hundred dollars, a member of our team approves it first" in text
    assert c.events.of("refund.created") == []


async def test_refund_request_without_a_return_goes_through_the_return_policy():
    c = call(MARIA)
    await c.start()
    await c.hear("I want a refund for my shoes")
    assert c.events.of("return.denied")[0]["reason"] == "window"
    assert (await refunds(c.shop))[1:] == []  # only the seeded one, 1011's


# --- coupons --------------------------------------------------------------------------------


async def test_each_coupon_reason_is_explained_with_what_works_instead():
    cases = [
        (MARIA, "my coupon summer fifteen doesn't work", "expired", "Summer fifteen expired"),
        (MARIA, "coupon SAVE20 isn't working on order 1001", "minimum_spend", "over fifty"),
        (JAMES, "the promo code welcome ten won't apply", "first_order_only", "first order"),
        (TOM, "my coupon V I P fifty isn't working", "already_used", "only be used once"),
        (MARIA, "my coupon code zap 12 is rejected", "unknown", "can't find a code"),
    ]
    for caller, line, reason, words in cases:
        c = call(caller)
        await c.start()
        events = await c.hear(line)
        (checked,) = c.events.of("coupon.checked")
        assert (checked["reason"], checked["valid"]) == (reason, False), line
        assert words in said(events), said(events)
        assert "What you can use today is" in said(events)


async def test_a_code_heard_with_fifty_for_fifteen_is_found_by_its_twin():
    # Speech to text hears "summer fifteen" as "summer 50" more often than one would like.
    c = call(MARIA)
    await c.start()
    events = await c.hear("my coupon summer 50 doesn't work")
    (checked,) = c.events.of("coupon.checked")
    assert (checked["code"], checked["heard"], checked["reason"]) == (
        "SUMMER15",
        "SUMMER50",
        "expired",
    )
    assert "Summer fifteen expired" in said(events)


async def test_a_code_whose_twin_the_shop_lacks_stays_unknown():
    c = call(MARIA)
    await c.start()
    events = await c.hear("my coupon save 13 doesn't work")
    (checked,) = c.events.of("coupon.checked")
    assert (checked["code"], checked["reason"]) == ("SAVE13", "unknown") and "heard" not in checked
    assert "can't find a code" in said(events)


async def test_a_valid_code_is_explained():
    c = call(STRANGER)
    await c.start()
    events = await c.hear("does coupon save twenty work?")
    assert "Save twenty is valid: it gives twenty percent off orders over fifty dollars." in (
        said(events)
    )


async def test_coupon_code_is_asked_for_with_the_active_codes_as_vocabulary():
    c = call(MARIA)
    await c.start()
    events = await c.hear("why doesn't my coupon work?")
    (hint,) = hints(events)
    assert hint.slot == "coupon_code" and hint.prompt == "Coupon code:"
    assert set(hint.vocabulary) == {"FREESHIP", "SAVE20", "VIP50", "WELCOME10"}


# --- delivery exceptions --------------------------------------------------------------------


async def test_failed_attempt_is_rescheduled_within_the_policy():
    c = call(AISHA)
    await c.start()
    events = await c.hear("I need to reschedule my delivery")
    assert "FedEx tried to deliver your desk lamp yesterday" in said(events)
    events = await c.hear("six zero six one four")
    assert "FedEx can come any day up to Wednesday the 25th" in said(events)
    events = await c.hear("in two months")
    assert "didn't catch" in said(events)
    events = await c.hear("next friday the 27th")
    assert "too far ahead" in said(events)
    events = await c.hear("friday")
    assert "So I'll ask FedEx to deliver your desk lamp on Friday the 20th. Shall I go" in (
        said(events)
    )
    assert carrier_requests(c.shop, "reschedule") == []  # not before the caller says yes
    events = await c.hear("yes please")
    assert "Done. FedEx will bring your desk lamp on Friday the 20th." in said(events)
    assert carrier_requests(c.shop, "reschedule") == [("1006", TODAY.replace(day=20))]
    assert c.events.of("delivery.rescheduled")[0]["day"] == "2025-06-20"


async def test_failed_attempt_from_the_status_offers_a_new_day():
    c = call(AISHA)
    await c.start()
    await c.hear("where is my desk lamp")
    events = await c.hear("yes")
    assert "ZIP code" in said(events)
    assert "FedEx tried" not in said(events)  # already said


async def test_address_change_before_shipping():
    c = call(LENA)
    await c.start()
    await c.say("I need to change the shipping address on my order", "zero two one three nine")
    await c.say("25 Elm Street", "zero two one four zero", "Cambridge, Massachusetts")
    events = await c.hear("yes")
    assert "yoga mat will go to the new address" in said(events)
    order = await c.shop.orders.order("1010")
    assert order is not None and order.shipping_address is not None
    address = order.shipping_address
    assert (address.line1, address.city, address.region, address.postal_code) == (
        "25 Elm Street",
        "Cambridge",
        "MA",
        "02140",
    )
    assert c.events.of("address.changed")


async def test_address_change_after_shipping_asks_the_carrier_to_redirect():
    c = call(MARIA)
    await c.start()
    await c.say("the address on my linen shirt order is wrong", "nine four one one zero")
    await c.say("12 Oak Avenue", "nine four one one five", "San Francisco, California")
    events = await c.hear("yes")
    assert "asked UPS to redirect it" in said(events)
    assert [order for order, _ in carrier_requests(c.shop, "redirect")] == ["1001"]
    assert c.events.of("redirect.requested") and not c.events.of("address.changed")


async def test_address_read_back_can_be_corrected():
    c = call(LENA)
    await c.start()
    await c.say("I need to change my address", "zero two one three nine")
    await c.say("25 Elm Street", "zero two one four zero", "Cambridge, Massachusetts")
    events = await c.hear("no")
    assert "Okay, let's try again. What's the new street address" in said(events)


async def test_lost_parcel_gets_a_claim_a_ticket_and_a_person():
    c = call(TOM)
    await c.start()
    events = await c.hear("my espresso machine never arrived")
    assert "the carrier hasn't scanned it for nine days" in said(events)
    events = await c.hear("seven three three zero one")
    assert "I can open a claim with UPS" in said(events)
    assert carrier_requests(c.shop, "claim") == []
    events = await c.hear("yes")
    text = said(events)
    assert "I've opened a claim with UPS, and a ticket for our team" in text
    assert "Your ticket number is T, one zero zero zero one," in text
    assert "texted it to you" in text
    assert carrier_requests(c.shop, "claim") == [("1007", "lost")]
    assert c.events.of("escalation")[0]["reason"] == "lost"
    events = await c.hear("yes please")
    assert transferred(events) is not None
    assert len(c.shop.helpdesk.tickets()) == 1  # the handoff reuses the claim's ticket
    assert len(c.shop.messenger.sent()) == 1


async def test_lost_parcel_declining_a_person_gets_the_courtesy_code():
    c = call(TOM)
    await c.start()
    await c.say("my espresso machine never arrived", "seven three three zero one", "yes")
    events = await c.hear("no thanks")
    assert "texted you a code for fifteen percent off your next order" in said(events)
    assert c.events.of("coupon.offered")[0]["code"] == "SORRY15"


async def test_not_lost_yet_says_when_to_call_back():
    c = call(TOM)
    await c.start()
    events = await c.hear("I think my coffee grinder is lost")
    assert "held at customs" in said(events)
    assert carrier_requests(c.shop, "claim") == []


async def test_delivered_but_not_received_holds_the_refund_and_opens_a_ticket():
    c = call(LENA)
    await c.start()
    events = await c.hear("it says my vase was delivered but I never got it")
    assert "Your ceramic vase was delivered yesterday." in said(events)
    events = await c.hear("zero two one three nine")
    assert "If it hasn't turned up by Friday the 20th" in said(events)
    assert c.events.of("refund.held")[0]["until"] == "2025-06-20"
    assert c.shop.helpdesk.tickets()[0]["tags"] == ["phone", "not_received"]
    assert c.events.of("refund.created") == []


async def test_damaged_within_seven_days_gets_a_replacement():
    c = call(LENA)
    await c.start()
    events = await c.say("my vase arrived damaged", "zero two one three nine")
    assert "free replacement, or refund fifty-five dollars" in said(events)
    events = await c.hear("a replacement please")
    assert "So I'll send you a free replacement for your ceramic vase" in said(events)
    assert not c.events.of("replacement.created")
    events = await c.hear("yes")
    assert "A replacement is on its way" in said(events)
    assert c.events.of("replacement.created")
    assert carrier_requests(c.shop, "claim") == [("1009", "damaged")]
    assert "texted you a code" in said(events)


async def test_damaged_after_seven_days_goes_to_a_person():
    c = call(JAMES)
    await c.start()
    events = await c.hear("my earbuds arrived broken")
    assert "within seven days of delivery" in said(events)
    assert transferred(events) is not None
    assert c.events.of("replacement.denied")[0]["reason"] == "window"


# --- the outbound delivery confirmation ----------------------------------------------------


async def test_delivery_confirmation_records_the_score():
    c = call(LENA, direction="outbound", purpose="delivery_confirmation", order_ref="1009")
    events = await c.start()
    assert said(events) == (
        "Hi Lena, this is Acme Goods, calling about your order ten oh nine. "
        "Did your ceramic vase arrive?"
    )
    await c.say("yes", "yes it's lovely")
    events = await c.hear("I'd give it a four")
    assert "Thank you" in said(events)
    assert events[-1] == EndCall("caller_done")
    assert c.events.of("csat.recorded")[0] == {"type": "csat.recorded", "order": "1009", "score": 4}


async def test_delivery_confirmation_score_on_the_keypad():
    c = call(LENA, direction="outbound", purpose="delivery_confirmation", order_ref="1009")
    await c.start()
    await c.say("yes", "yes")
    await c.keypad("5")
    assert c.events.of("csat.recorded")[0]["score"] == 5


async def test_delivery_confirmation_damaged_goes_to_the_damaged_procedure():
    c = call(LENA, direction="outbound", purpose="delivery_confirmation", order_ref="1009")
    await c.start()
    events = await c.say("yes", "no, it was cracked")
    assert "I'm so sorry your ceramic vase arrived damaged" in said(events)
    assert "ZIP code" not in said(events)  # we called the number on this order


async def test_delivery_confirmation_not_arrived_goes_to_not_received():
    c = call(LENA, direction="outbound", purpose="delivery_confirmation", order_ref="1009")
    await c.start()
    events = await c.hear("no it didn't")
    assert "Your ceramic vase was delivered yesterday." in said(events)


# --- handoff and goodbye --------------------------------------------------------------------


async def test_handoff_ticket_has_the_summary_and_the_callers_own_words():
    c = call(MARIA)
    await c.start()
    await c.hear("where's my order")
    await c.hear("no")
    events = await c.hear("I'd like to talk to a human please")
    (ticket,) = c.shop.helpdesk.tickets()
    assert "Maria Lopez" in ticket["body"] and "1001 in transit" in ticket["body"]
    assert '"where\'s my order"' in ticket["body"]
    assert '"I\'d like to talk to a human please"' in ticket["body"]
    assert ticket["requester_phone"] == MARIA
    assert ticket["requester_email"] == "maria.lopez@example.com"
    (sms,) = c.shop.messenger.sent()
    assert "T-10001" in sms["body"]
    assert "texted it to you" in said(events)
    transfer = transferred(events)
    assert transfer is not None and "Maria Lopez" in transfer.summary


async def test_handoff_still_happens_when_the_helpdesk_is_down():
    shop = demo_shop()
    helpdesk = Failing(shop.helpdesk)
    c = call(MARIA, shop=shop, swapped={"helpdesk": helpdesk})
    await c.start()
    helpdesk.down = True
    events = await c.hear("operator")
    assert transferred(events) is not None
    assert shop.helpdesk.tickets() == []  # it could file none


async def test_goodbye_after_a_procedure():
    c = call(MARIA)
    await c.start()
    await c.hear("where's my order")
    await c.hear("no")
    events = await c.hear("no, that's all, thanks")
    assert events[-1] == EndCall("caller_done")
