"""Fakes at the protocol boundaries: a socket, speech engines, an agent. Never our own code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from dialog.events import EndCall, Hints, Say
from voice.stt import Transcriber, Transcript
from voice.tts import Synthesizer


class FakeSocket:
    """A media socket fed from a queue; records what the session sends."""

    def __init__(self, echo_marks: bool = True) -> None:
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.echo_marks = echo_marks

    async def receive(self):
        return await self.incoming.get()

    async def send(self, text: str) -> None:
        """Record; like Twilio with an instant player, echo each mark straight back."""
        self.sent.append(text)
        if self.echo_marks and '"event": "mark"' in text:
            self.incoming.put_nowait(text)

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code
        self.incoming.put_nowait(None)

    def events(self, kind: str) -> list[dict]:
        import json

        return [m for m in map(json.loads, self.sent) if m["event"] == kind]


class FakeTranscriber(Transcriber):
    """Returns scripted transcripts in order, whatever the audio (a text, or a whole
    `Transcript` where its marks matter)."""

    def __init__(self, texts: list[str | Transcript] | None = None) -> None:
        self.texts = list(texts or [])
        self.hints: list[Hints | None] = []

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        self.hints.append(hints)
        text = self.texts.pop(0) if self.texts else ""
        if isinstance(text, Transcript):
            return text
        return Transcript(text, 0.9 if text else 0.0, len(pcm) // 8, 1)


class FakeSynthesizer(Synthesizer):
    """A quiet tone, 40 ms per character, so audio length follows the text."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.spoken: list[str] = []
        self.fail_on = fail_on

    async def synthesize(self, text: str) -> np.ndarray:
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("synthesis failed")
        self.spoken.append(text)
        n = 8000 * 40 * len(text) // 1000
        t = np.arange(n) / 8000
        return (np.sin(2 * np.pi * 300 * t) * 3000).astype(np.int16)


class EchoAgent:
    """Greets, repeats what it hears, hangs up on 'bye'. Records what reached it. Has no
    handoff of its own (`fail` says nothing), so the session's own hand-over is what runs."""

    def __init__(self, greeting: str = "Hello. How can I help?") -> None:
        self.greeting = greeting
        self.heard: list[str] = []
        self.guessed: list[bool] = []
        self.keys: list[str] = []
        self.silences: list[float] = []
        self.ended: str | None = None

    async def start(self) -> AsyncIterator:
        yield Say(self.greeting)

    async def hear(self, text: str, confidence: float, *, guessed: bool = False) -> AsyncIterator:
        self.heard.append(text)
        self.guessed.append(guessed)
        if "bye" in text.lower():
            yield Say("Goodbye.")
            yield EndCall("caller_done")
            return
        yield Say(f"You said {text}.")

    async def keypad(self, digits: str) -> AsyncIterator:
        self.keys.append(digits)
        yield Say(f"You typed {digits}.")

    async def silence(self, seconds: float) -> AsyncIterator:
        self.silences.append(seconds)
        yield Say("Are you still there?")

    async def offer_person(self, reason: str) -> AsyncIterator:
        yield Say("Sorry, I'm having trouble hearing you right now. Could you say that again?")

    async def fail(self, reason: str, *, apologised: bool = False) -> AsyncIterator:
        """No handoff of its own: the session hands the caller over."""
        if False:
            yield

    async def wrap_up(self, reason: str) -> AsyncIterator:
        yield Say("We've been talking for quite a while, so I need to end this call now.")
        yield EndCall(reason)

    async def end(self, reason: str) -> str:
        self.ended = reason
        return f"ended: {reason}"
