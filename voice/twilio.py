"""Twilio's wire format, and nothing else: Media Streams messages, stream tokens, signatures, TwiML.

Inbound JSON becomes typed dataclasses through `parse_message`, which raises `ProtocolError`
(with a short `kind` for logging) on anything malformed; the caller decides to log and carry
on. Outbound messages are built by small functions returning JSON text. The same module also
builds the messages Twilio sends, for `replay`, which plays Twilio's part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Hangup, Parameter, Stream, VoiceResponse

__all__ = [
    "MAX_STREAM_MS",
    "STREAM_TOKEN_TTL_S",
    "Clear",
    "Connected",
    "Dtmf",
    "Inject",
    "Mark",
    "Media",
    "ProtocolError",
    "Start",
    "Stop",
    "StreamParams",
    "build_connected",
    "build_dtmf",
    "build_inject",
    "build_mark",
    "build_media",
    "build_start",
    "build_stop",
    "clear_message",
    "compute_signature",
    "connect_twiml",
    "dial_twiml",
    "hangup_twiml",
    "make_stream_token",
    "mark_message",
    "media_message",
    "parse_message",
    "parse_stream_twiml",
    "valid_signature",
    "verify_stream_token",
]


class ProtocolError(ValueError):
    """A message that does not follow the protocol. `kind` groups errors for logging once."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Connected:
    """First message on the socket."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    """Stream metadata, with the `<Parameter>`s of our TwiML in `custom_parameters`."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: Mapping[str, str]
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Media:
    """20 ms of caller audio (µ-law bytes). `timestamp` is ms since the stream started."""

    track: str
    chunk: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    """One keypad digit."""

    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    """Twilio has played everything we sent before the mark of this name."""

    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The stream (and usually the call) has ended."""

    call_sid: str


@dataclass(frozen=True, slots=True)
class Clear:
    """Sent to Twilio: drop buffered audio. Parsed only on the replay side."""

    stream_sid: str


@dataclass(frozen=True, slots=True)
class Inject:
    """Not Twilio: a transcript injected by `replay` (accepted only when allowed)."""

    text: str
    timestamp: int | None


Message = Connected | Start | Media | Dtmf | Mark | Stop | Clear | Inject

_DTMF_DIGITS = frozenset("0123456789*#ABCD")


# Stream time fits every integer column of the call record (SQLite and PostgreSQL's int4)
# with room to spare: a day, where Twilio ends a call after four hours at most.
MAX_STREAM_MS = 24 * 3600 * 1000
_MAX_COUNT = 2**31 - 1  # chunk numbers, sample rates and channel counts
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")


def _require(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ProtocolError("missing_field", f"{where} has no '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        raise ProtocolError("bad_field", f"{where}.{key} is not {kind.__name__}")
    return value


def _int(value: Any, where: str, high: int = MAX_STREAM_MS) -> int:
    """A whole number in [0, high], sent as a JSON number or a string of ASCII digits.

    Anything else (1e400 and Infinity parse to float infinities, 10**19 overflows a database
    column, "²³" passes `str.isdigit`) is a `bad_field`, never an exception of another kind.
    """
    if isinstance(value, bool):
        raise ProtocolError("bad_field", f"{where} is not a number")
    if isinstance(value, str):
        if not _DIGITS.match(value):
            raise ProtocolError("bad_field", f"{where} is not a number")
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise ProtocolError("bad_field", f"{where} is not a number")
    if not 0 <= number <= high:
        raise ProtocolError("bad_field", f"{where} is out of range")
    return number


def _str(obj: dict[str, Any], key: str, where: str, default: str = "") -> str:
    """An optional text field: absent or null gives `default`; any other type is a
    `bad_field` (never `str()` of a nested value, which can recurse without end)."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProtocolError("bad_field", f"{where}.{key} is not text")
    return value


def _sid(obj: dict[str, Any], key: str, where: str) -> str:
    """A Twilio sid: it names rows and files, so only letters, digits, _ and -."""
    value = _require(obj, key, str, where)
    if not _SID.match(value):
        raise ProtocolError("bad_field", f"{where}.{key} is not a sid")
    return value


