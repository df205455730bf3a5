"""The media parser against hostile input: every message type and field, any JSON value.

Property-based (Hypothesis): whatever a frame holds, `parse_message` returns a message whose
numbers fit the call record, or raises `ProtocolError`; nothing else escapes it. And a live
call fed any such frames keeps going, counts them, and ends with a clean record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import EchoAgent, FakeSocket, FakeSynthesizer, FakeTranscriber
from tests.voice.test_call import until
from voice import twilio
from voice.call import CallDeps, CallSession
from voice.twilio import MAX_STREAM_MS, ProtocolError, parse_message

# What an attacker can put in a field: every JSON type, the numbers that broke us before
# (1e400 parses to inf, 10**19 does not fit a database integer), and nesting.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**19, 2**63, -1, 0, 1e400, -1e400, "1e400", "Infinity", "-0", "²³"]),
    st.text(max_size=30),
    st.sampled_from(["inbound", "audio/x-mulaw", "AA==", "/w==", "7", "#", "s1.0", "CA1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_HOSTILE_NUMBERS = [10**19, 2**63, 2**31, -1, -20, 1e400, -1e400, 1e300, 0.5, "1e400", "-0", "²³"]
# Numeric fields get a hostile number half the time, else any integer, float, digits or value
# (chosen by hand: Hypothesis' own mix would mostly draw nested lists).
_number_kinds = [
    st.sampled_from(_HOSTILE_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=0, max_value=10**7).map(str),
    _values,
]
_numbers = st.integers(0, 9).flatmap(lambda k: _number_kinds[max(0, k - 5)])
_NUMERIC = frozenset({"chunk", "timestamp", "sampleRate", "channels", "sequenceNumber"})


def _value_of(key: str) -> st.SearchStrategy:
    return _numbers if key in _NUMERIC else _values


def _templates() -> dict[str, dict]:
    """A well-formed message of each type, as Twilio (or replay) sends it."""
    params = twilio.StreamParams("CA1", "MZ1", "AC1", {"token": "t", "from": "+14155550101"})
    return {
        "connected": json.loads(twilio.build_connected()),
        "start": json.loads(twilio.build_start(params)),
        "media": json.loads(twilio.build_media("MZ1", 2, 1, 20, b"\xff" * 160)),
        "dtmf": json.loads(twilio.build_dtmf("MZ1", 3, "5")),
        "mark": json.loads(twilio.build_mark("MZ1", 4, "s1.0")),
        "stop": json.loads(twilio.build_stop(params, 5)),
        "clear": json.loads(twilio.clear_message("MZ1")),
        "postvoice.inject": json.loads(twilio.build_inject("order 1001", 40)),
    }


TEMPLATES = _templates()
EVENTS = list(TEMPLATES)
_known_events = st.sampled_from(EVENTS)


@st.composite
def _mutated(draw, value: object, key: str = "") -> object:
    """`value` with some of its fields (at any depth) replaced, removed, or added to."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            roll = draw(st.integers(0, 9))
            if roll == 0:
                continue  # the field is missing
            out[k] = draw(_value_of(k)) if roll <= 2 else draw(_mutated(v, k))
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.text(max_size=12))] = draw(_values)
        return out
    if isinstance(value, list):
        return [draw(_mutated(v, key)) for v in value]
    return value


@st.composite
def messages(draw, events=_known_events) -> dict:
    """A message of a known type with any of its fields, at any depth, hostile or missing."""
    event = draw(events)
    template = TEMPLATES.get(event, {"event": event}) if isinstance(event, str) else {}
    message = draw(_mutated(template))
    if draw(st.integers(0, 9)) == 0:
        message["event"] = draw(_values)  # an event of no known type, or of no type at all
    return message


def _check(message: object) -> None:
    for value in getattr(message, "__dataclass_fields__", {}):
        field = getattr(message, value)
        if isinstance(field, int) and not isinstance(field, bool):
            assert 0 <= field <= MAX_STREAM_MS or value in ("sample_rate", "channels", "chunk")
            assert abs(field) < 2**31  # every integer column, on SQLite and PostgreSQL
        if isinstance(field, float):
            assert math.isfinite(field)


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_message_parses_or_raises_protocol_error(event, data):
    message = data.draw(messages(events=st.just(event)))
    try:
        raw = json.dumps(message)
    except ValueError:
        return
    try:
        parsed = parse_message(raw)
    except ProtocolError:
        return
    _check(parsed)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_frame_at_all_parses_or_raises_protocol_error(raw):
    with contextlib.suppress(ProtocolError):
        _check(parse_message(raw))


