"""Where the models come from: the second model assembled from its two packages, and found."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from voice import stt_models
from voice.stt_models import assemble_second_model, resolve_second_model, second_model_dir


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """The two packages' data folders, as pip installs them, with small stand-in files."""
    one, two = tmp_path / "one" / "data", tmp_path / "two" / "data"
    one.mkdir(parents=True), two.mkdir(parents=True)
    (one / "model.bin.part1").write_bytes(b"A" * 1000)
    (two / "model.bin.part2").write_bytes(b"B" * 500)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (two / name).write_text(f'{{"{name}": 1}}')
    monkeypatch.setattr(stt_models, "_second_model_data", lambda: [one, two])
    home = tmp_path / "venv" / "share" / "postvoice" / "whisper-base"
    monkeypatch.setattr(stt_models, "second_model_home", lambda: home)
    return home


def test_the_second_model_is_assembled_once_and_then_found(packages):
    assert second_model_dir() is None
    with pytest.raises(FileNotFoundError, match="make second-model"):
        resolve_second_model("auto")
    assert assemble_second_model() == packages
    assert (packages / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert (packages / "tokenizer.json").read_text() == '{"tokenizer.json": 1}'
    assert second_model_dir() == packages == resolve_second_model("auto")
    written = (packages / "model.bin").stat().st_mtime_ns
    assert assemble_second_model() == packages  # again: nothing to do
    assert (packages / "model.bin").stat().st_mtime_ns == written


def test_a_half_written_model_is_not_a_model(packages):
    packages.mkdir(parents=True)
    (packages / "model.bin.partial").write_bytes(b"A" * 1000)
    assert second_model_dir() is None
    (packages / "model.bin").write_bytes(b"A" * 1000)  # cut short: assembled again
    assemble_second_model()
    assert (packages / "model.bin").stat().st_size == 1500


def test_no_packages_no_second_model(monkeypatch):
    monkeypatch.setattr(stt_models, "_second_model_data", lambda: None)
    with pytest.raises(FileNotFoundError, match="--no-deps"):
        assemble_second_model(Path("/nonexistent"))


def test_the_second_model_lives_in_the_environment():
    assert stt_models.second_model_home().is_relative_to(Path(sys.prefix))
    assert resolve_second_model("") is None and resolve_second_model(None) is None
    assert resolve_second_model("/models/base") == Path("/models/base")
