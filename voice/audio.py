"""Telephone audio: G.711 µ-law codec (numpy tables, no `audioop`), resampling, WAV files.

Inside the pipeline audio is 8 kHz mono int16 numpy arrays, the rate Twilio speaks; it is
resampled once on the way into speech-to-text (16 kHz) and once on the way out of
text-to-speech (from the voice's rate).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import soxr

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "SAMPLE_RATE",
    "mulaw_decode",
    "mulaw_encode",
    "read_wav",
    "resample",
    "to_float32",
    "write_wav",
]

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # µ-law: one byte per sample

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


_DECODE = _build_decode_table()
_ENCODE = _build_encode_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """µ-law bytes → int16 PCM samples."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM samples → µ-law bytes."""
    return _ENCODE[pcm.astype(np.int32) + 32768].tobytes()


def to_float32(pcm: np.ndarray) -> np.ndarray:
    """int16 → float32 in [-1, 1)."""
    return pcm.astype(np.float32) / 32768.0


def resample(pcm: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample int16 (or float32) audio with soxr; returns the input's dtype."""
    if rate_in == rate_out:
        return pcm
    if pcm.dtype == np.int16:
        out = soxr.resample(to_float32(pcm), rate_in, rate_out, quality="HQ")
        return np.clip(out * 32768.0, -32768, 32767).astype(np.int16)
    return soxr.resample(pcm, rate_in, rate_out, quality="HQ").astype(pcm.dtype)


def read_wav(source: str | Path | bytes, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a PCM WAV (8/16/24/32-bit, mono or multi-channel, any rate) as mono int16 at `rate`."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    with handle, wave.open(handle, "rb") as w:
        channels, width, rate_in = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        samples = ((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)) >> 16
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4") >> 16
    else:
        raise ValueError(f"unsupported WAV sample width: {width} bytes")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    pcm = np.clip(samples, -32768, 32767).astype(np.int16)
    return resample(pcm, rate_in, rate)


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write int16 audio; a 2-D array of shape (n, channels) writes several channels."""
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
