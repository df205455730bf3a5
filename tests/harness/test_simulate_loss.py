"""Packet loss on the simulated caller's line: seeded, near its level, silence in the lost slots,
and counted in the reports and the summary."""

from __future__ import annotations

import base64
import itertools
import json

import numpy as np
import pytest

from harness.callers import test_voices
from harness.fake_twilio import FRAME_SAMPLES, FakeTwilio
from harness.persona import Persona
from harness.simulate import TEXT, plan_calls
from harness.simulate_loss import PacketLoss
from harness.simulate_summary import summarize
from voice import twilio
from voice.audio import mulaw_decode


def _frames(n: int) -> list[np.ndarray]:
    return [np.full(FRAME_SAMPLES, 1000 + i, dtype=np.int16) for i in range(n)]


def _lost(loss: PacketLoss, frames: list[np.ndarray]) -> list[int]:
    return [i for i, f in enumerate(loss.conceal(frames)) if not f.any()]


def test_the_same_seed_loses_the_same_frames_and_another_seed_others():
    frames = _frames(500)
    first = _lost(PacketLoss(0.1, "0:3:maria"), frames)
    assert first == _lost(PacketLoss(0.1, "0:3:maria"), frames)
    assert first != _lost(PacketLoss(0.1, "0:4:maria"), frames)


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.3])
def test_the_share_lost_is_near_the_level(rate):
    loss = PacketLoss(rate, "seed")
    lost = _lost(loss, _frames(5000))
    # binomial: 4 standard deviations of 5000 draws
    assert abs(len(lost) / 5000 - rate) < 4 * (rate * (1 - rate) / 5000) ** 0.5
    assert (loss.frames, loss.lost) == (5000, len(lost))
    assert loss.share_lost == round(len(lost) / 5000, 4)


def test_no_loss_loses_nothing():
    loss = PacketLoss(0.0, "seed")
    frames = _frames(1000)
    assert all(a is b for a, b in zip(loss.conceal(frames), frames, strict=True))
    assert (loss.frames, loss.lost) == (1000, 0)


def test_a_certain_loss_is_refused():
    with pytest.raises(ValueError):
        PacketLoss(1.0, "seed")


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)


def _params() -> twilio.StreamParams:
    return twilio.StreamParams(call_sid="CA1", stream_sid="MZ1", account_sid="AC1")


async def test_a_lost_frame_reaches_the_server_as_silence_in_its_slot():
    """Every slot is sent, a 20 ms step of call time each, so the turn keeps its length; the
    lost slots are the ones the seed picks."""
    socket = _Socket()
    call = FakeTwilio(socket, _params(), realtime=False)
    call.loss = PacketLoss(0.2, "seed")
    pcm = np.full(FRAME_SAMPLES * 100, 3000, dtype=np.int16)
    await call.play(pcm, trailing_silence_s=0.2)
    media = [json.loads(m) for m in socket.sent if '"media"' in m]
    assert len(media) == 110 == call.loss.frames
    silent = [i for i, m in enumerate(media[:100]) if not _pcm(m).any()]
    expected = _lost(PacketLoss(0.2, "seed"), _frames(110))
    assert silent and silent == [i for i in expected if i < 100]
    stamps = [int(m["media"]["timestamp"]) for m in media]
    assert all(b - a >= 20 for a, b in itertools.pairwise(stamps))  # no slot skipped


def _pcm(message: dict) -> np.ndarray:
    return mulaw_decode(base64.b64decode(message["media"]["payload"]))


def _persona(name: str) -> Persona:
    return Persona.model_validate(
        {"name": name, "calls_from": "withheld", "goals": [{"procedure": "lost", "ask": ["x"]}]}
    )


def test_loss_levels_are_drawn_per_call_after_voice_and_noise():
    personas = [_persona(f"p{i}") for i in range(4)]
    voices, noises = test_voices(), ["quiet", "street"]
    plain = plan_calls(personas, 20, voices, noises, 5)
    lossy = plan_calls(personas, 20, voices, noises, 5, [0.0, 0.05, 0.2])
    assert [(p.voice, p.noise) for p in plain] == [(p.voice, p.noise) for p in lossy]
    assert {p.loss for p in plain} == {0.0}
    assert {p.loss for p in lossy} == {0.0, 0.05, 0.2}
    again = plan_calls(personas, 20, voices, noises, 5, [0.0, 0.05, 0.2])
    assert [p.loss for p in lossy] == [p.loss for p in again]
    text = plan_calls(personas, 4, [], [], 5, [0.1])
    assert {(p.voice, p.loss) for p in text} == {(TEXT, 0.0)}  # no audio to lose


def _report(name: str, loss: float, sent: int, lost: int, passed: bool) -> dict:
    return {
        "scenario": name,
        "persona": name,
        "passed": passed,
        "failures": [] if passed else ["code not checked"],
        "goals": ["coupon"],
        "voice": "flite-rms",
        "noise": "quiet",
        "loss": loss,
        "frames_sent": sent,
        "frames_lost": lost,
        "latency_ms": [500],
        "caller_turns": [],
        "repairs": 0,
        "turns_to_resolution": None,
        "seconds_to_resolution": None,
        "went_wrong": None,
    }


def test_the_summary_has_the_outcome_and_the_frames_lost_per_loss_level():
    summary = summarize(
        [
            _report("a", 0.0, 900, 0, True),
            _report("b", 0.1, 1000, 95, True),
            _report("c", 0.1, 1000, 107, False),
        ]
    )
    assert summary["per_loss"] == {
        "0": {
            "calls": 1,
            "passed": 1,
            "outcome_rate": 1.0,
            "frames_sent": 900,
            "frames_lost": 0,
            "share_lost": 0.0,
        },
        "0.1": {
            "calls": 2,
            "passed": 1,
            "outcome_rate": 0.5,
            "frames_sent": 2000,
            "frames_lost": 202,
            "share_lost": 0.101,
        },
    }