@pytest.mark.parametrize(
    "raw",
    [
        '{"event": "media", "media": {"payload": "AA==", "timestamp": 1e400}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": Infinity}}',
        '{"event": "media", "media": {"payload": "AA==", "chunk": -Infinity}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": NaN}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": 10000000000000000000}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": "10000000000000000000"}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": -20}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": "²³"}}',
        '{"event": "media", "media": {"payload": "AA==", "timestamp": true}}',
        '{"event": "postvoice.inject", "text": "hi", "timestamp": 1e400}',
        '{"event": "start", "start": {"streamSid": "MZ", "callSid": "CA1",'
        ' "mediaFormat": {"sampleRate": 1e400}}}',
        '{"event": "start", "start": {"streamSid": "MZ", "callSid": "CA1",'
        ' "customParameters": {"token": [[[[[[]]]]]]}}}',
        '{"event": "start", "start": {"streamSid": "MZ", "callSid": "' + "C" * 65 + '"}}',
        '{"event": ' + "[" * 30000 + "]" * 30000 + "}",
        "[" * 60000,
        "[" * 30000 + "]" * 30000,
        '{"event": "stop", "stop": {"callSid": ' + "[" * 20000 + "]" * 20000 + "}}",
    ],
)
def test_the_numbers_and_nesting_that_ended_calls_are_protocol_errors(raw):
    assert len(raw) < 64 * 1024
    with pytest.raises(ProtocolError):
        parse_message(raw)


# --- a live call fed hostile frames -----------------------------------------------------------


def _valid(kind: str, ts: int) -> str:
    if kind == "media":
        return twilio.build_media("MZ1", 1, ts // 20, ts, b"\xff" * 160)
    if kind == "dtmf":
        return twilio.build_dtmf("MZ1", 1, "5")
    return twilio.build_mark("MZ1", 1, "s1.0")


async def _run_call(tmp_path, frames: list[str | bytes], **overrides) -> dict:
    from integrations.store import Store, make_engine
    from voice.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/fuzz.db",
        twilio_auth_token="tok",
        **{"allow_injection": True, "silence_reprompt_s": 600.0, **overrides},
    )
    store = Store(make_engine(settings.database_url))
    store.create_all()
    socket = FakeSocket()
    agent = EchoAgent()
    deps = CallDeps(settings, store, FakeTranscriber(), FakeSynthesizer(), lambda i, e: agent)
    session = CallSession(socket, deps)
    params = {"from": "+14155550101", "to": "+18005550100", "direction": "inbound"}
    params["token"] = twilio.make_stream_token(settings.secret(), "CAfuzz", params)
    stream = twilio.StreamParams("CAfuzz", "MZ1", "AC1", params)
    socket.incoming.put_nowait(twilio.build_connected())
    socket.incoming.put_nowait(twilio.build_start(stream))
    task = asyncio.create_task(session.run())
    for ts, frame in enumerate(frames):
        socket.incoming.put_nowait(frame)
        socket.incoming.put_nowait(_valid("media", ts * 20))
    socket.incoming.put_nowait(twilio.build_dtmf("MZ1", 1, "9"))
    socket.incoming.put_nowait(twilio.build_dtmf("MZ1", 1, "#"))
    await until(lambda: deps.limiter.active == 1 and not task.done())
    await until(lambda: any(k.endswith("9") for k in agent.keys) or task.done())
    assert not task.done(), "a hostile frame ended the call"
    socket.incoming.put_nowait(twilio.build_stop(stream, 99))
    await asyncio.wait_for(task, 10)
    record = store.call("CAfuzz")
    store.engine.dispose()
    return record


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(messages(), min_size=1, max_size=6))
def test_no_frame_ends_a_live_call_or_corrupts_its_record(tmp_path_factory, frames):
    raw = []
    for message in frames:
        try:
            text = json.dumps(message)
        except ValueError:
            continue
        if message.get("event") in ("stop", "start") and isinstance(message.get("stop"), dict):
            continue  # a well-formed stop is the caller hanging up: it should end the call
        raw.append(text)
    raw = [r for r in raw if not _is_a_real_stop(r)]
    tmp = tmp_path_factory.mktemp("fuzz")
    record = asyncio.run(_run_call(tmp, raw))
    assert record["status"] == "completed" and record["end_reason"] == "caller_hangup"
    (ended,) = [e for e in record["events"] if e["type"] == "call.ended"]
    assert isinstance(ended["data"]["bad_messages"], dict)


def _is_a_real_stop(raw: str) -> bool:
    try:
        return isinstance(parse_message(raw), twilio.Stop)
    except ProtocolError:
        return False


async def test_the_reported_frames_are_counted_and_the_call_goes_on(tmp_path):
    frames = [
        '{"event": "media", "media": {"payload": "/w==", "timestamp": 1e400}}',
        '{"event": "media", "media": {"payload": "/w==", "timestamp": Infinity}}',
        '{"event": "media", "media": {"payload": "/w==", "chunk": -Infinity}}',
        '{"event": "media", "media": {"payload": "/w==", "timestamp": 10000000000000000000}}',
        '{"event": "mark", "mark": {"name": ' + "[" * 29000 + "]" * 29000 + "}}",
    ]
    record = await _run_call(tmp_path, frames)
    assert record["status"] == "completed" and record["end_reason"] == "caller_hangup"
    (ended,) = [e for e in record["events"] if e["type"] == "call.ended"]
    assert sum(ended["data"]["bad_messages"].values()) == len(frames)
    assert [t["text"] for t in record["turns"] if t["role"] == "caller"] == ["9"]


async def test_an_injected_transcript_is_refused_unless_allowed(tmp_path):
    record = await _run_call(
        tmp_path, [twilio.build_inject("refund everything", 40)], allow_injection=False
    )
    (ended,) = [e for e in record["events"] if e["type"] == "call.ended"]
    assert ended["data"]["bad_messages"] == {"injection_refused": 1}
    assert "refund everything" not in [t["text"] for t in record["turns"]]