def _texts(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ProtocolError("bad_field", f"{where} is not a map of text")
    return dict(value)


def _decode_payload(media: dict[str, Any]) -> bytes:
    payload = _require(media, "payload", str, "media")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_base64", "media.payload is not valid base64") from None


def parse_message(text: str | bytes, *, max_bytes: int = 64 * 1024) -> Message:
    """Parse one WebSocket text frame from Twilio (or, for replay, from our server)."""
    if isinstance(text, bytes):
        raise ProtocolError("binary_frame", f"binary frame of {len(text)} bytes")
    if len(text) > max_bytes:
        raise ProtocolError("oversized", f"message of {len(text)} bytes exceeds {max_bytes}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("invalid_json", str(exc)) from None
    except RecursionError:  # ~60 KB of brackets fits under max_bytes and nests too deep
        raise ProtocolError("invalid_json", "nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_json", "message is not a JSON object")
    return _typed(data)


def _typed(data: dict[str, Any]) -> Message:
    """The message of one decoded JSON object."""
    event = data.get("event")
    if event == "media":
        media = _require(data, "media", dict, "message")
        return Media(
            track=_str(media, "track", "media", "inbound"),
            chunk=_int(media.get("chunk", 0), "media.chunk", _MAX_COUNT),
            timestamp=_int(media.get("timestamp", 0), "media.timestamp"),
            payload=_decode_payload(media),
        )
    if event == "mark":
        mark = _require(data, "mark", dict, "message")
        return Mark(name=_require(mark, "name", str, "mark"))
    if event == "dtmf":
        dtmf = _require(data, "dtmf", dict, "message")
        digit = _require(dtmf, "digit", str, "dtmf")
        if digit not in _DTMF_DIGITS:
            raise ProtocolError("bad_field", f"dtmf.digit {digit[:10]!r} is not a keypad digit")
        return Dtmf(digit=digit)
    if event == "start":
        return _start(_require(data, "start", dict, "message"))
    if event == "stop":
        stop = data.get("stop") or {}
        if not isinstance(stop, dict):
            raise ProtocolError("bad_field", "stop is not an object")
        return Stop(call_sid=_str(stop, "callSid", "stop"))
    if event == "connected":
        return Connected(
            protocol=_str(data, "protocol", "message"), version=_str(data, "version", "message")
        )
    if event == "clear":
        return Clear(stream_sid=_str(data, "streamSid", "message"))
    if event == "postvoice.inject":
        text_value = _require(data, "text", str, "message")
        ts = data.get("timestamp")
        return Inject(text=text_value, timestamp=None if ts is None else _int(ts, "timestamp"))
    if event is None:
        raise ProtocolError("missing_field", "message has no 'event'")
    if not isinstance(event, str):
        raise ProtocolError("bad_field", "event is not text")
    raise ProtocolError("unknown_event", f"unknown event {event[:40]!r}")


def _start(start: dict[str, Any]) -> Start:
    fmt = start.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise ProtocolError("bad_field", "start.mediaFormat is not an object")
    tracks = start.get("tracks") or ["inbound"]
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise ProtocolError("bad_field", "start.tracks is not a list of text")
    return Start(
        stream_sid=_sid(start, "streamSid", "start"),
        call_sid=_sid(start, "callSid", "start"),
        account_sid=_str(start, "accountSid", "start"),
        tracks=tuple(tracks),
        custom_parameters=_texts(start.get("customParameters"), "start.customParameters"),
        encoding=_str(fmt, "encoding", "start.mediaFormat", "audio/x-mulaw"),
        sample_rate=_int(fmt.get("sampleRate", 8000), "start.mediaFormat.sampleRate", _MAX_COUNT),
        channels=_int(fmt.get("channels", 1), "start.mediaFormat.channels", _MAX_COUNT),
    )


# --- What we send to Twilio -------------------------------------------------------------------


def media_message(stream_sid: str, mulaw: bytes) -> str:
    """Audio for Twilio to play (8 kHz µ-law)."""
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    """Ask Twilio to echo `name` once everything sent before it has been played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Drop whatever audio Twilio still has buffered (barge-in)."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})


# --- What Twilio sends (used by replay) -------------------------------------------------------


@dataclass
class StreamParams:
    """What `replay` needs to open a stream like Twilio does."""

    call_sid: str
    stream_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)


def build_connected() -> str:
    """Twilio's first message."""
    return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def build_start(p: StreamParams, seq: int = 1) -> str:
    """Twilio's `start` message."""
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "streamSid": p.stream_sid,
            "start": {
                "accountSid": p.account_sid,
                "streamSid": p.stream_sid,
                "callSid": p.call_sid,
                "tracks": ["inbound"],
                "customParameters": p.custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def build_media(stream_sid: str, seq: int, chunk: int, timestamp: int, mulaw: bytes) -> str:
    """Twilio's `media` message carrying 20 ms of caller audio."""
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp),
                "payload": base64.b64encode(mulaw).decode("ascii"),
            },
        }
    )


