"""Smart Turn is fed exactly what pipecat feeds it, and answers with a probability.

pipecat's own analyzer (`LocalSmartTurnAnalyzerV3`, in the installed wheel) is the reference:
it is imported here from its files without running `pipecat/__init__.py`, which needs loguru
(not installed; stood in for by `logging`) and would replace `asyncio.wait_for` for the whole
test process. Its session is wrapped to catch the features it sends the model.

There is no test that a finished clip outscores its cut-off half: on our phone audio that does
not hold often enough to pin (README "Acoustic end of turn (measured)").
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from voice.audio import read_wav
from voice.smart_turn import (
    N_FRAMES,
    N_MELS,
    SmartTurn,
    SmartTurnMissing,
    SmartTurnOptions,
    default_model,
    model_input,
)

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"


@pytest.fixture(scope="module")
def pipecat_v3():
    """pipecat's local_smart_turn_v3 module, loaded from the wheel's files alone."""
    root = default_model().parents[4]  # .../site-packages/pipecat
    saved = {k: m for k, m in sys.modules.items() if k.split(".")[0] in ("pipecat", "loguru")}
    package = types.ModuleType("pipecat")
    package.__path__ = [str(root)]
    sys.modules["pipecat"] = package
    if importlib.util.find_spec("loguru") is None:
        sys.modules["loguru"] = types.SimpleNamespace(logger=logging.getLogger("pipecat"))
    try:
        yield importlib.import_module("pipecat.audio.turn.smart_turn.local_smart_turn_v3")
    finally:
        for name in [k for k in sys.modules if k.split(".")[0] in ("pipecat", "loguru")]:
            del sys.modules[name]
        sys.modules.update(saved)


class _Catching:
    """An onnxruntime session that remembers the input it was given."""

    def __init__(self, session) -> None:
        self.session, self.seen = session, None

    def run(self, names, feeds):
        self.seen = feeds["input_features"]
        return self.session.run(names, feeds)


@pytest.fixture(scope="module")
def reference(pipecat_v3):
    analyzer = pipecat_v3.LocalSmartTurnAnalyzerV3(
        sample_rate=8000, smart_turn_model_path=str(default_model())
    )
    analyzer.set_sample_rate(8000)
    analyzer._session = _Catching(analyzer._session)
    return analyzer


def _pipecat(reference, pcm: np.ndarray) -> tuple[np.ndarray, float]:
    """What pipecat feeds the model for this 8 kHz turn, and its probability. Its base class
    keeps the last 8 s at the input rate before `_predict_endpoint`; so do we here."""
    audio = pcm.astype(np.float32)[-8000 * 8 :] / 32768.0
    probability = reference._predict_endpoint(audio)["probability"]
    return reference._session.seen, probability


@pytest.fixture(scope="module")
def turn() -> SmartTurn:
    return SmartTurn()


def _clip(name: str) -> np.ndarray:
    return read_wav(CLIPS / f"{name}.wav")


def test_short_audio_is_padded_at_the_start_so_speech_ends_the_window():
    pcm = _clip("yes_please")  # ~1.6 s
    features = model_input(pcm)
    assert features.shape == (1, N_MELS, N_FRAMES) and features.dtype == np.float32
    spoken_frames = round(len(pcm) / 8000 * 100)
    padding = features[0, :, : N_FRAMES - spoken_frames - 5]
    assert np.ptp(padding) == 0  # the zeros before the speech: one constant value
    assert np.ptp(features[0, :, -spoken_frames:]) > 1  # the speech itself, at the end


def test_only_the_last_eight_seconds_count():
    clip = _clip("exchange_too_small")
    long = np.concatenate([np.tile(clip, 3), clip])  # ~23 s
    other = np.concatenate([np.random.default_rng(1).integers(-9000, 9000, 8000 * 5), long])
    np.testing.assert_array_equal(model_input(long), model_input(long[-8000 * 8 :]))
    np.testing.assert_array_equal(model_input(long), model_input(other.astype(np.int16)))


@pytest.mark.parametrize("name", ["where_is_my_order", "exchange_too_small", "order_number_pause"])
def test_features_and_probability_match_pipecats(reference, turn, name):
    pcm = _clip(name)
    for cut in (len(pcm), len(pcm) // 2):
        theirs, their_p = _pipecat(reference, pcm[:cut])
        ours = model_input(pcm[:cut])
        assert ours.shape == theirs.shape == (1, N_MELS, N_FRAMES)
        # float32 spectra here, float64 in pipecat's vendored transformers code
        np.testing.assert_allclose(ours, theirs, atol=2e-4)
        assert turn.complete_probability(pcm[:cut]) == pytest.approx(their_p, abs=0.01)


def test_longer_than_the_window_matches_pipecats_too(reference):
    long = np.tile(_clip("lamp_and_sweater"), 3)  # ~13 s
    theirs, _ = _pipecat(reference, long)
    np.testing.assert_allclose(model_input(long), theirs, atol=2e-4)


def test_wideband_input_is_resampled_like_pipecats(reference, pipecat_v3):
    pcm = _clip("no_thanks")
    wide = read_wav(CLIPS / "no_thanks.wav", rate=16000)
    analyzer = pipecat_v3.LocalSmartTurnAnalyzerV3(
        sample_rate=16000, smart_turn_model_path=str(default_model())
    )
    analyzer.set_sample_rate(16000)
    analyzer._session = _Catching(analyzer._session)
    analyzer._predict_endpoint(wide.astype(np.float32) / 32768.0)
    np.testing.assert_allclose(model_input(wide, rate=16000), analyzer._session.seen, atol=2e-4)
    assert model_input(pcm).shape == model_input(wide, rate=16000).shape


def test_the_model_gives_a_probability(turn):
    for pcm in (_clip("where_is_my_order"), np.zeros(4000, np.int16), _clip("hello_pickup")):
        p = turn.complete_probability(pcm)
        assert isinstance(p, float) and 0.0 <= p <= 1.0
    with pytest.raises(ValueError):
        turn.complete_probability(np.zeros(0, np.int16))


def test_one_session_shared_and_safe_across_threads(turn):
    clips = [_clip(n) for n in ("no_thanks", "wait_hold_on", "package_damaged", "yes_please")]
    alone = [turn.complete_probability(c) for c in clips]
    got: dict[int, float] = {}

    def judge(i: int, pcm: np.ndarray) -> None:
        got[i] = SmartTurn().complete_probability(pcm)

    threads = [threading.Thread(target=judge, args=(i, c)) for i, c in enumerate(clips)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(clips))] == alone
    assert SmartTurn()._session is turn._session


def test_the_evaluation_cuts_a_clip_where_the_server_would_decide():
    from harness.smart_turn_eval import clip_items, scores, with_tail

    items = [it for it in clip_items(CLIPS) if it.name.startswith("order_number_pause@")]
    kinds = sorted((it.group, it.complete) for it in items)
    assert kinds == [
        ("clip cut 40-70 %", False),
        ("clip cut 40-70 %", False),
        ("clip cut 40-70 %", False),
        ("clip cut at a pause", False),  # "My order number is | one, zero, zero, three."
        ("clip finished", True),
    ]
    for it in items:
        assert len(with_tail(it, 100)) == len(it.speech) + 800  # 100 ms at 8 kHz
    s = scores([True, True, False, False], [True, False, True, False])
    assert (s.accuracy, s.precision, s.recall, s.false_complete_rate) == (0.5, 0.5, 0.5, 0.5)


def test_a_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(SmartTurnMissing, match="make smart-turn"):
        SmartTurn(SmartTurnOptions(model=tmp_path / "nowhere.onnx"))


def test_the_wheel_not_installed_says_how_to_get_it(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(SmartTurnMissing, match="pipecat-ai"):
        default_model()
