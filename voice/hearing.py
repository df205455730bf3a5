"""Speech to text for one call: a deadline, the call's turn on the shared STT pool, and one
kind of failure for the session to handle.

`Ears.guess` is what `voice.turns` starts at a pause while the caller may go on; `Ears.hear`
gives a finished turn its transcript, the guess when it was made on exactly this audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from dialog.events import Hints
from voice.pool import on_behalf_of
from voice.stt import Transcriber, Transcript
from voice.turns import Heard

__all__ = ["Ears", "HearingFailed"]


class HearingFailed(Exception):
    """Speech to text raised or timed out."""


class Ears:
    """One per call. `sid` names the call on the pool (it takes turns across calls)."""

    def __init__(self, transcriber: Transcriber, timeout_s: float, sid: Callable[[], str]) -> None:
        self.transcriber = transcriber
        self.timeout_s = timeout_s
        self._sid = sid

    async def guess(self, pcm: np.ndarray, hints: Hints | None) -> Transcript:
        """Speech to text with a deadline, in this call's turn on the STT pool."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        async with asyncio.timeout(self.timeout_s):
            with on_behalf_of(self._sid()):
                return await self.transcriber.transcribe(pcm, hints)

    async def hear(self, heard: Heard, hints: Hints | None) -> tuple[Transcript, bool]:
        """The turn's transcript, and whether it is the one started at its last pause. Any
        failure, of that one or of a transcription now, is `HearingFailed`."""
        try:
            if heard.early is not None:
                return await heard.early, True
            return await self.guess(heard.utterance.pcm, hints), False
        except Exception as exc:
            raise HearingFailed(repr(exc)) from exc