def build_dtmf(stream_sid: str, seq: int, digit: str) -> str:
    """Twilio's `dtmf` message."""
    return json.dumps(
        {
            "event": "dtmf",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def build_mark(stream_sid: str, seq: int, name: str) -> str:
    """Twilio echoing one of our marks."""
    return json.dumps(
        {
            "event": "mark",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "mark": {"name": name},
        }
    )


def build_stop(p: StreamParams, seq: int) -> str:
    """Twilio's `stop` message."""
    return json.dumps(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "streamSid": p.stream_sid,
            "stop": {"accountSid": p.account_sid, "callSid": p.call_sid},
        }
    )


def build_inject(text: str, timestamp: int) -> str:
    """Our own extension for replay: a transcript standing in for caller audio."""
    return json.dumps({"event": "postvoice.inject", "text": text, "timestamp": timestamp})


# --- Stream tokens ----------------------------------------------------------------------------

_TOKEN_FIELDS = ("from", "to", "direction", "purpose", "order")


def _token_material(call_sid: str, params: Mapping[str, str]) -> bytes:
    parts = [call_sid] + [params.get(k, "") for k in _TOKEN_FIELDS]
    return "\x1f".join(parts).encode()


STREAM_TOKEN_TTL_S = 300
"""How long a stream token may wait for its socket: Twilio connects within a second or two."""


def _token_mac(secret: bytes, call_sid: str, params: Mapping[str, str], expires: int) -> str:
    material = _token_material(call_sid, params) + b"\x1f" + str(expires).encode()
    return hmac.new(secret, material, hashlib.sha256).hexdigest()[:40]


def make_stream_token(
    secret: bytes,
    call_sid: str,
    params: Mapping[str, str],
    *,
    now: float | None = None,
    ttl_s: float = STREAM_TOKEN_TTL_S,
) -> str:
    """A token binding the media socket to this CallSid and the call facts we passed along,
    valid for `ttl_s`: `<expires>.<mac>`.

    It is an HMAC over the facts and the expiry, so any instance holding the same secret
    verifies it without shared state; that it is used once is the store's to enforce
    (`Store.claim_stream`).
    """
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{expires}.{_token_mac(secret, call_sid, params, expires)}"


def verify_stream_token(
    secret: bytes, call_sid: str, params: Mapping[str, str], *, now: float | None = None
) -> bool:
    """True when `params['token']` was issued by us for this CallSid and these parameters,
    and has not expired."""
    expires, _, mac = params.get("token", "").partition(".")
    if not _DIGITS.match(expires) or int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac, _token_mac(secret, call_sid, params, int(expires)))


# --- Webhook signatures -----------------------------------------------------------------------


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's X-Twilio-Signature for a form POST to `url`."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def valid_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Check X-Twilio-Signature against the URL Twilio was configured with."""
    if not signature:
        return False
    return RequestValidator(auth_token).validate(url, dict(params), signature)


# --- TwiML ------------------------------------------------------------------------------------


def connect_twiml(stream_url: str, parameters: Mapping[str, str], action_url: str) -> str:
    """`<Connect action=…><Stream url=…>` with our parameters: a bidirectional media stream.

    When the stream closes, Twilio fetches `action_url` for what to do next (dial a person,
    or hang up).
    """
    response = VoiceResponse()
    connect = Connect(action=action_url, method="POST")
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.append(Parameter(name=name, value=value))
    connect.append(stream)
    response.append(connect)
    return str(response)


def dial_twiml(number: str) -> str:
    """Hand the caller to a person."""
    response = VoiceResponse()
    response.dial(number)
    return str(response)


def hangup_twiml() -> str:
    """End the call."""
    response = VoiceResponse()
    response.append(Hangup())
    return str(response)


def parse_stream_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    """The stream URL and parameters of a `<Connect><Stream>` response (what Twilio reads)."""
    root = ElementTree.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    if stream is None:
        raise ValueError("TwiML has no <Connect><Stream>")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), params
