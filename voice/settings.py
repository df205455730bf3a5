"""Settings, read once from the environment (prefix `POSTVOICE_`) at the entry point."""

from __future__ import annotations

import functools
import hashlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialog.events import FILLER_AFTER_S
from integrations.protocols import DEFAULT_HUMAN_NUMBER

log = logging.getLogger(__name__)

__all__ = ["Settings", "setting_default"]

# Only ever used with --dev: a fixed secret so a developer's tokens survive a restart.
_DEV_STREAM_SECRET = "postvoice-dev-stream-secret"


class Settings(BaseSettings):
    """Everything a merchant configures. Each field is `POSTVOICE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="POSTVOICE_", env_file=".env", extra="ignore")
    _public_url_given: bool = PrivateAttr(default=False)

    # Telephony
    twilio_auth_token: SecretStr | None = None
    twilio_account_sid: str | None = None
    public_url: str = Field(
        default="", description="The URL Twilio reaches us at; default http://<host>:<port>."
    )
    stream_secret: SecretStr | None = Field(
        default=None,
        description="Signs per-call stream tokens; defaults to one derived from "
        "the Twilio auth token, so every instance sharing that token verifies them.",
    )
    label_secret_key: SecretStr | None = Field(
        default=None,
        alias="POSTVOICE_LABEL_SECRET",
        description="Signs return-label links; defaults to one derived from the stream secret.",
    )
    stream_token_ttl_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a stream token waits for its socket (each is used once).",
    )
    stream_start_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="A media socket that sends no `start` this long after opening is closed.",
    )
    dev: bool = False
    stream_signature_required: bool = Field(
        default=True, description="Also check X-Twilio-Signature on the media socket's handshake."
    )
    allow_injection: bool = Field(
        default=False, description="Accept injected transcripts on the media socket (replay)."
    )

    # Real providers (empty: the embedded demo shop stands in); see README "Connecting a real shop"
    http_connect_timeout_s: float = 3.0
    http_read_timeout_s: float = 10.0
    tracking_deadline_s: float = 1.5
    shopify_shop_domain: str = ""
    shopify_access_token: SecretStr | None = None
    shopify_api_version: str = "2025-01"
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = ""
    twilio_voice_number: str = ""
    twilio_from_number: str = ""
    twilio_whatsapp_number: str = Field(
        default="",
        description="The shop's WhatsApp sender (E.164, without whatsapp:); empty: WhatsApp off.",
    )
    twilio_whatsapp_template_sid: str = Field(
        default="",
        description="ContentSid of an approved WhatsApp template whose one variable {{1}} is "
        "the message, sent outside the 24-hour window; empty: such a text goes by SMS.",
    )
    zendesk_subdomain: str = ""
    zendesk_email: str = ""
    zendesk_api_token: SecretStr | None = None
    carrier_provider: str = ""
    carrier_api_key: SecretStr | None = None
    aftership_api_version: str = "2024-04"
    label_provider: str = ""
    label_api_key: SecretStr | None = None
    label_carrier: str = ""
    label_service: str = ""
    return_name: str = ""
    return_company: str = ""
    return_street1: str = ""
    return_street2: str = ""
    return_city: str = ""
    return_state: str = ""
    return_zip: str = ""
    return_country: str = "US"
    return_phone: str = ""

    # The outbox: side effects that leave the machine are delivered by a worker
    worker_in_process: bool = True
    worker_poll_s: float = 1.0
    outbox_max_attempts: int = 8
    outbox_backoff_cap_s: float = 300.0

    # Outbound calls and proactive alerts (see README "Outbound calls")
    outbound_delay_days: int = Field(
        default=1, description="Call to confirm a delivery this many days after it."
    )
    quiet_hours: str = Field(
        default="20:00-09:00", description="No calls in this window, in the customer's time zone."
    )
    outbound_max_attempts: int = 3
    outbound_retry_minutes: str = Field(
        default="30,120", description="Waits before the 2nd, 3rd, … attempt (no-answer, busy)."
    )
    outbound_per_customer_days: int = Field(
        default=7, description="At most one order's call per customer in this many days."
    )
    alert_channel: str = Field(default="sms", pattern="^(sms|call)$")
    scheduler_interval_s: float = 300.0

    # Server and storage
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite:///var/postvoice.db"
    admin_token: SecretStr | None = Field(
        default=None,
        description="The bootstrap admin: logs in (and is a Bearer token) as `admin-token`. "
        "Named accounts come from `postvoice users`.",
    )
    oidc_issuer: str = Field(
        default="",
        description="An OpenID Connect issuer (its /.well-known/openid-configuration is read); "
        "empty: no single sign-on.",
    )
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    oidc_display_name: str = Field(default="single sign-on", description="On the login button.")
    oidc_new_user_role: str = Field(
        default="",
        pattern="^(|viewer|agent|approver|admin)$",
        description="Role of an account made at first sign-in; empty: only existing accounts "
        "(matched by subject or verified email) may sign in.",
    )

    # The shop
    flows_dir: Path | None = Field(
        default=None, description="SOP flows (YAML); default: the shipped dialog/flows."
    )
    policy_file: Path | None = Field(
        default=None, description="Return/refund policy (YAML); default: dialog/policy.yaml."
    )
    shop_name: str = "Northwind Goods"
    support_number: str = "+18005550100"
    human_number: str = DEFAULT_HUMAN_NUMBER

    # Photos of damage
    photo_link_hours: float = Field(
        default=72, gt=0, description="How long a texted link for photos of damage works."
    )
    photo_max_mb: float = Field(default=10, gt=0, le=50, description="The largest photo taken.")
    photo_max_count: int = Field(default=5, ge=1, le=5, description="Photos one request takes.")

    # Text messages (see README "Text messages (SMS and WhatsApp)")
    text_quiet_hours: float = Field(
        default=24, gt=0, description="A text conversation this quiet is over."
    )
    text_flood_count: int = Field(
        default=10,
        ge=1,
        description="More messages than this from one number within "
        "`text_flood_seconds` get one polite reply; the rest are recorded, not answered.",
    )
    text_flood_seconds: float = Field(default=60, gt=0)

    # Speech to text
    stt_model_dir: Path | None = Field(
        default=None,
        description="A faster-whisper (CTranslate2) model directory; default: the bundled tiny.en.",
    )
    stt_threads: int = Field(default=1, ge=1, description="Threads one transcription uses.")
    stt_workers: int = Field(
        default=2, ge=1, description="Transcriptions at once (calls take turns for them)."
    )
    stt_beam_size: int = Field(
        default=5,
        ge=1,
        description="Beam search width; 5 hears the fixture clips right where greedy (1) "
        "slips, for ~70 ms more CPU per utterance in the short windows.",
    )
    stt_compute_type: str = "int8"
    stt_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="How much lower than the rest of the server speech to text runs (thread "
        "niceness), so audio going out and speech synthesis never queue behind a decode.",
    )
    stt_windows_s: str = Field(
        default="15,20,30",
        pattern=r"^\d+(,\d+)*$",
        description="Encoder windows (seconds) an utterance is padded to, the shortest that "
        "fits; 30 is Whisper's own (slowest, every utterance padded to 30 s).",
    )
    stt_hypotheses: int = Field(
        default=5,
        ge=1,
        description="Hypotheses kept from the beam (at most its width); above 1 the one that "
        "fits what the dialog asked for may win (dialog.nlu.rescore): in the caller voices 5 "
        "got 81 more order numbers and second factors right and 1 fewer, for ~7% more CPU; "
        "1: the beam's best, always.",
    )
    stt_second_model_dir: str = Field(
        default="auto",
        description="A larger model for what tiny.en is unsure of (see stt_second_digits); "
        "`auto`: the Whisper base `make install` assembles (left out, with a warning, where it "
        "is not assembled; named explicitly, its absence stops the server); a model directory; "
        "empty: none.",
    )
    stt_second_below: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="With a second model: the first transcript's confidence under which it "
        "decodes again (the more confident transcript is kept).",
    )
    stt_second_digits: bool = Field(
        default=True,
        description="With a second model: it hears only answers to a number question (order "
        "number, ZIP, phone, second factor), in digits alone, where the first heard no value or "
        "only guessed one in digits alone; its value is a guess the dialog reads back. On the "
        "test caller voices with Whisper base: order numbers 52.9 -> 57.6%, ZIP codes 51.0 -> "
        "54.5%, phone numbers 40.7 -> 44.4%, for ~300 ms CPU on about half of those answers "
        "and ~245 MB more memory (false: a second model decodes again any utterance the first "
        "is unsure of, below stt_second_below; not kept, it raised word errors on the fixtures).",
    )
    stt_digits_fallback: bool = Field(
        default=True,
        description="When the dialog waits for a number and the transcript holds none, decode "
        "the same audio again in digits alone and keep a value the dialog reads in them "
        "(voice.stt_digits; marked so the dialog can read it back): on the test caller voices "
        "19 more order numbers and 2 more ZIP codes right of 360 and 180, none broken, 12 "
        "wrong values where there was none, for ~115 ms per use (a quarter of the first decode).",
    )

    # Text to speech
    tts_model: Path | None = Field(
        default=None,
        description="A piper .onnx voice (its .onnx.json beside it); default: the "
        "bundled en_US-joe-medium.",
    )
    tts_workers: int = 1
    tts_threads: int = Field(
        default=1, ge=0, description="onnxruntime threads per synthesis (0: one per core)."
    )
    tts_length_scale: float = 1.0

    # Turn taking
    vad_aggressiveness: int = 2
    vad_pre_roll_ms: int = 300
    vad_min_speech_ms: int = 160
    vad_end_of_turn_ms: int = 600
    vad_pause_ms: int = Field(
        default=160,
        ge=0,
        description="A pause this long starts transcribing what the caller said so far; kept "
        "if they say no more (0: transcribe only once the turn is over).",
    )
    vad_quick_end_of_turn_ms: int = Field(
        default=480,
        ge=0,
        description="Silence that ends a short answer (to a yes/no question, a rating, a "
        "choice) early when its transcript is ready and reads as finished (0: never early).",
    )
    vad_long_answer_end_of_turn_ms: int = Field(
        default=800,
        ge=0,
        description="Silence that ends the turn when the agent asked for something read out "
        "in pieces (order number, email, phone, ZIP code).",
    )
    vad_unfinished_end_of_turn_ms: int = Field(
        default=1500,
        ge=0,
        description="Silence that ends a turn whose transcript so far trails off (\"I'd like "
        'to return the…", "and also…", "um"): callers pause mid-sentence (0: never held).',
    )
    turn_complete_end_of_turn_ms: int = Field(
        default=300,
        ge=0,
        description="Silence that ends a turn whose transcript so far is a whole answer to what "
        "the agent asked: an order number, a ZIP code, a phone number, an email, a yes or no, "
        "a rating (0: off, the waits above alone).",
    )
    turn_request_end_of_turn_ms: int = Field(
        default=300,
        ge=0,
        description="Silence that ends an answer to an open question that reads as a whole "
        'request ("where is my order"), unless this caller has paused longer mid-sentence '
        "(0: off).",
    )
    turn_hold_partial_digits: bool = Field(
        default=True,
        description='A number asked for and only partly read ("one zero …") is held like a '
        "sentence that trails off, up to the unfinished wait (false: the long-answer wait).",
    )
    turn_pace: bool = Field(
        default=False,
        description="Wait out this caller's own longest mid-utterance pause (plus 200 ms) where "
        "the transcript cannot tell whether they are done (false: the fixed waits).",
    )
    filler_after_ms: int = Field(
        default=round(FILLER_AFTER_S * 1000),
        ge=0,
        description='A step\'s "one moment" (say_first) is said only when its lookup has not '
        "answered this long after it began, so a fast answer comes first (0: always say it "
        "before the lookup).",
    )
    answer_first: bool = Field(
        default=True,
        description='A reply\'s opening acknowledgement ("Thank you.", "Okay.") is left out on a '
        "call when the sentence after it is ready within the filler wait, so the caller hears "
        "the answer first; said as before when nothing follows or the next step is slow "
        "(false: always said).",
    )
    vad_max_utterance_s: float = 30.0
    vad_barge_in_min_ms: int = Field(
        default=700,
        ge=0,
        description="Speech over the agent this long stops it, whatever it says; shorter, it "
        'stops the agent unless it is a backchannel ("uh-huh", "okay", "mm") '
        "(0: any speech over the agent stops it at once).",
    )
    vad_backchannel_max_ms: int = Field(
        default=1500,
        ge=0,
        description="Speech over the agent whose transcript at a pause reads as a backchannel "
        '("uh … huh" said slowly, "okay, yeah") may go on this long before it stops the agent; '
        "more words at a later pause stop it then (0, or no more than the barge-in wait: off).",
    )
    silence_reprompt_s: float = 5.0
    dtmf_timeout_s: float = 3.0
    max_message_bytes: int = 64 * 1024

    # Recording (off by default; when on, the caller hears a consent notice first)
    recording: bool = False
    recordings_dir: Path = Field(
        default=Path("var/recordings"),
        description="Where call recordings go, one `<CallSid>.wav` (stereo: caller, agent) each.",
    )
    recording_notice: str = "This call is recorded so we can improve our service."

    # Capacity (see README "Latency and capacity")
    max_calls: int = Field(default=12, ge=1, description="Concurrent calls this instance takes.")
    max_calls_per_caller: int = Field(
        default=2, ge=1, description="Concurrent calls from one caller number."
    )
    max_call_s: float = Field(
        default=1800.0, gt=0, description="A call is wrapped up politely after this long."
    )
    busy_message: str = Field(
        default="We're sorry, all of our lines are busy right now. "
        "Please call back in a few minutes. Goodbye.",
        description="What a caller hears above max_calls or max_calls_per_caller.",
    )
    stt_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="A transcription taking longer counts as failed (the caller hears an apology).",
    )
    tts_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="A synthesis taking longer counts as failed (a recorded apology plays).",
    )

    @property
    def public_url_given(self) -> bool:
        """Whether POSTVOICE_PUBLIC_URL was set (else it is a guess from host and port)."""
        return self._public_url_given

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        self._public_url_given = bool(self.public_url)
        if not self.public_url:
            host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
            self.public_url = f"http://{host}:{self.port}"
        return self

    def secret(self) -> bytes:
        """The key that signs stream tokens."""
        if self.stream_secret is not None:
            return self.stream_secret.get_secret_value().encode()
        if self.twilio_auth_token is not None:
            token = self.twilio_auth_token.get_secret_value().encode()
            return hashlib.sha256(b"postvoice-stream:" + token).digest()
        return _DEV_STREAM_SECRET.encode()

    def label_secret(self) -> bytes:
        """The key that signs return-label links."""
        if self.label_secret_key is not None:
            return self.label_secret_key.get_secret_value().encode()
        return hashlib.sha256(b"postvoice-labels:" + self.secret()).digest()

    def photo_options(self):
        """What a photo request takes, as `integrations.photos.PhotoOptions`."""
        from integrations.photos import PhotoOptions

        return PhotoOptions(
            max_photos=self.photo_max_count,
            max_bytes=int(self.photo_max_mb * 1024 * 1024),
            ttl=timedelta(hours=self.photo_link_hours),
        )

    def vad_options(self, *, end_of_turn_ms: int | None = None):
        """Segmentation as `voice.vad.VadOptions`; `end_of_turn_ms` replaces the setting's
        (a call's segmenter only ends the longest turn: `voice.turns` decides the others)."""
        from voice.vad import VadOptions

        return VadOptions(
            aggressiveness=self.vad_aggressiveness,
            pre_roll_ms=self.vad_pre_roll_ms,
            min_speech_ms=self.vad_min_speech_ms,
            end_of_turn_ms=self.vad_end_of_turn_ms if end_of_turn_ms is None else end_of_turn_ms,
            max_utterance_s=self.vad_max_utterance_s,
            pause_ms=self.vad_pause_ms,
        )

    def turn_options(self):
        """The end-of-turn rules as `voice.turns.TurnOptions`."""
        from voice.turn_end import TurnOptions

        return TurnOptions(
            pause_ms=self.vad_pause_ms,
            quick_end_of_turn_ms=self.vad_quick_end_of_turn_ms,
            end_of_turn_ms=self.vad_end_of_turn_ms,
            long_answer_end_of_turn_ms=self.vad_long_answer_end_of_turn_ms,
            unfinished_end_of_turn_ms=self.vad_unfinished_end_of_turn_ms,
        )

    def predictor_options(self):
        """The end-of-turn predictor's techniques as `voice.turn_end.PredictorOptions`."""
        from voice.turn_end import PredictorOptions

        return PredictorOptions(
            complete_end_of_turn_ms=self.turn_complete_end_of_turn_ms,
            request_end_of_turn_ms=self.turn_request_end_of_turn_ms,
            hold_partial_digits=self.turn_hold_partial_digits,
            pace=self.turn_pace,
        )

    def piper_options(self, phrases: tuple[str, ...] = ()):
        """The voice as `voice.tts.PiperOptions`, with the agent's fixed lines to render ahead."""
        from voice.tts import PiperOptions

        return PiperOptions(
            model=self.tts_model,
            workers=self.tts_workers,
            threads=self.tts_threads,
            length_scale=self.tts_length_scale,
            phrases=phrases,
        )

    def second_model(self) -> Path | None:
        """The second speech-to-text model's directory, or None. The default `auto` is left
        out with a warning where `make install` has not assembled it (the server still hears,
        with tiny.en alone); a model the settings name explicitly must be there."""
        from voice.stt_models import resolve_second_model

        try:
            return resolve_second_model(self.stt_second_model_dir)
        except FileNotFoundError as missing:
            if "stt_second_model_dir" in self.model_fields_set:
                raise
            _warn_once(f"{missing}; numbers are heard by tiny.en alone")
            return None

    def whisper_options(self):
        """The speech-to-text settings as `voice.stt.WhisperOptions`."""
        from voice.stt import WhisperOptions

        return WhisperOptions(
            model_dir=self.stt_model_dir,
            compute_type=self.stt_compute_type,
            cpu_threads=self.stt_threads,
            workers=self.stt_workers,
            beam_size=self.stt_beam_size,
            windows_s=tuple(int(w) for w in self.stt_windows_s.split(",")),
            nice=self.stt_nice,
            hypotheses=self.stt_hypotheses,
            second_model_dir=self.second_model(),
            second_below=self.stt_second_below,
            digits_fallback=self.stt_digits_fallback,
            second_digits=self.stt_second_digits,
        )

    @property
    def voice_number(self) -> str:
        """The number calls are placed from (and texts sent from, without an SMS sender): the
        Twilio voice number, else the support number."""
        return self.twilio_voice_number or self.support_number

    def provider_config(self):
        """The provider settings as the plain object `integrations.providers` takes: these
        fields are its only defaults, unset ones (None) arrive as "" (not configured)."""
        from dataclasses import fields

        from integrations.providers import ProviderConfig

        values = {}
        for f in fields(ProviderConfig):
            value = getattr(self, f.name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            values[f.name] = "" if value is None else value
        values["twilio_voice_number"] = self.voice_number
        return ProviderConfig(**values)

    @property
    def signatures_required(self) -> bool:
        """Twilio signatures are checked unless running with --dev."""
        return not self.dev

    def check_startable(self) -> None:
        """Refuse to serve without an auth token, unless in --dev."""
        if not self.dev and self.twilio_auth_token is None:
            raise SystemExit(
                "POSTVOICE_TWILIO_AUTH_TOKEN is not set: without it Twilio's signatures cannot be "
                "checked. Set it, or run with --dev on a machine nobody else can reach."
            )

    @property
    def public_ws_url(self) -> str:
        """The public URL with a WebSocket scheme."""
        base = self.public_url.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base.removeprefix("https://")
        if base.startswith("http://"):
            return "ws://" + base.removeprefix("http://")
        return base


@functools.cache
def _warn_once(message: str) -> None:
    """A warning about the settings, logged once a process however often settings are read."""
    log.warning(message)


def setting_default(name: str) -> Any:
    """The default of setting `name`. An engine's options default to it, so that a default
    is written once, here, whether the engine is built from settings or on its own."""
    return Settings.model_fields[name].default
