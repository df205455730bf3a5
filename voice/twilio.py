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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Hangup, Parameter, Stream, VoiceResponse

__all__ = [
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


def _require(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ProtocolError("missing_field", f"{where} has no '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        raise ProtocolError("bad_field", f"{where}.{key} is not {kind.__name__}")
    return value


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProtocolError("bad_field", f"{where} is not a number") from None


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
    if not isinstance(data, dict):
        raise ProtocolError("invalid_json", "message is not a JSON object")
    event = data.get("event")
    if event == "media":
        media = _require(data, "media", dict, "message")
        return Media(
            track=str(media.get("track", "inbound")),
            chunk=_int(media.get("chunk", 0), "media.chunk"),
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
            raise ProtocolError("bad_field", f"dtmf.digit {digit!r} is not a keypad digit")
        return Dtmf(digit=digit)
    if event == "start":
        start = _require(data, "start", dict, "message")
        fmt = start.get("mediaFormat") or {}
        params = start.get("customParameters") or {}
        if not isinstance(params, dict) or not isinstance(fmt, dict):
            raise ProtocolError("bad_field", "start.customParameters/mediaFormat malformed")
        return Start(
            stream_sid=_require(start, "streamSid", str, "start"),
            call_sid=_require(start, "callSid", str, "start"),
            account_sid=str(start.get("accountSid", "")),
            tracks=tuple(str(t) for t in start.get("tracks") or ("inbound",)),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            encoding=str(fmt.get("encoding", "audio/x-mulaw")),
            sample_rate=_int(fmt.get("sampleRate", 8000), "start.mediaFormat.sampleRate"),
            channels=_int(fmt.get("channels", 1), "start.mediaFormat.channels"),
        )
    if event == "stop":
        stop = data.get("stop") or {}
        return Stop(call_sid=str(stop.get("callSid", "")) if isinstance(stop, dict) else "")
    if event == "connected":
        return Connected(
            protocol=str(data.get("protocol", "")), version=str(data.get("version", ""))
        )
    if event == "clear":
        return Clear(stream_sid=str(data.get("streamSid", "")))
    if event == "postvoice.inject":
        text_value = _require(data, "text", str, "message")
        ts = data.get("timestamp")
        return Inject(text=text_value, timestamp=None if ts is None else _int(ts, "timestamp"))
    if event is None:
        raise ProtocolError("missing_field", "message has no 'event'")
    raise ProtocolError("unknown_event", f"unknown event {str(event)[:40]!r}")


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


def make_stream_token(secret: bytes, call_sid: str, params: Mapping[str, str]) -> str:
    """A token binding the media socket to this CallSid and the call facts we passed along.

    It is an HMAC, so any instance holding the same secret verifies it without shared state.
    """
    digest = hmac.new(secret, _token_material(call_sid, params), hashlib.sha256).hexdigest()
    return digest[:40]


def verify_stream_token(secret: bytes, call_sid: str, params: Mapping[str, str]) -> bool:
    """True when `params['token']` was issued by us for this CallSid and these parameters."""
    token = params.get("token", "")
    return hmac.compare_digest(token, make_stream_token(secret, call_sid, params))


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
