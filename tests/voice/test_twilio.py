import base64
import json

import pytest

from voice import twilio
from voice.twilio import ProtocolError, parse_message


def test_parse_each_inbound_message():
    assert isinstance(parse_message(twilio.build_connected()), twilio.Connected)
    params = twilio.StreamParams("CA1", "MZ1", "AC1", {"token": "t", "from": "+1415"})
    start = parse_message(twilio.build_start(params))
    assert start.call_sid == "CA1" and start.stream_sid == "MZ1"
    assert start.custom_parameters["from"] == "+1415"
    assert (start.encoding, start.sample_rate) == ("audio/x-mulaw", 8000)
    media = parse_message(twilio.build_media("MZ1", 3, 2, 40, b"\xff" * 160))
    assert media.payload == b"\xff" * 160 and media.timestamp == 40 and media.chunk == 2
    assert parse_message(twilio.build_dtmf("MZ1", 4, "7")).digit == "7"
    assert parse_message(twilio.build_mark("MZ1", 5, "s1.0")).name == "s1.0"
    assert parse_message(twilio.build_stop(params, 6)).call_sid == "CA1"


def test_outbound_messages_are_what_twilio_expects():
    media = json.loads(twilio.media_message("MZ9", b"\x00\x01"))
    assert media == {
        "event": "media",
        "streamSid": "MZ9",
        "media": {"payload": base64.b64encode(b"\x00\x01").decode()},
    }
    assert json.loads(twilio.mark_message("MZ9", "m")) == {
        "event": "mark",
        "streamSid": "MZ9",
        "mark": {"name": "m"},
    }
    assert json.loads(twilio.clear_message("MZ9")) == {"event": "clear", "streamSid": "MZ9"}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (json.dumps({"event": "telepathy"}), "unknown_event"),
        (json.dumps({"no": "event"}), "missing_field"),
        (json.dumps({"event": "media"}), "missing_field"),
        (json.dumps({"event": "media", "media": {"track": "inbound"}}), "missing_field"),
        (json.dumps({"event": "media", "media": {"payload": "!!!notbase64"}}), "bad_base64"),
        (
            json.dumps({"event": "media", "media": {"payload": "AA==", "timestamp": "x"}}),
            "bad_field",
        ),
        (json.dumps({"event": "dtmf", "dtmf": {"digit": "Z"}}), "bad_field"),
        (json.dumps({"event": "mark", "mark": {}}), "missing_field"),
        (b"\x00\x01binary", "binary_frame"),
        ("x" * (64 * 1024 + 1), "oversized"),
    ],
)
def test_malformed_messages_raise_protocol_error_with_a_kind(raw, kind):
    with pytest.raises(ProtocolError) as err:
        parse_message(raw)
    assert err.value.kind == kind


def test_stream_token_binds_call_and_parameters():
    secret = b"s3cret"
    params = {"from": "+14155550101", "to": "+18005550100", "direction": "inbound"}
    token = twilio.make_stream_token(secret, "CA1", params)
    assert twilio.verify_stream_token(secret, "CA1", {**params, "token": token})
    assert not twilio.verify_stream_token(secret, "CA2", {**params, "token": token})
    assert not twilio.verify_stream_token(b"other", "CA1", {**params, "token": token})
    forged = {**params, "from": "+14155550102", "token": token}
    assert not twilio.verify_stream_token(secret, "CA1", forged)
    assert not twilio.verify_stream_token(secret, "CA1", params)


def test_signature_is_computed_on_the_public_url():
    url = "https://shop.example.com/twilio/voice"
    form = {"CallSid": "CA1", "From": "+14155550101"}
    sig = twilio.compute_signature("tok", url, form)
    assert twilio.valid_signature("tok", url, form, sig)
    assert not twilio.valid_signature("tok", "http://10.0.0.5:8080/twilio/voice", form, sig)
    assert not twilio.valid_signature("tok", url, {**form, "From": "+1999"}, sig)
    assert not twilio.valid_signature("other", url, form, sig)
    assert not twilio.valid_signature("tok", url, form, None)


def test_connect_twiml_round_trips():
    xml = twilio.connect_twiml(
        "wss://shop.example.com/twilio/media",
        {"token": "abc", "from": "+1415"},
        "https://shop.example.com/twilio/after-stream",
    )
    assert "<Connect" in xml and "after-stream" in xml
    url, params = twilio.parse_stream_twiml(xml)
    assert url == "wss://shop.example.com/twilio/media"
    assert params == {"token": "abc", "from": "+1415"}
    assert "<Dial>+18005550199</Dial>" in twilio.dial_twiml("+18005550199")
    assert "<Hangup" in twilio.hangup_twiml()
