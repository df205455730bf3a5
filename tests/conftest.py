"""Fixtures shared across the test packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialog.loader import DEFAULT_FLOWS


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows, to break one file at a time."""
    target = tmp_path / "flows"
    shutil.copytree(DEFAULT_FLOWS, target)
    return target
