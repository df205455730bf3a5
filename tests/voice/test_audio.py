import numpy as np
import pytest

from voice.audio import mulaw_decode, mulaw_encode, read_wav, resample, write_wav


def test_mulaw_known_codes():
    # G.711: 0xFF and 0x7F are the two zeros; 0x00 / 0x80 the extremes.
    assert list(mulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80]))) == [0, 0, -32124, 32124]
    assert mulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)) == bytes([0xFF, 0x80, 0x00])


def test_mulaw_every_code_survives_a_round_trip():
    codes = bytes(range(256))
    decoded = mulaw_decode(codes)
    assert np.array_equal(mulaw_decode(mulaw_encode(decoded)), decoded)


def test_mulaw_error_is_within_the_codec_step():
    x = (np.sin(np.linspace(0, 200, 8000)) * 20000).astype(np.int16)
    y = mulaw_decode(mulaw_encode(x))
    # µ-law's step grows with amplitude; relative error stays small.
    assert np.corrcoef(x, y)[0, 1] > 0.999
    assert np.max(np.abs(y.astype(int) - x)) < 700


def test_resample_keeps_duration():
    one_second = np.zeros(22050, dtype=np.int16)
    assert abs(len(resample(one_second, 22050, 8000)) - 8000) <= 1
    assert resample(one_second, 8000, 8000) is one_second


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_read_wav_any_rate_and_stereo(tmp_path, rate):
    t = np.arange(rate) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    stereo = np.stack([tone, tone], axis=1)
    path = tmp_path / "x.wav"
    write_wav(path, stereo, rate)
    pcm = read_wav(path)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 8000) <= 2
    assert 6000 < np.abs(pcm).max() < 11000
