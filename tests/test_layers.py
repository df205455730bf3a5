"""Arrows go one way (docs/DESIGN.md): postvoice → harness → voice → dialog → integrations.

Every module of each package is parsed, never imported, so an import inside a function, or
one only a rarely taken path runs, counts as much as one at the top of the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package must never import: the packages above it.
LAYERS = ("postvoice", "harness", "voice", "dialog", "integrations")
ABOVE = {package: LAYERS[:i] for i, package in enumerate(LAYERS)}


def imported(path: Path) -> list[tuple[int, str]]:
    """The absolute modules a file imports, with their line numbers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def upward_imports(package: str) -> list[str]:
    """Each import in `package` of a package above it, as `path:line: module`."""
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported(path):
            if module.split(".")[0] in ABOVE[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return bad


@pytest.mark.parametrize("package", LAYERS)
def test_nothing_imports_upward(package):
    assert upward_imports(package) == []


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from voice.tts import default_voice\n")
    assert imported(module) == [(2, "voice.tts")]
