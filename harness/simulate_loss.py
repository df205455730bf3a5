"""Packet loss on the simulated caller's phone line: each 20 ms media frame lost with a set
probability, as the last leg of a call over a bad mobile or Wi-Fi link loses RTP packets.

A lost frame is sent as silence, not left out. A phone network's jitter buffer plays out at a
fixed 20 ms rate and has to put something in a lost packet's slot (zero-fill is the crudest
concealment; G.711's own repeats the last pitch period, so silence is the harsher case and the
figures a lower bound), and Twilio's media stream carries that played-out audio: frames keep
coming every 20 ms with contiguous timestamps whatever happened upstream. Leaving the message
out instead would splice the caller's words 20 ms closer together per loss — no listener hears
that — and the server, which feeds frames to its VAD in the order they come, would count less
end-of-turn silence than the caller left.

The draws come from the call's seed alone (`PacketLoss(rate, seed)`), so a rerun loses the
same frames; rate 0 loses none and draws nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

__all__ = ["PacketLoss"]


class PacketLoss:
    """One call's lossy uplink: `conceal` each batch of frames as it is sent; `frames` and
    `lost` count what went through."""

    def __init__(self, rate: float, seed: str) -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"packet loss is a probability below 1, got {rate}")
        self.rate = rate
        self._rng = random.Random(f"{seed}:loss")
        self.frames = 0
        self.lost = 0

    def conceal(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The frames as the server receives them: each lost one silence of the same length."""
        self.frames += len(frames)
        if not self.rate:
            return list(frames)
        kept = []
        for frame in frames:
            if self._rng.random() < self.rate:
                self.lost += 1
                kept.append(np.zeros_like(frame))
            else:
                kept.append(frame)
        return kept

    @property
    def share_lost(self) -> float | None:
        """The share of frames lost so far (None before any was sent)."""
        return round(self.lost / self.frames, 4) if self.frames else None
